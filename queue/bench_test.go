package queue

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/policy/redistest"
	"github.com/bounceloop/bounceloop/queue/compose"
)

// benchBatch is the size of an EnqueueBatch call in the benchmarks.
const benchBatch = 500

// benchRun numbers the runs of a benchmark so that message ids never
// repeat, even across the b.N rounds the framework makes.
var benchRun atomic.Int64

// benchDomains spread the benchmark's recipients over several provider
// queues, as a campaign does.
var benchDomains = []string{"gmail.com", "seznam.cz", "centrum.sk", "azet.sk", "yahoo.com", "example.org"}

// benchMessages returns n messages of a campaign with fresh ids, each with
// template data and a List-Unsubscribe header.
func benchMessages(n int) []Message {
	run := benchRun.Add(1)
	ms := make([]Message, n)
	for i := range ms {
		ms[i] = Message{
			Campaign: "bench",
			ID:       fmt.Sprintf("r%d-%d@bench.bounceloop.test", run, i),
			To:       fmt.Sprintf("user%d@%s", i, benchDomains[i%len(benchDomains)]),
			Template: "notice",
			Data:     map[string]any{"first_name": fmt.Sprintf("Jana %d", i)},
			Headers:  map[string]string{"List-Unsubscribe": fmt.Sprintf("<https://example.org/u/%d>", i)},
		}
	}
	return ms
}

// enqueueBench is what the enqueue benchmarks share: one Redis database,
// a queue.Client set up as serve sets it up (shipped templates, the
// suppression check) and an asynq.Client on the same database.
type enqueueBench struct {
	rdb    *redis.Client
	client *Client
	asynq  *asynq.Client
	pol    policy.Config
	q      Config
}

func newEnqueueBench(b *testing.B) *enqueueBench {
	rdb := redistest.DB(b)
	pol := policy.Config{}.WithDefaults()
	q := Config{}.WithDefaults()
	keys := feedback.Keys{Prefix: "bench"}
	sup := feedback.NewSuppressions(rdb, keys)
	// One suppressed address that the campaign does not hit: the check
	// runs against a non-empty list.
	if err := sup.Add(context.Background(), "someone@example.net", feedback.Suppression{}); err != nil {
		b.Fatal(err)
	}
	c := NewClient(rdb, ClientOptions{Config: q, Policy: pol, Templates: compose.Default(), Suppressions: sup})
	// The asynq client shares rdb; asynq refuses to close a shared
	// connection, and redistest closes rdb.
	return &enqueueBench{rdb: rdb, client: c, asynq: asynq.NewClientFromRedisClient(rdb), pol: pol, q: q}
}

// reset empties the database (this benchmark's own) between rounds, keeping
// the suppression list, so that each round starts from the same state.
func (e *enqueueBench) reset(b *testing.B) {
	ctx := context.Background()
	iter := e.rdb.Scan(ctx, 0, "asynq:*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			e.rdb.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		b.Fatal(err)
	}
	if len(batch) > 0 {
		e.rdb.Unlink(ctx, batch...)
	}
}

// oneByOne enqueues ms with asynq.Client.Enqueue, one call per message, as
// tasks equivalent to the ones EnqueueBatch writes (same type, payload, id,
// queue, retry, timeout and retention).
func (e *enqueueBench) oneByOne(b *testing.B, ms []Message) {
	ctx := context.Background()
	now := time.Now()
	for _, m := range ms {
		domain, err := CheckAddress(m.To)
		if err != nil {
			b.Fatal(err)
		}
		p := SendPayload{Campaign: m.Campaign, ID: m.ID, From: e.q.From, To: m.To, Domain: domain,
			Template: m.Template, Data: m.Data, Headers: m.Headers, Enqueued: now}
		t, err := NewSendTask(p, asynq.Queue(e.pol.Route(domain).Queue), asynq.MaxRetry(e.q.MaxRetry),
			asynq.Timeout(e.q.TaskTimeout.D()), asynq.Retention(e.q.Retention.D()))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.asynq.EnqueueContext(ctx, t); err != nil {
			b.Fatal(err)
		}
	}
}

// batch enqueues ms with Client.EnqueueBatch in batches of benchBatch.
func (e *enqueueBench) batch(b *testing.B, ms []Message) {
	ctx := context.Background()
	for len(ms) > 0 {
		n := min(benchBatch, len(ms))
		rs, err := e.client.EnqueueBatch(ctx, ms[:n])
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rs {
			if r.Status != StatusEnqueued {
				b.Fatalf("EnqueueBatch: %s: %v %s, want enqueued", r.ID, r.Status, r.Reason)
			}
		}
		ms = ms[n:]
	}
}

// BenchmarkEnqueue compares asynq's Enqueue called once per message with
// Client.EnqueueBatch (batches of 500, with the render check of the
// shipped templates and the suppression check) on a real Redis. One op is
// one message (in ratio: one message enqueued both ways, by turns in
// chunks of 500); ratio reports speedup, how many times EnqueueBatch's
// throughput is asynq's, measured in the same loop on the same inputs.
func BenchmarkEnqueue(b *testing.B) {
	e := newEnqueueBench(b)

	b.Run("asynq_one_by_one", func(b *testing.B) {
		e.reset(b)
		ms := benchMessages(b.N)
		b.ReportAllocs()
		b.ResetTimer()
		e.oneByOne(b, ms)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})

	b.Run("enqueue_batch", func(b *testing.B) {
		e.reset(b)
		ms := benchMessages(b.N)
		b.ReportAllocs()
		b.ResetTimer()
		e.batch(b, ms)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})

	b.Run("ratio", func(b *testing.B) {
		e.reset(b)
		// The same inputs both ways: identical messages but for the id (a
		// second enqueue of an id would be a duplicate, not an enqueue).
		as := benchMessages(b.N)
		bs := make([]Message, len(as))
		for i, m := range as {
			m.ID = "b" + m.ID
			bs[i] = m
		}
		b.ReportAllocs()
		b.ResetTimer()
		var tAsynq, tBatch time.Duration
		for i, lo := 0, 0; lo < b.N; i, lo = i+1, lo+benchBatch {
			hi := min(lo+benchBatch, b.N)
			a, bb := as[lo:hi], bs[lo:hi]
			// Alternate which goes first so that neither always meets a
			// warmer or a busier Redis.
			if i%2 == 0 {
				tAsynq += timed(func() { e.oneByOne(b, a) })
				tBatch += timed(func() { e.batch(b, bb) })
			} else {
				tBatch += timed(func() { e.batch(b, bb) })
				tAsynq += timed(func() { e.oneByOne(b, a) })
			}
		}
		b.ReportMetric(float64(b.N)/tAsynq.Seconds(), "asynq_msgs/s")
		b.ReportMetric(float64(b.N)/tBatch.Seconds(), "batch_msgs/s")
		b.ReportMetric(tAsynq.Seconds()/tBatch.Seconds(), "speedup")
	})
}

// timed returns how long f took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}
