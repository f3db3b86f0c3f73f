package queue

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/queue/compose"
)

// TestDemo runs a small demo on the embedded Redis and checks that every
// message reached a final state and that the world's script shows: the
// spam blocks at centrum.sk, deliveries everywhere.
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
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), SingleProcess: true}
	d, err := StartDemo(rdb, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sum, err := d.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Messages != 1500 || sum.Delivered < 1400 || sum.Delivered > 1500 {
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
