package queue

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/queue/compose"
)

// TestDemo runs a small demo on the embedded Redis and checks that every
// message reached a final state and that the world's script shows: the
// spam blocks at centrum.sk, deliveries everywhere; that the second
// campaign to the same list gets 605 for every suppressed address; and
// that the report of the demo's counters counts those 605s.
func TestDemo(t *testing.T) {
	emb, err := StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	rdb := newEmbeddedClient(emb)
	defer rdb.Close()
	cl, err := bounces.NewClassifier()
	if err != nil {
		t.Fatal(err)
	}
	opts := DemoOptions{Messages: 1500, Seed: 1, Templates: compose.Default(), Classifier: cl, Web: WebConfig{Listen: "off"},
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), SingleProcess: true, Second: true}
	d, err := StartDemo(rdb, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Three of the list were suppressed before (a previous month): both
	// campaigns refuse them at enqueue.
	ctx := context.Background()
	const before = 3
	for _, m := range d.Campaign(1500)[100 : 100+before] {
		if err := d.Stack.Suppressions.Add(ctx, m.To, feedback.Suppression{Class: bounces.ClassInvalidRecipient, Code: 550, Answer: "550 5.1.1 no such user"}); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := d.Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Messages != 1500 || sum.Delivered < 1400 || sum.Delivered > 1500-before {
		t.Errorf("summary: %d messages, %d delivered; want 1500 and most delivered", sum.Messages, sum.Delivered)
	}
	if sum.Domains["gmail.com"] == nil || sum.Domains["gmail.com"].Attempts < 1000 {
		t.Errorf("gmail.com: %+v, want about 71%% of the campaign", sum.Domains["gmail.com"])
	}
	if c := sum.Domains["centrum.sk"]; c == nil || c.ByClass["spam_blocked"] == 0 {
		t.Errorf("centrum.sk: %+v, want spam blocks", c)
	}
	total := 0
	for _, d := range sum.Domains {
		total += d.Delivered
	}
	if total != sum.Delivered {
		t.Errorf("domains deliver %d, summary says %d", total, sum.Delivered)
	}
	sec := sum.Second
	if sec == nil {
		t.Fatal("no second campaign in the summary")
	}
	// Every address suppressed by the end of the first campaign is refused
	// at enqueue by the second; the rest is enqueued.
	if sec.SuppressedAtEnqueue != sum.Suppressed || sum.Suppressed < before || sec.Enqueued != 1500-sec.SuppressedAtEnqueue {
		t.Errorf("second campaign: %+v; want the %d suppressed refused at enqueue and the rest enqueued", *sec, sum.Suppressed)
	}
	if sec.Delivered < 1400-sum.Suppressed {
		t.Errorf("second campaign delivered %d of %d", sec.Delivered, sec.Enqueued)
	}
	rep, err := d.Report(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got605 int64
	for _, c := range rep.Codes {
		if c.Code == 605 {
			got605 = c.Count
		}
	}
	if want := int64(before + sec.SuppressedAtEnqueue + sec.SuppressedAtSend); got605 != want {
		t.Errorf("the report counts %d answers 605, want %d (%d before the first campaign, %d refused by the second, %d before sending)",
			got605, want, before, sec.SuppressedAtEnqueue, sec.SuppressedAtSend)
	}
	if rep.Totals.Attempts < int64(2*1500-sum.Suppressed) {
		t.Errorf("the report counts %d attempts for two campaigns of 1500", rep.Totals.Attempts)
	}
}

func TestSpeedUp(t *testing.T) {
	r := func(n float64) policy.Rate { return policy.Rate{N: n, Per: time.Second} }
	c := policy.Config{Providers: map[string]policy.Provider{
		"google": {Settings: policy.Settings{Rate: r(10), MinRate: r(2), MaxRate: r(20), MaxConnections: 4, ReviewWindow: 500}, Domains: []string{"gmail.com"}},
	}}
	got := speedUp(c.WithDefaults(), 60)
	if err := got.Validate(); err != nil {
		t.Fatalf("speedUp gives an invalid policy: %v", err)
	}
	s := got.Route("gmail.com").Settings
	if s.Rate.N != 600 || s.MinRate.N != 120 || s.MaxRate.N != 1200 || s.MaxConnections != 16 || s.ReviewWindow != demoReviewWindow {
		t.Errorf("speedUp(gmail.com) = %+v", s)
	}
}
