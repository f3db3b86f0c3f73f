package queue

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy/redistest"
)

// TestMarkSentAgain: the idempotency record of a message delivered while
// Redis was away is written once Redis is back (so the message is not sent
// again), and the worker waits no longer than its context.
func TestMarkSentAgain(t *testing.T) {
	srv := redistest.StartServer(t, "--appendonly", "yes")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	defer rdb.Close()
	h := &Handler{Config: Config{}.WithDefaults(), Suppressions: feedback.NewSuppressions(rdb, feedback.Keys{Prefix: "idem"})}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	first := h.Suppressions.MarkSent(bg, "m1@shop.example", "250 2.0.0 OK", time.Hour)
	if first == nil {
		t.Fatal("MarkSent with Redis away = nil, want an error")
	}

	// Redis away for good: the context bounds the wait.
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	start := time.Now()
	err := h.markSentAgain(ctx, "m1@shop.example", "250 2.0.0 OK", first)
	cancel()
	if err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("markSentAgain without Redis = %v after %v, want an error when the context ends", err, time.Since(start))
	}

	// Redis back after a second: the record is written.
	back := make(chan error, 1)
	go func() {
		tm := time.NewTimer(time.Second)
		defer tm.Stop()
		<-tm.C
		back <- srv.Start()
	}()
	ctx, cancel = context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	if err := h.markSentAgain(ctx, "m1@shop.example", "250 2.0.0 OK", first); err != nil {
		t.Errorf("markSentAgain with Redis back = %v", err)
	}
	if err := <-back; err != nil {
		t.Fatal(err)
	}
	_, sent, answer, err := h.Suppressions.PreSend(bg, "a@shop.example", "m1@shop.example")
	if err != nil || !sent || answer != "250 2.0.0 OK" {
		t.Errorf("PreSend after the outage = sent %v %q %v, want the record", sent, answer, err)
	}
	if err := h.markSentAgain(bg, "m2@shop.example", "x", nil); err != nil {
		t.Errorf("markSentAgain(nil) = %v", err)
	}
}
