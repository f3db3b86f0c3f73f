package queue

// SMTP faults at the queue level (issue 6, item 3; docs/reliability.md):
// each misbehaviour of the receiving side gives a transient diagnosis and a
// retry on the domain's schedule, never a suppression, never a review flag,
// and never holds a worker beyond its stage's timeout.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/policy/redistest"
	"github.com/bounceloop/bounceloop/queue/compose"
	"github.com/bounceloop/bounceloop/queue/internal/smtpsim"
	"github.com/bounceloop/bounceloop/queue/sender"
)

// faultTimeouts are the stage timeouts of TestSMTPFaults: short, so that a
// stalled server costs half a second, not the defaults' minutes.
var faultTimeouts = sender.Timeouts{
	Connect: time.Second, Greeting: 500 * time.Millisecond, Ehlo: time.Second, StartTLS: time.Second,
	Auth: time.Second, Mail: time.Second, Rcpt: time.Second, DataInit: time.Second, DataBlock: time.Second,
	DataEnd: 500 * time.Millisecond, Rset: 500 * time.Millisecond, Quit: 500 * time.Millisecond,
}

// TestSMTPFaults sends one message to a domain of each fault of the
// simulated world (and one answered with a syntax error), and healthy
// messages besides, through a whole Stack on
// real Redis with 2 workers. Each faulty message must get a transient,
// soft diagnosis within its stage's timeout and wait in asynq's retry set
// on the domain's retry schedule (5 m by default): not archived, not
// suppressed, not flagged for review, its queue not paused. The healthy
// messages are all delivered meanwhile (no worker is stuck). Once the
// faults are cleared, running the retries delivers each message once.
func TestSMTPFaults(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last
	tests := []struct {
		name  string
		dom   smtpsim.Domain // the domain <name>.fault.test
		local string         // the recipient's local part
		code  int            // the answer's basic code (0: none, the pool's own)
		stage string         // sender.Stage* where it fails
		text  string         // in the answer's text
	}{
		{"refuse", smtpsim.Domain{Fault: smtpsim.FaultRefuse}, "ok-1", 0, sender.StageConnect, "connection refused"},
		{"tarpit", smtpsim.Domain{Fault: smtpsim.FaultTarpit}, "ok-1", 0, sender.StageGreeting, "greeting"},
		{"tls", smtpsim.Domain{Fault: smtpsim.FaultTLS}, "ok-1", 0, sender.StageStartTLS, "TLS handshake"},
		{"garbage", smtpsim.Domain{Fault: smtpsim.FaultGarbage}, "ok-1", 0, sender.StageRcpt, "bad answer"},
		{"drop", smtpsim.Domain{Fault: smtpsim.FaultDrop}, "ok-1", 0, sender.StageData, "dropped"},
		{"stall", smtpsim.Domain{Fault: smtpsim.FaultStall}, "ok-1", 0, sender.StageData, "end of data"},
		// A syntax error answered by the server (go-smtp's answer to an
		// unknown command): 5xx, but the session's fault, not the
		// message's. "flaky-": only the first attempt gets it.
		{"syntax", smtpsim.Domain{TempFailReply: "500 5.5.2 Error: bad syntax"}, "flaky-1", 500, sender.StageRcpt, "bad syntax"},
	}
	const healthy = 20
	domains := map[string]smtpsim.Domain{"ok.fault.test": {}}
	for _, tt := range tests {
		domains[tt.name+".fault.test"] = tt.dom
	}
	world, err := smtpsim.Start(smtpsim.Config{Seed: 1, TLS: true, Domains: domains})
	if err != nil {
		t.Fatal(err)
	}
	defer world.Close()

	rdb := redistest.DB(t)
	cl, err := bounces.NewClassifier()
	if err != nil {
		t.Fatal(err)
	}
	pol := policy.Config{Default: policy.Settings{Rate: mustRate(t, "100/s")}}
	st, err := NewStack(StackConfig{
		Redis: rdb, KeyPrefix: "fault", Queue: Config{Concurrency: 2}, Web: WebConfig{Listen: "off"}, Policy: pol,
		SMTP: sender.Config{Mode: sender.ModeMX, Routes: world.Routes(), InsecureSkipVerify: true,
			HeloName: "bounceloop.test", Timeouts: faultTimeouts},
		Templates: compose.Default(), Classifier: cl, Resolver: noDNS{},
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		at    time.Time
		reply bounces.Reply
		diag  bounces.Diagnosis
	}
	var mu sync.Mutex
	answers := map[string][]answer{} // message id → answers, in order
	st.Handler.OnEvent = func(_ context.Context, e bounces.Event, d bounces.Diagnosis) {
		mu.Lock()
		defer mu.Unlock()
		answers[e.MessageID] = append(answers[e.MessageID], answer{time.Now(), bounces.Reply{Code: e.Code, Enhanced: e.Enhanced, Text: e.Text}, d})
	}
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Shutdown) // before the Redis client closes

	var msgs []Message
	for _, tt := range tests {
		msgs = append(msgs, Message{Campaign: "faults", To: tt.local + "@" + tt.name + ".fault.test", Template: "notice", Data: map[string]any{"first_name": "Jana"}})
	}
	for i := 0; i < healthy; i++ {
		msgs = append(msgs, Message{Campaign: "faults", To: fmt.Sprintf("ok-%d@ok.fault.test", i), Template: "notice", Data: map[string]any{"first_name": "Jana"}})
	}
	ctx := context.Background()
	start := time.Now()
	res, err := st.Client.EnqueueBatch(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Status != StatusEnqueued {
			t.Fatalf("enqueue %s: %v %s", msgs[i].To, r.Status, r.Reason)
		}
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	defer insp.Close()

	// Every faulty message waits for a retry, every healthy one is
	// delivered, within a bound far below asynq's task timeout (5 m).
	state := func(r Result) (*asynq.TaskInfo, error) { return insp.GetTaskInfo(r.Queue, r.ID) }
	deadline := start.Add(20 * time.Second)
	for {
		waiting := 0
		for i, r := range res {
			ti, err := state(r)
			want := asynq.TaskStateRetry
			if i >= len(tests) {
				want = asynq.TaskStateCompleted
			}
			if err == nil && (ti.State == asynq.TaskStateArchived || (i < len(tests) && ti.State == asynq.TaskStateCompleted)) {
				t.Fatalf("%s: %v (last error %q), want %v", msgs[i].To, ti.State, ti.LastErr, want)
			}
			if err != nil || ti.State != want {
				waiting++
			}
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			for i, r := range res {
				if ti, err := state(r); err == nil && (i < len(tests) && ti.State != asynq.TaskStateRetry) {
					t.Errorf("%s: state %v, last error %q", msgs[i].To, ti.State, ti.LastErr)
				}
			}
			t.Fatalf("%d messages not in their expected state after 20 s: a worker is stuck", waiting)
		}
		<-time.After(50 * time.Millisecond)
	}
	t.Logf("%d faults and %d healthy messages settled in %v with 2 workers", len(tests), healthy, time.Since(start).Round(time.Millisecond))

	sup, err := st.Suppressions.Check(ctx, func() []string {
		var a []string
		for _, m := range msgs[:len(tests)] {
			a = append(a, m.To)
		}
		return a
	}())
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := res[i]
			mu.Lock()
			as := answers[r.ID]
			mu.Unlock()
			if len(as) != 1 {
				t.Fatalf("%d answers, want 1 (one attempt, then a retry on the schedule)", len(as))
			}
			a := as[0]
			t.Logf("%s at %s: %q → %s (rule %s)", a.reply.Enhanced, tt.stage, a.reply.Text, a.diag.Class, a.diag.Rule)
			if a.reply.Code != tt.code || (tt.code == 0 && !strings.HasPrefix(a.reply.Enhanced, "4.")) || !strings.Contains(a.reply.Text, tt.text) {
				t.Errorf("answer %+v, want code %d (0: a 4.x.x status of the pool) and %q in the text", a.reply, tt.code, tt.text)
			}
			if a.diag.Class != bounces.ClassTransient || a.diag.Hard {
				t.Errorf("diagnosis %+v, want transient and soft", a.diag)
			}
			// The stage's timeout bounds the attempt: 0.5 s for the greeting
			// and the end of DATA, plus scheduling on a busy machine.
			if took := a.at.Sub(start); took > 10*time.Second {
				t.Errorf("the attempt ended %v after the enqueue, want within its stage timeout", took)
			}
			ti, err := state(r)
			if err != nil {
				t.Fatal(err)
			}
			if ti.State != asynq.TaskStateRetry || ti.Retried != 1 || !strings.Contains(ti.LastErr, "(transient,") {
				t.Errorf("task %v retried %d, last error %q; want a retry with the transient answer", ti.State, ti.Retried, ti.LastErr)
			}
			if in := time.Until(ti.NextProcessAt); in < 4*time.Minute {
				t.Errorf("next attempt in %v, want the retry schedule's 5 m", in.Round(time.Second))
			}
			if sup[i] {
				t.Errorf("%s was suppressed", msgs[i].To)
			}
			if _, err := insp.GetTaskInfo(policy.ReviewQueue, "review."+r.ID); err == nil {
				t.Errorf("flagged for review")
			}
			if qi, err := insp.GetQueueInfo(r.Queue); err == nil && qi.Paused {
				t.Errorf("queue %s paused", r.Queue)
			}
		})
	}

	// The faults clear; the retries run now and deliver each message once.
	for i, tt := range tests {
		if err := world.SetFault(tt.name+".fault.test", smtpsim.FaultNone); err != nil {
			t.Fatal(err)
		}
		if err := insp.RunTask(res[i].Queue, res[i].ID); err != nil {
			t.Fatal(err)
		}
	}
	deadline = time.Now().Add(20 * time.Second)
	for i := range tests {
		for {
			ti, err := state(res[i])
			if err == nil && ti.State == asynq.TaskStateCompleted {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not delivered after the fault cleared: %+v %v", msgs[i].To, ti, err)
			}
			<-time.After(50 * time.Millisecond)
		}
	}
	for i, r := range res {
		if n := world.Accepted(r.ID); n != 1 {
			t.Errorf("%s: the receiver accepted it %d times, want once", msgs[i].To, n)
		}
	}
}
