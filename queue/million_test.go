package queue

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/policy/redistest"
	"github.com/bounceloop/bounceloop/queue/compose"
	"github.com/bounceloop/bounceloop/queue/internal/smtpsim"
	"github.com/bounceloop/bounceloop/queue/sender"
)

// TestLoadMillion is issue 6's load test: N recipients (default 20000;
// the full run is one million) enqueued with EnqueueBatch, then delivered
// by one in-process Stack over real SMTP to the simulated world, on a
// redis-server of its own (not the shared one, so that INFO memory is
// ours alone). It reports the enqueue time, the delivery throughput, Redis
// memory per queued message and per finished message (retained), and
// checks that memory returns to its baseline once the retention has passed
// (asynq's janitor deletes completed tasks, the idempotency records
// expire):
//
//	BOUNCELOOP_LOAD=1 BOUNCELOOP_LOAD_N=1000000 go test -run TestLoadMillion -v -timeout 60m ./queue/
//
// Knobs: BOUNCELOOP_LOAD_N, BOUNCELOOP_LOAD_CONCURRENCY (workers, default
// 20), BOUNCELOOP_LOAD_RETENTION_S ([queue] retention and sent_record_ttl,
// default 60 s: short, so that the test sees the memory come back).
func TestLoadMillion(t *testing.T) {
	loadOnly(t)
	n := envInt(t, "BOUNCELOOP_LOAD_N", 20000)
	conc := envInt(t, "BOUNCELOOP_LOAD_CONCURRENCY", 20)
	retention := time.Duration(envInt(t, "BOUNCELOOP_LOAD_RETENTION_S", 60)) * time.Second
	ctx := context.Background()

	rdb := redis.NewClient(&redis.Options{Addr: redistest.StartServer(t).Addr()})
	defer rdb.Close()
	domains := []string{"a.load.test", "b.load.test", "c.load.test", "d.load.test", "e.load.test"}
	world, err := smtpsim.Start(smtpsim.Config{Seed: 1, CatchAll: "sim",
		Providers: []smtpsim.Provider{{Name: "sim", Domains: domains}}})
	if err != nil {
		t.Fatal(err)
	}
	defer world.Close()
	// Rates far above what the machine does: the limiter runs, never
	// throttles; one connection pool of conc per domain.
	pol := policy.Config{Domains: map[string]policy.Settings{}}
	for _, d := range domains {
		pol.Domains[d] = policy.Settings{Rate: mustRate(t, "1000000/s"), MaxConnections: conc, MaxMessagesPerConnection: 1000}
	}
	cl, err := bounces.NewClassifier()
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewStack(StackConfig{
		Redis: rdb, KeyPrefix: "load", Queue: Config{Concurrency: conc, Retention: policy.Duration(retention), SentRecordTTL: policy.Duration(retention)},
		Web: WebConfig{Listen: "off"}, Policy: pol,
		SMTP:      sender.Config{Mode: sender.ModeMX, Routes: world.Routes(), HeloName: "bounceloop.test"},
		Templates: compose.Default(), Classifier: cl, Resolver: noDNS{},
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel),
	})
	if err != nil {
		t.Fatal(err)
	}

	// 1. Enqueue, the stack not started: memory per queued message.
	baseInfo := memInfo(t, rdb)
	base := baseInfo["used_memory"]
	start := time.Now()
	batch := make([]Message, 0, benchBatch)
	for i := 0; i < n; i += len(batch) {
		batch = batch[:0]
		for j := i; j < min(i+benchBatch, n); j++ {
			batch = append(batch, Message{Campaign: "million", To: fmt.Sprintf("user%d@%s", j, domains[j%len(domains)]),
				Template: "notice", Data: map[string]any{"first_name": "Jana"}})
		}
		rs, err := st.Client.EnqueueBatch(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Status != StatusEnqueued {
				t.Fatalf("enqueue %s: %v %s", r.ID, r.Status, r.Reason)
			}
		}
	}
	enqTime := time.Since(start)
	queued := usedMemory(t, rdb)
	t.Logf("enqueued %d messages in %v: %.0f msgs/s", n, enqTime.Round(time.Millisecond), float64(n)/enqTime.Seconds())
	t.Logf("redis used_memory: baseline %s, queued %s: %.0f bytes per queued message",
		mib(base), mib(queued), float64(queued-base)/float64(n))
	t.Logf("keys per queued message: %s", keyShapes(t, rdb, n))

	// 2. Deliver.
	var answered, delivered atomic.Int64
	all := make(chan struct{})
	st.Handler.OnEvent = func(ctx context.Context, e bounces.Event, d bounces.Diagnosis) {
		if d.Class == bounces.ClassDelivered {
			delivered.Add(1)
		}
		if answered.Add(1) == int64(n) {
			close(all)
		}
	}
	start = time.Now()
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	defer st.Shutdown()
	limit := max(10*time.Minute, time.Duration(n/100)*time.Second)
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	peak := queued
wait:
	for {
		select {
		case <-all:
			break wait
		case <-tick.C:
			m := usedMemory(t, rdb)
			peak = max(peak, m)
			el := time.Since(start)
			t.Logf("%6.0fs: %d of %d answered (%.0f msgs/s), used_memory %s", el.Seconds(), answered.Load(), n,
				float64(answered.Load())/el.Seconds(), mib(m))
		case <-time.After(time.Until(start.Add(limit))):
			t.Fatalf("%d of %d messages answered after %v", answered.Load(), n, limit)
		}
	}
	delTime := time.Since(start)
	done := usedMemory(t, rdb)
	peak = max(peak, done)
	t.Logf("delivered %d of %d in %v: %.0f msgs/s, %d workers", delivered.Load(), n, delTime.Round(time.Millisecond),
		float64(n)/delTime.Seconds(), conc)
	t.Logf("redis used_memory when all were delivered: %s (%.0f bytes per finished message, retained for %v); peak seen %s",
		mib(done), float64(done-base)/float64(n), retention, mib(peak))
	t.Logf("keys per finished message: %s", keyShapes(t, rdb, n))
	ws := world.Stats()
	if ws.Accepted != n || ws.Duplicates != 0 || delivered.Load() != int64(n) {
		t.Errorf("world accepted %d (duplicates %d), deliveries %d, want %d and 0", ws.Accepted, ws.Duplicates, delivered.Load(), n)
	}

	// 3. Back to the baseline: the retention passes, asynq's janitor
	// (every 8 s) deletes the completed tasks and the idempotency records
	// expire. Allowed above the baseline: 1 MiB (the server's own keys,
	// the counters, the review window, asynq's daily stats).
	const slack = 1 << 20
	deadline := start.Add(delTime + retention + 3*time.Minute)
	var last int64
	for {
		last = usedMemory(t, rdb)
		if last <= base+slack {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("used_memory %s after the retention, want <= baseline %s + 1 MiB; left: %s",
				mib(last), mib(base), keyShapes(t, rdb, 1))
			break
		}
		<-time.After(5 * time.Second)
	}
	t.Logf("redis used_memory %v after the last delivery: %s (baseline %s, %+d bytes); dbsize %d; keys: %s",
		time.Since(start.Add(delTime)).Round(time.Second), mib(last), mib(base), last-base,
		rdb.DBSize(ctx).Val(), keyShapes(t, rdb, 1))
	t.Logf("INFO memory at the baseline: %s", memParts(baseInfo))
	t.Logf("INFO memory at the end:      %s", memParts(memInfo(t, rdb)))
	t.Logf("MEMORY STATS at the end: %s", memoryStats(t, rdb))
}

