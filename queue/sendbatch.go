package queue

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// pipeBatch coalesces the Redis round trips of concurrent workers (the
// check before sending, the records after a delivery) into shared
// pipelines, as a database's group commit does: a worker whose commands
// find no pipeline in flight sends them at once, alone; the commands that
// come while one is in flight wait for it and then go together in the
// next, sent by the first of them. An idle server pays no extra latency;
// a busy one pays one read and one write per batch instead of per worker,
// in this process and in Redis, which share the machine's CPUs with the
// SMTP side.
//
// A batch runs with its own timeout (batchTimeout, on top of the client's
// read and write timeouts), not the workers' contexts: a worker whose
// context ends still has its writes made (the record of an accepted
// message is worth writing then too) and waits for them, at most that
// long. The zero value is ready to use; safe for concurrent use.
type pipeBatch struct {
	mu      sync.Mutex
	busy    bool        // a pipeline is in flight
	waiting []*batchReq // commands for the next one
}

// batchReq is one worker's commands: add queues them on the pipeline,
// cmds are they once run; wake says the batch ran (false) or that its
// worker sends the next (true).
type batchReq struct {
	add  func(redis.Pipeliner)
	cmds []redis.Cmder
	wake chan bool
}

// Limits of one batch.
const (
	maxBatch     = 64
	batchTimeout = 10 * time.Second
)

// do runs add's commands on a pipeline of newPipe, alone or with other
// workers', and returns them once they have run (each holds its result).
// newPipe is called by whoever sends the batch.
func (b *pipeBatch) do(newPipe func() redis.Pipeliner, add func(redis.Pipeliner)) []redis.Cmder {
	r := &batchReq{add: add, wake: make(chan bool, 1)}
	b.mu.Lock()
	if b.busy {
		b.waiting = append(b.waiting, r)
		b.mu.Unlock()
		if lead := <-r.wake; !lead {
			return r.cmds // ran in another worker's batch
		}
		b.mu.Lock()
	} else {
		b.busy = true
	}
	// This worker sends the batch: its own commands and those waiting.
	n := min(len(b.waiting), maxBatch-1)
	batch := make([]*batchReq, 0, n+1)
	batch = append(batch, r)
	batch = append(batch, b.waiting[:n]...)
	b.waiting = append(b.waiting[:0:0], b.waiting[n:]...)
	b.mu.Unlock()

	pipe := newPipe()
	ends := make([]int, len(batch))
	for i, q := range batch {
		q.add(pipe)
		ends[i] = pipe.Len()
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	cmds, _ := pipe.Exec(ctx) // each command holds its own result
	cancel()
	lo := 0
	for i, q := range batch {
		if hi := ends[i]; hi <= len(cmds) {
			q.cmds = cmds[lo:hi]
			lo = hi
		}
	}

	b.mu.Lock()
	if len(b.waiting) > 0 {
		next := b.waiting[0]
		b.waiting = b.waiting[1:]
		next.wake <- true
	} else {
		b.busy = false
	}
	b.mu.Unlock()
	for _, q := range batch[1:] {
		q.wake <- false
	}
	return r.cmds
}

// cmdsErr returns the first error of cmds but redis.Nil.
func cmdsErr(cmds []redis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && err != redis.Nil {
			return err
		}
	}
	return nil
}
