package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/policy/redistest"
	"github.com/bounceloop/bounceloop/queue/compose"
	"github.com/bounceloop/bounceloop/queue/internal/smtpsim"
)

// lateSetup returns a handler on a Redis database of its own (resends
// write asynq's keys) with the shipped templates ("newsletter" has a
// small variant, "notice" none), and its feedback keys.
func lateSetup(t *testing.T) (*Handler, *redis.Client, feedback.Keys) {
	t.Helper()
	rdb := redistest.DB(t)
	cl, err := bounces.NewClassifier()
	if err != nil {
		t.Fatal(err)
	}
	keys := feedback.Keys{Prefix: "late"}
	h := &Handler{
		Config: Config{}.WithDefaults(), Policy: policy.Config{}.WithDefaults(), Templates: compose.Default(), Classifier: cl,
		Suppressions: feedback.NewSuppressions(rdb, keys), Loop: feedback.NewLoop(rdb, keys, nil),
		Recorder: feedback.NewRecorder(rdb, keys), Metrics: NewMetrics(), Redis: rdb, HashKey: []byte("k"),
		Log: zerolog.New(zerolog.NewTestWriter(t)),
	}
	return h, rdb, keys
}

// sent writes the sent record of a message as the handler does when the
// receiver accepts it.
func sent(t *testing.T, h *Handler, p SendPayload) {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	h.keepSent(context.Background(), asynq.NewTask(TypeSend, b), p, h.policy().Route(p.Domain), h.Log)
	if _, ok, err := h.Suppressions.SentRecords().Get(context.Background(), p.ID); !ok || err != nil {
		t.Fatalf("no sent record of %s after keepSent: %v", p.ID, err)
	}
}

