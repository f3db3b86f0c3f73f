package policy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/bounceloop/bounceloop/policy/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

// setup gives a test its Redis prefix and a function making Limiters, each
// with its own client (as separate processes would have), and checks for
// leaked goroutines once every client is closed.
func setup(t *testing.T) (prefix string, newLimiter func() *Limiter) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	rdb, prefix := redistest.Client(t)
	addr := rdb.Options().Addr
	return prefix, func() *Limiter {
		c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
		t.Cleanup(func() { _ = c.Close() })
		return NewLimiter(c, prefix)
	}
}

func TestRateKey(t *testing.T) {
	tests := []struct {
		prefix, key, want string
	}{
		{"bounceloop", "domain:gmail.com", "bounceloop:rate:domain:gmail.com"},
		{"acme", "provider:google", "acme:rate:provider:google"},
		{"bounceloop", "rate:x", "bounceloop:rate:rate:x"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := rateKey(tt.prefix, tt.key); got != tt.want {
				t.Errorf("rateKey(%q, %q) = %q, want %q", tt.prefix, tt.key, got, tt.want)
			}
		})
	}
}

func TestGCRALimit(t *testing.T) {
	tests := []struct {
		name  string
		r     Rate
		burst int
		want  redis_rate.Limit
	}{
		{"integer per second", perSec(50), 50, redis_rate.Limit{Rate: 50, Burst: 50, Period: time.Second}},
		{"integer per hour", Rate{100, time.Hour}, 3, redis_rate.Limit{Rate: 100, Burst: 3, Period: time.Hour}},
		{"half per second", perSec(0.5), 1, redis_rate.Limit{Rate: 1, Burst: 1, Period: 2 * time.Second}},
		{"2.5 per second", perSec(2.5), 3, redis_rate.Limit{Rate: 1, Burst: 3, Period: 400 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gcraLimit(tt.r, tt.burst); got != tt.want {
				t.Errorf("gcraLimit(%v, %d) = %+v, want %+v", tt.r, tt.burst, got, tt.want)
			}
		})
	}
}

func TestThrottledError(t *testing.T) {
	var err error = fmt.Errorf("send: %w", &ThrottledError{Key: "provider:google", RetryIn: 1500 * time.Millisecond})
	if !errors.Is(err, ErrThrottled) {
		t.Errorf("errors.Is(%v, ErrThrottled) = false, want true", err)
	}
	var te *ThrottledError
	if !errors.As(err, &te) || te.Key != "provider:google" || te.RetryIn != 1500*time.Millisecond {
		t.Errorf("errors.As(%v) = %+v, want Key provider:google RetryIn 1.5s", err, te)
	}
	if got, want := te.Error(), "policy: provider:google throttled: next slot in 1.5s"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if errors.Is(errors.New("other"), ErrThrottled) {
		t.Errorf("errors.Is(other, ErrThrottled) = true, want false")
	}
}

