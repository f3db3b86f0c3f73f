package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Embedded is an in-process Redis (miniredis) for the zero-setup default
// of serve and demo: everything in it is lost when the process exits. Its
// TTLs follow the wall clock (a ticker fast-forwards miniredis' clock).
type Embedded struct {
	m      *miniredis.Miniredis
	cancel context.CancelFunc
	done   chan struct{}
}

// StartEmbedded starts an in-process Redis on 127.0.0.1 and a free port.
func StartEmbedded() (*Embedded, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("queue: embedded redis: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Embedded{m: m, cancel: cancel, done: make(chan struct{})}
	go e.clock(ctx)
	return e, nil
}

// clock advances miniredis' TTLs with the wall clock.
func (e *Embedded) clock(ctx context.Context) {
	defer close(e.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			e.m.FastForward(now.Sub(last))
			last = now
		}
	}
}

// Addr is the embedded Redis' address.
func (e *Embedded) Addr() string { return e.m.Addr() }

// newEmbeddedClient returns a client of e.
func newEmbeddedClient(e *Embedded) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: e.Addr()})
}

// Close stops it; its data is gone.
func (e *Embedded) Close() {
	e.cancel()
	<-e.done
	e.m.Close()
}
