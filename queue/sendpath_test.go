package queue

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/bounceloop/bounceloop/policy/redistest"
)

// TestAddrHashPooled: the handler's pooled hash gives AddrHash's value,
// also when many workers hash at once.
func TestAddrHashPooled(t *testing.T) {
	t.Parallel()
	h := &Handler{HashKey: []byte("k3y")}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				addr := fmt.Sprintf("User%d.%d@Example.ORG", g, i)
				if got, want := h.addrHash(addr), AddrHash(h.HashKey, addr); got != want {
					t.Errorf("addrHash(%q) = %q, want %q", addr, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestPipeBatch: concurrent workers' commands all run and each gets its
// own results back, in fewer pipelines than workers when they overlap.
func TestPipeBatch(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.Client(t)
	ctx := context.Background()
	var b pipeBatch
	var mu sync.Mutex
	pipes := 0
	newPipe := func() redis.Pipeliner {
		mu.Lock()
		pipes++
		mu.Unlock()
		return rdb.Pipeline()
	}
	const workers, rounds = 16, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			key := fmt.Sprintf("%s:batch:%d", prefix, w)
			for i := range rounds {
				var incr *redis.IntCmd
				var get *redis.StringCmd
				cmds := b.do(newPipe, func(p redis.Pipeliner) {
					incr = p.Incr(ctx, key)
					get = p.Get(ctx, key+":missing")
				})
				if len(cmds) != 2 || cmds[0] != incr || cmds[1] != get {
					t.Errorf("worker %d: do returned %d commands, want its own 2", w, len(cmds))
					return
				}
				if incr.Val() != int64(i+1) || incr.Err() != nil {
					t.Errorf("worker %d round %d: INCR = %d, %v; want %d", w, i, incr.Val(), incr.Err(), i+1)
					return
				}
				if get.Err() != redis.Nil || cmdsErr(cmds) != nil {
					t.Errorf("worker %d: GET missing = %v, cmdsErr = %v; want redis.Nil, nil", w, get.Err(), cmdsErr(cmds))
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d requests in %d pipelines", workers*rounds, pipes)
	if pipes > workers*rounds {
		t.Errorf("%d pipelines for %d requests", pipes, workers*rounds)
	}
}