// memoryStats formats the fields of MEMORY STATS that are not zero.
func memoryStats(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	v, err := rdb.Do(context.Background(), "MEMORY", "STATS").Result()
	if err != nil {
		t.Fatal(err)
	}
	flat := map[string]any{}
	switch m := v.(type) {
	case map[any]any: // RESP3
		for k, x := range m {
			flat[fmt.Sprint(k)] = x
		}
	case []any: // RESP2
		for i := 0; i+1 < len(m); i += 2 {
			flat[fmt.Sprint(m[i])] = m[i+1]
		}
	}
	var sb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(flat)) {
		if x, ok := flat[k].(int64); ok && x != 0 {
			fmt.Fprintf(&sb, "%s=%d ", k, x)
		}
	}
	return strings.TrimSpace(sb.String())
}

// usedMemory returns INFO memory's used_memory.
func usedMemory(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	m := memInfo(t, rdb)
	v, ok := m["used_memory"]
	if !ok {
		t.Fatal("INFO memory has no used_memory")
	}
	return v
}

// memInfo returns the numeric fields of INFO memory.
func memInfo(t *testing.T, rdb *redis.Client) map[string]int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

// memParts formats the parts of used_memory that explain a difference.
func memParts(m map[string]int64) string {
	var sb strings.Builder
	for _, k := range []string{"used_memory_dataset", "used_memory_overhead", "used_memory_scripts", "used_memory_vm_eval", "number_of_cached_scripts"} {
		fmt.Fprintf(&sb, "%s=%d ", k, m[k])
	}
	return strings.TrimSpace(sb.String())
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// keyShapes counts the keys by shape (ids and numbers replaced by "*")
// and divides by per; it samples MEMORY USAGE of one key of each shape.
func keyShapes(t *testing.T, rdb *redis.Client, per int) string {
	t.Helper()
	ctx := context.Background()
	count := map[string]int{}
	sample := map[string]string{}
	iter := rdb.Scan(ctx, 0, "*", 5000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		s := keyShape(k)
		count[s]++
		if _, ok := sample[s]; !ok {
			sample[s] = k
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	shapes := make([]string, 0, len(count))
	for s := range count {
		shapes = append(shapes, s)
	}
	sort.Slice(shapes, func(i, j int) bool { return count[shapes[i]] > count[shapes[j]] })
	var sb strings.Builder
	for i, s := range shapes {
		if i == 12 {
			fmt.Fprintf(&sb, "... (%d shapes)", len(shapes))
			break
		}
		mem, _ := rdb.MemoryUsage(ctx, sample[s]).Result()
		fmt.Fprintf(&sb, "%s ×%.3g (%d B each); ", s, float64(count[s])/float64(per), mem)
	}
	return strings.TrimSuffix(sb.String(), "; ")
}

// keyShape replaces the message id or number at the end of a key by "*".
func keyShape(k string) string {
	for _, p := range []string{":t:", ":sent:", ":sent_record:", ":late:", ":counts:", ":processed:", ":failed:", ":servers:", ":workers:"} {
		if i := strings.Index(k, p); i >= 0 {
			return k[:i+len(p)] + "*"
		}
	}
	return k
}