// TestLimiterUnlimited: the zero Rate never reaches Redis (the client
// points at a closed port).
func TestLimiterUnlimited(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer rdb.Close()
	l := NewLimiter(rdb, "")
	for range 1000 {
		if err := l.Wait(context.Background(), "domain:x.example", Rate{}, 0, 0); err != nil {
			t.Fatalf("Wait(zero rate) = %v, want nil", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Wait(ctx, "domain:x.example", Rate{}, 0, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait(cancelled ctx) = %v, want context.Canceled", err)
	}
	if err := l.Wait(context.Background(), "domain:x.example", perSec(1), 1, 0); err == nil || errors.Is(err, ErrThrottled) {
		t.Errorf("Wait(no Redis) = %v, want a Redis error", err)
	}
	if err := l.Wait(context.Background(), "k", Rate{N: -1, Per: time.Second}, 1, 0); err == nil {
		t.Errorf("Wait(-1/s) = nil, want an error")
	}
}

func TestLimiterKeys(t *testing.T) {
	prefix, newLimiter := setup(t)
	l := newLimiter()
	if err := l.Wait(context.Background(), "domain:gmail.com", perSec(1), 1, 0); err != nil {
		t.Fatalf("Wait() = %v, want nil", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr(t)})
	defer rdb.Close()
	keys, err := rdb.Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := prefix + ":rate:domain:gmail.com"
	if len(keys) != 1 || keys[0] != want {
		t.Errorf("Redis keys after Wait = %q, want [%q]", keys, want)
	}
	if n, _ := rdb.Exists(context.Background(), "rate:"+want).Result(); n != 0 {
		t.Errorf("redis_rate's own prefixed key %q exists", "rate:"+want)
	}
}

// TestLimiterBurstThenThrottle: the burst passes at once, the next call
// is throttled with a RetryIn of about one interval, a wait long enough
// gets the slot.
func TestLimiterBurstThenThrottle(t *testing.T) {
	_, newLimiter := setup(t)
	l := newLimiter()
	ctx := context.Background()
	const key = "domain:burst.example"
	r := perSec(10)
	for i := range 5 {
		if err := l.Wait(ctx, key, r, 5, 0); err != nil {
			t.Fatalf("Wait #%d within burst = %v, want nil", i, err)
		}
	}
	err := l.Wait(ctx, key, r, 5, 0)
	var te *ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("Wait after burst = %v, want *ThrottledError", err)
	}
	if te.Key != key || te.RetryIn <= 0 || te.RetryIn > 150*time.Millisecond {
		t.Errorf("Wait after burst = %+v, want key %s and RetryIn in (0, 150ms]", te, key)
	}
	start := time.Now()
	if err := l.Wait(ctx, key, r, 5, time.Second); err != nil {
		t.Fatalf("Wait(maxWait 1s) = %v, want nil", err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("Wait(maxWait 1s) took %v, want about one interval (100ms)", d)
	}
}

// TestLimiterFractional: 0.5/s is one message every 2 s.
func TestLimiterFractional(t *testing.T) {
	_, newLimiter := setup(t)
	l := newLimiter()
	ctx := context.Background()
	if err := l.Wait(ctx, "domain:slow.example", perSec(0.5), 1, 0); err != nil {
		t.Fatalf("first Wait = %v, want nil", err)
	}
	var te *ThrottledError
	if err := l.Wait(ctx, "domain:slow.example", perSec(0.5), 1, 0); !errors.As(err, &te) || te.RetryIn < 1800*time.Millisecond || te.RetryIn > 2*time.Second {
		t.Errorf("second Wait = %v, want throttled with RetryIn ~2s", err)
	}
}

// TestLimiterRateChange: a new rate applies at the next call, in the
// local limiter at once and in Redis after the slots already granted at the
// old rate (GCRA keeps its theoretical arrival time).
func TestLimiterRateChange(t *testing.T) {
	_, newLimiter := setup(t)
	l := newLimiter()
	ctx := context.Background()

	t.Run("raise", func(t *testing.T) {
		const key = "provider:raise"
		if err := l.Wait(ctx, key, perSec(1), 1, 0); err != nil {
			t.Fatal(err)
		}
		if err := l.Wait(ctx, key, perSec(1), 1, 0); !errors.Is(err, ErrThrottled) {
			t.Fatalf("Wait at 1/s = %v, want throttled", err)
		}
		// 100/s, burst 1: after the 1 s already granted, 10 ms apart.
		start := time.Now()
		for i := range 20 {
			if err := l.Wait(ctx, key, perSec(100), 1, 2*time.Second); err != nil {
				t.Fatalf("Wait #%d at 100/s = %v, want nil", i, err)
			}
		}
		if d := time.Since(start); d < 900*time.Millisecond || d > 1500*time.Millisecond {
			t.Errorf("20 waits after raising 1/s to 100/s took %v, want the old 1 s slot plus ~200ms", d)
		}
		lim := l.localFor(key, perSec(100), 1, time.Now()).lim
		if lim.Limit() != 100 || lim.Burst() != 1 {
			t.Errorf("local limiter = %v/s burst %d, want 100/s burst 1", lim.Limit(), lim.Burst())
		}
	})
	t.Run("cut", func(t *testing.T) {
		const key = "provider:cut"
		for i := range 10 {
			if err := l.Wait(ctx, key, perSec(100), 10, 0); err != nil {
				t.Fatalf("Wait #%d at 100/s burst 10 = %v, want nil", i, err)
			}
		}
		// Cut to 1/s burst 1: applies at the next call; the local limiter,
		// whose bucket the burst emptied, wants up to one new interval.
		var te *ThrottledError
		if err := l.Wait(ctx, key, perSec(1), 1, 0); !errors.As(err, &te) || te.RetryIn <= 0 || te.RetryIn > time.Second {
			t.Fatalf("Wait after the cut = %v, want throttled for at most 1s", err)
		}
		if err := l.Wait(ctx, key, perSec(1), 1, time.Second+50*time.Millisecond); err != nil {
			t.Fatalf("Wait(maxWait 1.05s) after the cut = %v, want nil", err)
		}
		// Then one a second.
		if err := l.Wait(ctx, key, perSec(1), 1, 0); !errors.As(err, &te) || te.RetryIn < 800*time.Millisecond {
			t.Errorf("Wait at the cut rate = %v, want throttled for ~1s", err)
		}
	})
}

func TestLimiterContext(t *testing.T) {
	_, newLimiter := setup(t)
	l := newLimiter()
	const key = "domain:ctx.example"
	r := perSec(2)
	if err := l.Wait(context.Background(), key, r, 1, 0); err != nil {
		t.Fatal(err)
	}

	t.Run("cancel while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		stop := time.AfterFunc(50*time.Millisecond, cancel)
		defer stop.Stop()
		start := time.Now()
		err := l.Wait(ctx, key, r, 1, 5*time.Second)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Wait(cancelled after 50ms) = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 300*time.Millisecond {
			t.Errorf("Wait returned %v after cancel, want promptly", d)
		}
	})
	t.Run("deadline shorter than the slot", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := l.Wait(ctx, key, r, 1, 5*time.Second)
		if !errors.Is(err, ErrThrottled) {
			t.Errorf("Wait(deadline 20ms, slot ~500ms away) = %v, want throttled at once", err)
		}
		if d := time.Since(start); d > 15*time.Millisecond {
			t.Errorf("Wait took %v, want no waiting", d)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := l.Wait(ctx, key, r, 1, time.Second); !errors.Is(err, context.Canceled) {
			t.Errorf("Wait(cancelled) = %v, want context.Canceled", err)
		}
	})
}

// TestLimiterPrecision: three Limiters (three processes, each with its own
// client) share a key at 50/s for 3 s, with 16 goroutines each that retry
// after every ThrottledError as asynq would. The total admitted must be
// 50×3 + burst ± 5%.
func TestLimiterPrecision(t *testing.T) {
	if testing.Short() {
		t.Skip("3 s of real time")
	}
	_, newLimiter := setup(t)
	const (
		procs      = 3
		goroutines = 16
		perSecond  = 50
		burst      = 50
		window     = 3 * time.Second
		maxWait    = 100 * time.Millisecond
	)
	var admitted, throttled, badRetry atomic.Int64
	var maxRetry atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	var wg sync.WaitGroup
	for range procs {
		l := newLimiter()
		for range goroutines {
			wg.Go(func() {
				for ctx.Err() == nil {
					err := l.Wait(ctx, "provider:precise", perSec(perSecond), burst, maxWait)
					var te *ThrottledError
					switch {
					case err == nil:
						admitted.Add(1)
					case errors.As(err, &te):
						throttled.Add(1)
						// A sensible RetryIn: positive, and no more than the
						// time the whole burst takes to come back.
						if te.RetryIn <= 0 || te.RetryIn > time.Second {
							badRetry.Add(1)
						}
						if int64(te.RetryIn) > maxRetry.Load() {
							maxRetry.Store(int64(te.RetryIn))
						}
						_ = sleep(ctx, te.RetryIn)
					case errors.Is(err, context.DeadlineExceeded):
					default:
						t.Errorf("Wait() = %v", err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	want := float64(perSecond)*window.Seconds() + burst
	got := float64(admitted.Load())
	t.Logf("admitted %v (want %v ± 5%%), throttled %d, max RetryIn %v",
		got, want, throttled.Load(), time.Duration(maxRetry.Load()))
	if math.Abs(got-want) > 0.05*want {
		t.Errorf("admitted %v in %v at %d/s burst %d across %d processes, want %v ± 5%%", got, window, perSecond, burst, procs, want)
	}
	if throttled.Load() == 0 {
		t.Errorf("no ThrottledError with %d goroutines on %d/s, want some", procs*goroutines, perSecond)
	}
	if n := badRetry.Load(); n > 0 {
		t.Errorf("%d ThrottledErrors with RetryIn outside (0, 1s]", n)
	}
}

// TestLimiterIsolation: a key hammered past its rate does not slow
// another key of the same Limiter.
func TestLimiterIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("real time")
	}
	_, newLimiter := setup(t)
	l := newLimiter()
	const window = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()

	var wg sync.WaitGroup
	var slowThrottled atomic.Int64
	for range 16 { // the throttled domain: 5/s, 16 eager workers
		wg.Go(func() {
			for ctx.Err() == nil {
				err := l.Wait(ctx, "domain:slow.example", perSec(5), 1, 50*time.Millisecond)
				if te := (*ThrottledError)(nil); errors.As(err, &te) {
					slowThrottled.Add(1)
					_ = sleep(ctx, te.RetryIn) // back to the queue, as asynq would
				}
			}
		})
	}
	var fast atomic.Int64
	for range 8 { // the other domain: 200/s, burst 20
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := l.Wait(ctx, "domain:fast.example", perSec(200), 20, 100*time.Millisecond); err == nil {
					fast.Add(1)
				}
			}
		})
	}
	wg.Wait()
	want := 200*window.Seconds() + 20
	t.Logf("fast key admitted %d (want %v ± 5%%) while the slow key was throttled %d times", fast.Load(), want, slowThrottled.Load())
	if got := float64(fast.Load()); math.Abs(got-want) > 0.05*want {
		t.Errorf("fast key admitted %v in %v next to a throttled key, want %v ± 5%%", got, window, want)
	}
	if slowThrottled.Load() == 0 {
		t.Errorf("slow key never throttled")
	}
}

// BenchmarkLimiterWait reports waits/s of an unlimited key (no Redis) and
// of a key whose rate is never reached (one GCRA round trip per lease of up
// to 64 waits).
func BenchmarkLimiterWait(b *testing.B) {
	rdb, prefix := redistest.Client(b)
	l := NewLimiter(rdb, prefix)
	ctx := context.Background()
	for _, bm := range []struct {
		name string
		r    Rate
	}{
		{"unlimited", Rate{}},
		{"high-rate", perSec(MaxRatePerSecond)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			key := "provider:bench-" + bm.name
			b.ReportAllocs()
			b.SetParallelism(8) // workers per CPU, as a server runs them
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := l.Wait(ctx, key, bm.r, 0, time.Second); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "waits/s")
		})
	}
}

// countingHook counts the scripts a client runs (GCRA calls).
type countingHook struct{ n atomic.Int64 }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func TestLeaseSize(t *testing.T) {
	tests := []struct {
		r     Rate
		burst int
		want  int
	}{
		{perSec(50), 50, 1},
		{perSec(99), 99, 1},
		{perSec(100), 100, 2},
		{perSec(1000), 1000, 20},
		{perSec(1000), 5, 5},
		{perSec(1000), 1, 1},
		{perSec(MaxRatePerSecond), MaxRatePerSecond, maxLease},
		{Rate{N: 6000, Per: time.Minute}, 100, 2},
	}
	for _, tt := range tests {
		if got := leaseSize(tt.r, tt.burst); got != tt.want {
			t.Errorf("leaseSize(%v, %d) = %d, want %d", tt.r, tt.burst, got, tt.want)
		}
	}
}

// TestLimiterLease: at a high rate one GCRA call serves many Waits; a
// lease does not outlive a change of the rate.
func TestLimiterLease(t *testing.T) {
	prefix, _ := setup(t)
	hook := &countingHook{}
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr(t), PoolSize: 16})
	rdb.AddHook(hook)
	t.Cleanup(func() { _ = rdb.Close() })
	l := NewLimiter(rdb, prefix)
	ctx := context.Background()

	const waits = 2000
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 8 {
		wg.Go(func() {
			for next.Add(1) <= waits {
				if err := l.Wait(ctx, "provider:fast", perSec(100000), 0, time.Second); err != nil {
					t.Errorf("Wait at 100000/s = %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	calls := hook.n.Load()
	t.Logf("%d waits at 100000/s: %d GCRA calls", waits, calls)
	// One call per Wait without leases; leases of up to maxLease slots cut
	// that many times over, less on a busy machine, where leases expire
	// (leaseTTL) before they are used up.
	if calls > waits/4 {
		t.Errorf("%d GCRA calls for %d waits at 100000/s, want at most %d (leases of up to %d)", calls, waits, waits/4, maxLease)
	}

	// 1000/s burst 20 leases 20 slots; a cut to 1/s burst 1 must not use
	// the 19 left: the next Wait goes to Redis, and the one after waits a
	// second.
	const key = "provider:cut-lease"
	if err := l.Wait(ctx, key, perSec(1000), 20, 0); err != nil {
		t.Fatal(err)
	}
	before := hook.n.Load()
	if err := l.Wait(ctx, key, perSec(1000), 20, 0); err != nil || hook.n.Load() != before {
		t.Fatalf("second Wait at 1000/s = %v with %d GCRA calls, want a leased slot without Redis", err, hook.n.Load()-before)
	}
	_ = sleep(ctx, 50*time.Millisecond) // the local limiter's bucket refills
	_ = l.Wait(ctx, key, perSec(1), 1, 0)
	if hook.n.Load() == before {
		t.Error("Wait after cutting the rate took a slot leased at the old rate")
	}
	var te *ThrottledError
	if err := l.Wait(ctx, key, perSec(1), 1, 0); !errors.As(err, &te) {
		t.Errorf("Wait at the cut rate = %v, want throttled", err)
	}
}

// TestLimiterLeasePrecision: three processes sharing a key at a rate high
// enough to lease (500/s: 10 slots per call) admit the rate, not more.
func TestLimiterLeasePrecision(t *testing.T) {
	if testing.Short() {
		t.Skip("2 s of real time")
	}
	_, newLimiter := setup(t)
	const (
		perSecond = 500
		burst     = 50
		window    = 2 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 3 {
		l := newLimiter()
		for range 16 {
			wg.Go(func() {
				for ctx.Err() == nil {
					err := l.Wait(ctx, "provider:lease-precise", perSec(perSecond), burst, 100*time.Millisecond)
					var te *ThrottledError
					switch {
					case err == nil:
						admitted.Add(1)
					case errors.As(err, &te):
						_ = sleep(ctx, te.RetryIn)
					}
				}
			})
		}
	}
	wg.Wait()
	want := float64(perSecond)*window.Seconds() + burst
	got := float64(admitted.Load())
	t.Logf("admitted %v (want %v ± 5%%)", got, want)
	if got > want*1.02 || got < want*0.95 {
		t.Errorf("admitted %v in %v at %d/s burst %d across 3 processes, want %v (at most +2%%, at least -5%%)", got, window, perSecond, burst, want)
	}
}