func TestIngestLate(t *testing.T) {
	h, rdb, keys := lateSetup(t)
	ctx := context.Background()
	at := time.Date(2018, 5, 17, 8, 3, 11, 0, time.UTC)
	enq := at.Add(-time.Hour)
	msg := func(id, to, domain, tpl string, small bool) SendPayload {
		return SendPayload{Campaign: "2018-05-newsletter", ID: id, From: "news@shop.example", To: to, Domain: domain, Template: tpl,
			Data: map[string]any{"first_name": "Jana"}, Small: small, Enqueued: enq}
	}
	for _, p := range []SendPayload{
		msg("big@shop.example", "big@gmail.com", "gmail.com", "newsletter", false),
		msg("big2@shop.example", "big2@gmail.com", "gmail.com", "newsletter", false),
		msg("gone@shop.example", "gone@azet.sk", "azet.sk", "newsletter", false),
		msg("arf@shop.example", "jana@centrum.sk", "centrum.sk", "notice", false),
		msg("twice@shop.example", "twice@seznam.cz", "seznam.cz", "notice", false),
		msg("small.tiny@shop.example", "tiny@gmail.com", "gmail.com", "newsletter", true),
		msg("plain@shop.example", "plain@yahoo.com", "yahoo.com", "notice", false),
		msg("sender@shop.example", "ivo@zoznam.sk", "zoznam.sk", "newsletter", false),
		msg("spam@shop.example", "eva@centrum.sk", "centrum.sk", "newsletter", false),
		msg("spam2@shop.example", "ema@atlas.sk", "atlas.sk", "notice", false),
	} {
		sent(t, h, p)
	}
	tooBig := func(id, rcpt string) bounces.Event {
		return bounces.Event{Time: at, MessageID: id, Recipient: rcpt, Code: 552, Enhanced: "5.3.4",
			Text: "552 5.3.4 Your message exceeded Google's message size limits.", Source: bounces.SourceDSN}
	}
	unknown := func(id, rcpt string) bounces.Event {
		return bounces.Event{Time: at, MessageID: id, Recipient: rcpt, Code: 550, Enhanced: "5.1.1", Text: "550 5.1.1 User unknown", Source: bounces.SourceWebhook}
	}
	tests := []struct {
		name     string
		e        bounces.Event
		rep      *bounces.Report
		times    int          // deliveries of the event; 0 means 1
		want     IngestResult // of the first delivery (Diagnosis: class only)
		supp     string       // an address suppressed after, "" none
		notSupp  string       // an address not suppressed after
		counted  string       // the counter field, counted exactly once
		resentTo string       // the recipient of the one small resend
	}{
		{name: "late 552 5.3.4 resends small once, delivered twice", e: tooBig("<big@shop.example>", ""), times: 2,
			want:    IngestResult{Diagnosis: bounces.Diagnosis{Class: bounces.ClassMessageTooLarge}, Matched: true, ResentAs: "small.big@shop.example"},
			counted: "552|gmail.com", resentTo: "big@gmail.com", notSupp: "big@gmail.com"},
		{name: "late 550 without recipient suppresses the record's", e: unknown("gone@shop.example", ""),
			want: IngestResult{Diagnosis: bounces.Diagnosis{Class: bounces.ClassInvalidRecipient}, Matched: true, Suppressed: true},
			supp: "gone@azet.sk", counted: "550|azet.sk"},
		{name: "ARF complaint, recipient redacted, suppresses", e: bounces.Event{Time: at, MessageID: "arf@shop.example", Source: bounces.SourceARF},
			rep:  &bounces.Report{Action: bounces.ActionComplained, FeedbackType: "abuse", MessageID: "arf@shop.example"},
			want: IngestResult{Diagnosis: bounces.Diagnosis{Class: bounces.ClassComplaint}, Matched: true, Suppressed: true},
			supp: "jana@centrum.sk"},
		{name: "duplicate is counted once", e: unknown("twice@shop.example", "twice@seznam.cz"), times: 3,
			want: IngestResult{Diagnosis: bounces.Diagnosis{Class: bounces.ClassInvalidRecipient}, Matched: true, Suppressed: true},
			supp: "twice@seznam.cz", counted: "550|seznam.cz"},
		{name: "unknown message id suppresses by its recipient", e: unknown("nobody@shop.example", "stranger@atlas.sk"),
			want: IngestResult{Diagnosis: bounces.Diagnosis{Class: bounces.ClassInvalidRecipient}, Suppressed: true},
			supp: "stranger@atlas.sk", counted: "550|atlas.sk"},
		{name: "unknown message id cannot resend", e: tooBig("nobody2@shop.example", "huge@gmail.com"),
			want:    IngestResult{Diagnosis: bounces.Diagnosis{Class: bounces.ClassMessageTooLarge}, NotResent: NotResentUnmatched},
			notSupp: "huge@gmail.com"},
		{name: "no message id at all", e: unknown("", "noid@azet.sk"),
			want: IngestResult{Diagnosis: bounces.Diagnosis{Class: bounces.ClassInvalidRecipient}, Suppressed: true}, supp: "noid@azet.sk"},
		{name: "the small variant was sent", e: tooBig("small.tiny@shop.example", "tiny@gmail.com"),
			want: IngestResult{Diagnosis: bounces.Diagnosis{Class: bounces.ClassMessageTooLarge}, Matched: true, NotResent: NotResentSmall}},
		{name: "template without a small variant", e: tooBig("plain@shop.example", "plain@yahoo.com"),
			want: IngestResult{Diagnosis: bounces.Diagnosis{Class: bounces.ClassMessageTooLarge}, Matched: true, NotResent: NotResentNoSmall}},
		{name: "refused at MAIL FROM: the full diagnosis, nobody suppressed", e: bounces.Event{Time: at, MessageID: "sender@shop.example", Domain: "zoznam.sk",
			Code: 550, Enhanced: "5.1.1", Text: "550 5.1.1 sender address unknown", Source: bounces.SourceDSN},
			rep: &bounces.Report{Recipient: "ivo@zoznam.sk", Command: "MAIL", MessageID: "sender@shop.example",
				Reply: bounces.Reply{Code: 550, Enhanced: "5.1.1", Text: "550 5.1.1 sender address unknown"}},
			want:    IngestResult{Diagnosis: bounces.Diagnosis{Class: bounces.ClassPolicyBlocked}, Matched: true, Flagged: true},
			notSupp: "ivo@zoznam.sk", counted: "550|zoznam.sk"},
		{name: "late spam block: a copy in the review queue", e: bounces.Event{Time: at, MessageID: "spam@shop.example", Code: 554, Enhanced: "5.7.1",
			Text: "554 5.7.1 Message rejected as spam", Source: bounces.SourceDSN},
			want:    IngestResult{Diagnosis: bounces.Diagnosis{Class: bounces.ClassSpamBlocked}, Matched: true, Flagged: true},
			notSupp: "eva@centrum.sk", counted: "554|centrum.sk"},
		{name: "late spam block without a kept payload: counted, not copied", e: bounces.Event{Time: at, MessageID: "spam2@shop.example", Code: 554, Enhanced: "5.7.1",
			Text: "554 5.7.1 Message rejected as spam", Source: bounces.SourceDSN},
			want:    IngestResult{Diagnosis: bounces.Diagnosis{Class: bounces.ClassSpamBlocked}, Matched: true},
			notSupp: "ema@atlas.sk", counted: "554|atlas.sk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.e
			if err := e.Normalize(); err != nil {
				t.Fatal(err)
			}
			times := max(tt.times, 1)
			for i := range times {
				res, err := h.IngestBatch(ctx, []Late{{Event: e, Report: tt.rep}})
				if err != nil || len(res) != 1 {
					t.Fatalf("IngestBatch(%s) #%d = %+v, %v", tt.name, i+1, res, err)
				}
				got := res[0]
				if i > 0 {
					if !got.Duplicate || got.Suppressed || got.ResentAs != "" {
						t.Errorf("IngestBatch(%s) #%d = %+v, want a duplicate that does nothing", tt.name, i+1, got)
					}
					continue
				}
				if got.Diagnosis.Class != tt.want.Diagnosis.Class || got.Duplicate || got.Matched != tt.want.Matched ||
					got.Suppressed != tt.want.Suppressed || got.ResentAs != tt.want.ResentAs || got.NotResent != tt.want.NotResent || got.Flagged != tt.want.Flagged {
					t.Errorf("IngestBatch(%s) = %+v (rule %s), want %+v", tt.name, got, got.Diagnosis.Rule, tt.want)
				}
			}
			if tt.supp != "" {
				if _, ok, err := h.Suppressions.Get(ctx, tt.supp); !ok || err != nil {
					t.Errorf("after %s: %s suppressed = %v (%v), want true", tt.name, tt.supp, ok, err)
				}
			}
			if tt.notSupp != "" {
				if _, ok, _ := h.Suppressions.Get(ctx, tt.notSupp); ok {
					t.Errorf("after %s: %s suppressed, want not", tt.name, tt.notSupp)
				}
			}
			if tt.counted != "" {
				if err := h.Recorder.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				if n, _ := rdb.HGet(ctx, keys.Counts(at), tt.counted).Int(); n != 1 {
					t.Errorf("after %s: counter %s = %d, want 1", tt.name, tt.counted, n)
				}
			}
			if tt.resentTo != "" {
				checkResent(t, h, rdb, tt.want.ResentAs, tt.resentTo, "2018-05-newsletter")
			}
		})
	}

	// A different answer for a message resent already is no duplicate, but
	// the resend is the same task: still one.
	res, err := h.IngestBatch(ctx, []Late{{Event: bounces.Event{Time: at, MessageID: "big@shop.example", Code: 552, Enhanced: "5.3.4", Text: "552 5.3.4 Message size exceeds fixed limit"}}})
	if err != nil || res[0].Duplicate || res[0].ResentAs != "small.big@shop.example" {
		t.Errorf("another 552 for a resent message = %+v, %v, want the same resend", res, err)
	}
	if n := smallTasks(t, rdb); n != 1 {
		t.Errorf("%d small tasks in asynq, want 1", n)
	}
	if big, _ := h.Loop.TooLarge(ctx, "gmail.com"); !big {
		t.Error("a late 552 5.3.4 did not make gmail.com known as size-limited")
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	defer insp.Close()
	if ti, err := insp.GetTaskInfo(policy.ReviewQueue, "review.spam@shop.example"); err != nil || ti.State != asynq.TaskStateArchived || !strings.Contains(ti.LastErr, "554 5.7.1") {
		t.Errorf("the review copy of the late spam block: %+v, %v; want archived with the answer", ti, err)
	}

	// Late full-mailbox answers count as the send path's: suppressed at
	// the configured number (3 by default), each event once.
	for i := 1; i <= 3; i++ {
		e := bounces.Event{Time: at.Add(time.Duration(i) * time.Hour), MessageID: fmt.Sprintf("full-%d@shop.example", i), Recipient: "full@azet.sk",
			Code: 552, Enhanced: "5.2.2", Text: "552 5.2.2 Mailbox full", Source: bounces.SourceDSN}
		if err := e.Normalize(); err != nil {
			t.Fatal(err)
		}
		res, err := h.IngestBatch(ctx, []Late{{Event: e}})
		if err != nil || len(res) != 1 || res[0].Diagnosis.Class != bounces.ClassMailboxFull || res[0].Suppressed != (i == 3) {
			t.Errorf("late mailbox full #%d = %+v, %v; want suppressed only at the third", i, res, err)
		}
	}
	if _, ok, _ := h.Suppressions.Get(ctx, "full@azet.sk"); !ok {
		t.Error("full@azet.sk is not suppressed after three late mailbox-full answers")
	}
}

