package queue

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/policy/redistest"
	"github.com/bounceloop/bounceloop/queue/compose"
	"github.com/bounceloop/bounceloop/queue/internal/smtpsim"
	"github.com/bounceloop/bounceloop/queue/sender"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

// testStack builds a stack on its own Redis database, sending to world.
func testStack(t *testing.T, rdb *redis.Client, world *smtpsim.World, pol policy.Config, q Config) *Stack {
	t.Helper()
	return newTestStack(t, rdb, world, pol, q, func(n int, err error, tk *asynq.Task) time.Duration {
		if !IsFailure(err) {
			return RetryDelay(n, err, tk)
		}
		return 50 * time.Millisecond
	})
}

// newTestStack is testStack with the retry delay given (nil: RetryDelay).
func newTestStack(t *testing.T, rdb *redis.Client, world *smtpsim.World, pol policy.Config, q Config, retry asynq.RetryDelayFunc) *Stack {
	t.Helper()
	cl, err := bounces.NewClassifier()
	if err != nil {
		t.Fatal(err)
	}
	q.MaxRetry = max(q.MaxRetry, 0)
	st, err := NewStack(StackConfig{
		Redis: rdb, KeyPrefix: "e2e", Queue: q, Web: WebConfig{Listen: "off"}, Policy: pol,
		SMTP:      sender.Config{Mode: sender.ModeMX, Routes: world.Routes(), InsecureSkipVerify: true, HeloName: "bounceloop.test"},
		Templates: compose.Default(), Classifier: cl, Resolver: noDNS{},
		Log:        zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		RetryDelay: retry,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitFinal waits until no task of the queues is pending, active,
// scheduled or waiting for a retry.
func waitFinal(t *testing.T, insp *asynq.Inspector, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		busy := 0
		qs, _ := insp.Queues()
		for _, q := range qs {
			if info, err := insp.GetQueueInfo(q); err == nil {
				busy += info.Pending + info.Active + info.Scheduled + info.Retry
			}
		}
		if busy == 0 && len(qs) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tasks still not final after %v", busy, within)
		}
		<-time.After(100 * time.Millisecond)
	}
}

// finalStates returns task id → "completed" or "archived: <last error>".
func finalStates(t *testing.T, insp *asynq.Inspector) map[string]string {
	t.Helper()
	out := map[string]string{}
	qs, _ := insp.Queues()
	for _, q := range qs {
		for page := 1; ; page++ {
			done, err := insp.ListCompletedTasks(q, asynq.Page(page), asynq.PageSize(500))
			if err != nil {
				t.Fatal(err)
			}
			for _, ti := range done {
				out[ti.ID] = "completed"
			}
			if len(done) < 500 {
				break
			}
		}
		for page := 1; ; page++ {
			arch, err := insp.ListArchivedTasks(q, asynq.Page(page), asynq.PageSize(500))
			if err != nil {
				t.Fatal(err)
			}
			for _, ti := range arch {
				out[ti.ID] = "archived: " + ti.LastErr
			}
			if len(arch) < 500 {
				break
			}
		}
	}
	return out
}

// TestEndToEnd sends a campaign through a real Redis and the simulated
// world over real SMTP: every message reaches the final state the world's
// script gives it, and the receiver sees each delivered Message-ID once.
func TestEndToEnd(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last: after the stack and Redis are closed
	rdb := redistest.DB(t)
	world, err := smtpsim.Start(smtpsim.Config{Seed: 1, CatchAll: "other", Providers: []smtpsim.Provider{
		{Name: "google", Domains: []string{"gmail.com"}},
		{Name: "other", Domains: []string{"azet.sk", "centrum.sk", "yahoo.com", "icloud.com", "example.org"}},
	}, Domains: map[string]smtpsim.Domain{
		"gmail.com":  {UnknownReply: "550 5.1.1 The email account that you tried to reach does not exist."},
		"centrum.sk": {SpamReply: "554 5.7.1 Message rejected as spam"},
		"yahoo.com":  {UnknownReply: "552 1 Requested mail action aborted, mailbox not found"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer world.Close()
	st := testStack(t, rdb, world, policy.Config{}, Config{Concurrency: 8, MaxRetry: 2})
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Shutdown) // before the Redis client closes, even when the test fails

	type want struct{ to, state, class string }
	var wants []want
	for i := 0; i < 30; i++ {
		wants = append(wants, want{fmt.Sprintf("ok-%d@gmail.com", i), "completed", "delivered"})
	}
	wants = append(wants,
		want{"unknown-1@gmail.com", "archived", "invalid_recipient"},
		want{"unknown-2@yahoo.com", "archived", "invalid_recipient"},
		want{"spam-1@centrum.sk", "archived", "spam_blocked"},
		want{"flaky-1@azet.sk", "completed", "delivered"},
		want{"tempfail-1@icloud.com", "archived", "transient"},
		want{"ok-1@example.org", "completed", "delivered"},
	)
	msgs := make([]Message, len(wants))
	for i, w := range wants {
		msgs[i] = Message{Campaign: "e2e", To: w.to, Template: "notice", Data: map[string]any{"first_name": "Jana"}}
	}
	ctx := context.Background()
	res, err := st.Client.EnqueueBatch(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]want{}
	for i, r := range res {
		if r.Status != StatusEnqueued {
			t.Fatalf("message %d: %v %s", i, r.Status, r.Reason)
		}
		ids[r.ID] = wants[i]
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	defer insp.Close()
	waitFinal(t, insp, 60*time.Second)
	st.Shutdown()

	states := finalStates(t, insp)
	for id, w := range ids {
		got := states[id]
		if !strings.HasPrefix(got, w.state) {
			t.Errorf("%s: state %q, want %s", w.to, got, w.state)
		}
		if w.state == "archived" && !strings.Contains(got, "("+w.class+",") {
			t.Errorf("%s: archived with %q, want class %s in the error", w.to, got, w.class)
		}
		if n := world.Accepted(id); (w.state == "completed") != (n == 1) {
			t.Errorf("%s: the world accepted it %d times", w.to, n)
		}
	}
	if s := world.Stats(); s.Duplicates != 0 {
		t.Errorf("the world saw %d duplicates", s.Duplicates)
	}
	attempts, byClass := st.Metrics.Snapshot()
	if attempts["gmail.com"] < 31 || byClass["gmail.com"][bounces.ClassDelivered] != 30 {
		t.Errorf("metrics: gmail.com attempts %d, delivered %d", attempts["gmail.com"], byClass["gmail.com"][bounces.ClassDelivered])
	}

	// The same batch again: the invalid recipients are suppressed now (605),
	// every other message is a duplicate.
	res, err = st.Client.EnqueueBatch(ctx, msgsWithIDs(msgs, res))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		want := StatusDuplicate
		if ids[r.ID].class == "invalid_recipient" {
			want = StatusSuppressed
		}
		if r.Status != want {
			t.Errorf("re-enqueue of %s: %v, want %v", ids[r.ID].to, r.Status, want)
		}
	}
}

// noDNS fails every MX lookup: tests never reach the network's DNS (the
// world's "*" route catches every domain before a lookup).
type noDNS struct{}

func (noDNS) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return nil, &net.DNSError{Err: "no DNS in tests", Name: name, IsNotFound: true}
}

func msgsWithIDs(ms []Message, rs []Result) []Message {
	out := make([]Message, len(ms))
	for i := range ms {
		out[i] = ms[i]
		out[i].ID = rs[i].ID
	}
	return out
}