// checkResent checks that task id is the one small resend to rcpt in
// campaign, linked to the message it resends.
func checkResent(t *testing.T, h *Handler, rdb *redis.Client, id, rcpt, campaign string) {
	t.Helper()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	q := h.policy().Route(rcpt[strings.LastIndexByte(rcpt, '@')+1:]).Queue
	ti, err := insp.GetTaskInfo(q, id)
	if err != nil {
		t.Fatalf("the resend %s in queue %s: %v", id, q, err)
	}
	p, err := decodeSendPayload(ti.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Small || p.To != rcpt || p.ResentOf != strings.TrimPrefix(id, "small.") || p.Template != "newsletter" || p.Campaign != campaign {
		t.Errorf("resend %s = %+v, want the small newsletter to %s resending %s", id, p, rcpt, strings.TrimPrefix(id, "small."))
	}
	if n := smallTasks(t, rdb); n != 1 {
		t.Errorf("%d small tasks in asynq, want 1", n)
	}
}

// smallTasks counts asynq's tasks whose id starts with "small.".
func smallTasks(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	keys, err := rdb.Keys(context.Background(), "asynq:{*}:t:small.*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// TestLateResendAfterSend sends a newsletter over SMTP, then ingests a
// late 552 5.3.4 for it twice: the serve stack's own sent record matches
// it, and the small variant is sent once, linked to the first.
func TestLateResendAfterSend(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	rdb := redistest.DB(t)
	world, err := smtpsim.Start(smtpsim.Config{Seed: 1, CatchAll: "other", Providers: []smtpsim.Provider{
		{Name: "google", Domains: []string{"gmail.com"}},
		{Name: "other", Domains: []string{"example.org"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer world.Close()
	st := testStack(t, rdb, world, policy.Config{}, Config{Concurrency: 2, MaxRetry: 2})
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Shutdown)
	ctx := context.Background()
	res, err := st.Client.EnqueueBatch(ctx, []Message{
		{Campaign: "late", To: "big@gmail.com", Template: "newsletter", Data: map[string]any{"first_name": "Jana", "offer": "20% off"}},
		{Campaign: "late", To: "plain@example.org", Template: "notice", Data: map[string]any{"first_name": "Ivo"}},
	})
	if err != nil || res[0].Status != StatusEnqueued || res[1].Status != StatusEnqueued {
		t.Fatalf("EnqueueBatch = %+v, %v", res, err)
	}
	id, plain := res[0].ID, res[1].ID
	insp := asynq.NewInspectorFromRedisClient(rdb)
	defer insp.Close()
	waitFinal(t, insp, 30*time.Second)

	sr := st.Suppressions.SentRecords()
	rec, ok, err := sr.Get(ctx, id)
	if err != nil || !ok || rec.Recipient != "big@gmail.com" || rec.Template != "newsletter" || rec.Campaign != "late" || rec.Payload == nil || rec.Queue != "google" {
		t.Fatalf("sent record of %s = %+v, %v, %v, want one with the payload", id, rec, ok, err)
	}
	if rec, ok, _ := sr.Get(ctx, plain); !ok || rec.Payload != nil {
		t.Errorf("sent record of a template without small variant = %+v, %v, want one without payload", rec, ok)
	}

	late := bounces.Event{Time: time.Now(), MessageID: "<" + id + ">", Recipient: "big@gmail.com", Code: 552, Enhanced: "5.3.4",
		Text: "552 5.3.4 Your message exceeded Google's message size limits.", Source: bounces.SourceDSN}
	for i := range 2 {
		got, err := st.Handler.IngestBatch(ctx, []Late{{Event: late}})
		if err != nil {
			t.Fatal(err)
		}
		if want := (i == 0); (got[0].ResentAs == "small."+id) != want || got[0].Duplicate == want {
			t.Errorf("late 552 #%d = %+v, want resent %v", i+1, got[0], want)
		}
	}
	waitFinal(t, insp, 30*time.Second)
	st.Shutdown()
	if n := world.Accepted("small." + id); n != 1 {
		t.Errorf("the small variant was accepted %d times, want 1", n)
	}
	if n := world.Accepted(id); n != 1 {
		t.Errorf("the first message was accepted %d times, want 1", n)
	}
	ti, err := insp.GetTaskInfo("google", "small."+id)
	if err != nil || ti.State != asynq.TaskStateCompleted {
		t.Errorf("the small resend: %+v, %v, want completed", ti, err)
	}
}
