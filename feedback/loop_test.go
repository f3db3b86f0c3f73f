package feedback

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/policy/redistest"
)

// fakeClock is a clock tests move by hand. Safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2018, 5, 17, 8, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// scriptCounter counts the scripts a client runs (EVAL and EVALSHA).
type scriptCounter struct{ n atomic.Int64 }

func (h *scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := strings.ToLower(cmd.Name()); name == "evalsha" || name == "eval" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *scriptCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

var _ redis.Hook = (*scriptCounter)(nil)

// setupLoop returns a Loop on the test Redis with a fake clock.
func setupLoop(t *testing.T) (*Loop, *redis.Client, Keys, *fakeClock) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	rdb, prefix := redistest.Client(t)
	keys := Keys{Prefix: prefix}
	clk := newFakeClock()
	return NewLoop(rdb, keys, clk.Now), rdb, keys, clk
}

// gmailSettings are resolved settings with round numbers (not the
// built-in loop settings): 10/s in [1/s, 20/s], cut 0.5, step 0.1,
// interval 10 s.
func gmailSettings() policy.Settings {
	return policy.Config{Default: policy.Settings{Rate: perSecond(10), MaxRate: perSecond(20), ThrottleCut: 0.5,
		RecoveryStep: 0.1, RecoveryInterval: policy.Duration(10 * time.Second)}}.Route("gmail.com").Settings
}

// builtinSettings are the resolved built-in settings of a key configured
// at rate per second: the loop's defaults as shipped.
func builtinSettings(rate float64) policy.Settings {
	return policy.Config{Default: policy.Settings{Rate: perSecond(rate)}}.Route("gmail.com").Settings
}

func perSecond(n float64) policy.Rate { return policy.Rate{N: n, Per: time.Second} }

// near reports whether two rates are equal per second but for rounding.
func near(a, b policy.Rate) bool {
	x, y := a.PerSecond(), b.PerSecond()
	return math.Abs(x-y) <= 1e-9*math.Max(math.Abs(x), math.Abs(y))
}

func TestLoopKeys(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"rates", Keys{}.Rates(), "bounceloop:rates"},
		{"rates prefix", Keys{Prefix: "acme"}.Rates(), "acme:rates"},
		{"mailbox full", Keys{}.MailboxFull(" Jana@Centrum.SK "), "bounceloop:mailbox_full:jana@centrum.sk"},
		{"too large", Keys{Prefix: "acme"}.TooLarge("gmail.com"), "acme:too_large:gmail.com"},
		{"outcomes", Keys{}.Outcomes("google"), "bounceloop:outcomes:{google}"},
		{"outcomes flagged", Keys{}.OutcomesFlagged("google"), "bounceloop:outcomes:{google}:flagged"},
		{"pauses", Keys{Prefix: "acme"}.Pauses(), "acme:pauses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
			}
		})
	}
}

// TestLoopAIMD walks one key through cuts and recoveries on a fake clock.
func TestLoopAIMD(t *testing.T) {
	l, _, _, clk := setupLoop(t)
	ctx := context.Background()
	s := gmailSettings()
	const key = "provider:google"
	iv := s.RecoveryInterval.D()

	rate := func(want policy.Rate, step string) {
		t.Helper()
		got, err := l.EffectiveRate(ctx, key, s)
		if err != nil || !near(got, want) {
			t.Fatalf("%s: EffectiveRate(%q) = %v, %v, want %v", step, key, got, err, want)
		}
	}
	throttle := func(want policy.Rate, step string) {
		t.Helper()
		got, err := l.Throttled(ctx, key, s)
		if err != nil || !near(got, want) {
			t.Fatalf("%s: Throttled(%q) = %v, %v, want %v", step, key, got, err, want)
		}
	}
	deliver := func(step string) {
		t.Helper()
		if err := l.Delivered(ctx, key, s); err != nil {
			t.Fatalf("%s: Delivered(%q) = %v", step, key, err)
		}
	}
	// work reports an interval's deliveries at the current rate.
	work := func(step string) {
		t.Helper()
		r, _ := l.EffectiveRate(ctx, key, s)
		if err := l.deliveredN(ctx, key, s, int64(math.Ceil(r.PerSecond()*iv.Seconds()))); err != nil {
			t.Fatalf("%s: Delivered(%q) = %v", step, key, err)
		}
	}

	rate(s.Rate, "start")
	if got, _ := l.EffectiveRate(ctx, key, s); got != s.Rate {
		t.Errorf("EffectiveRate at start = %#v, want the configured %#v exactly", got, s.Rate)
	}
	throttle(perSecond(5), "first cut")
	throttle(perSecond(5), "same interval")
	clk.Advance(iv / 2)
	throttle(perSecond(5), "half an interval later")
	deliver("success right after a throttle")
	rate(perSecond(5), "no raise within an interval of a throttle")
	clk.Advance(iv / 2)
	throttle(perSecond(2.5), "an interval after the first cut")
	clk.Advance(iv)
	throttle(perSecond(1.25), "third cut")
	clk.Advance(iv)
	throttle(perSecond(1), "floor")
	clk.Advance(iv)
	throttle(perSecond(1), "stays at the floor")
	if got, _ := l.Throttled(ctx, key, s); got != s.MinRate {
		t.Errorf("Throttled at the floor = %#v, want MinRate %#v exactly", got, s.MinRate)
	}

	clk.Advance(iv)
	deliver("recovery with one delivery")
	rate(perSecond(1), "no raise: less than half of what the rate allows in an interval")
	clk.Advance(iv)
	work("recovery")
	rate(perSecond(1.1), "raised by step × the rate of the last cut (1/s, at the floor)")
	work("again in the same interval")
	rate(perSecond(1.1), "one raise per interval")
	for i := 0; i < 40; i++ {
		clk.Advance(iv)
		work("climb")
	}
	rate(s.MaxRate, "ceiling")
	if got, _ := l.EffectiveRate(ctx, key, s); got != s.MaxRate {
		t.Errorf("EffectiveRate at the ceiling = %#v, want MaxRate %#v exactly", got, s.MaxRate)
	}

	states, err := l.RateStates(ctx)
	if err != nil {
		t.Fatalf("RateStates() error = %v", err)
	}
	st, ok := states[key]
	if !ok || !near(st.Rate, s.MaxRate) || st.LastReason != ReasonRecovered || st.LastChange.IsZero() || st.LastChange.After(clk.Now()) {
		t.Errorf("RateStates()[%q] = %+v (found %v), want rate %v, reason %q", key, st, ok, s.MaxRate, ReasonRecovered)
	}
}

// TestLoopFirstDelivered: a key's first success makes its record at the
// configured rate and does not raise it.
func TestLoopFirstDelivered(t *testing.T) {
	l, _, _, clk := setupLoop(t)
	ctx := context.Background()
	s := gmailSettings()
	if err := l.Delivered(ctx, "k", s); err != nil {
		t.Fatalf("Delivered() = %v", err)
	}
	if got, err := l.EffectiveRate(ctx, "k", s); err != nil || got != s.Rate {
		t.Errorf("EffectiveRate after the first Delivered = %v, %v, want %v", got, err, s.Rate)
	}
	states, _ := l.RateStates(ctx)
	if st := states["k"]; st.LastReason != ReasonConfigured || !st.LastChange.Equal(clk.Now()) || !near(st.Rate, s.Rate) {
		t.Errorf("RateStates()[k] = %+v, want %v, %q at %v", st, s.Rate, ReasonConfigured, clk.Now())
	}
}

// TestLoopDeliveredBatches: Delivered calls Redis at most once per key and
// interval, however many successes.
func TestLoopDeliveredBatches(t *testing.T) {
	l, rdb, _, clk := setupLoop(t)
	ctx := context.Background()
	if err := rateScript.Load(ctx, rdb).Err(); err != nil {
		t.Fatal(err)
	}
	hook := &scriptCounter{}
	rdb.AddHook(hook)
	s := gmailSettings()
	iv := s.RecoveryInterval.D()
	const intervals, perInterval = 5, 200
	for i := 0; i < intervals; i++ {
		for j := 0; j < perInterval; j++ {
			for _, key := range []string{"a", "b"} {
				if err := l.Delivered(ctx, key, s); err != nil {
					t.Fatalf("Delivered(%q) = %v", key, err)
				}
			}
			clk.Advance(iv / perInterval)
		}
	}
	if got, want := hook.n.Load(), int64(2*intervals); got != want {
		t.Errorf("%d Delivered calls over %d intervals and 2 keys ran %d scripts, want %d", 2*intervals*perInterval, intervals, got, want)
	}
	// Each flush after the first raised the rate once, by a tenth of it
	// (no cut yet: the step follows the rate).
	want := perSecond(10 * math.Pow(1.1, intervals-1))
	for _, key := range []string{"a", "b"} {
		if got, _ := l.EffectiveRate(ctx, key, s); !near(got, want) {
			t.Errorf("EffectiveRate(%q) = %v, want %v", key, got, want)
		}
	}
}

// TestLoopSharedAcrossProcesses: two Loops (two processes) share the
// state; the other sees a decision once its cache expires (500 ms).
func TestLoopSharedAcrossProcesses(t *testing.T) {
	a, rdb, keys, clk := setupLoop(t)
	b := NewLoop(rdb, keys, clk.Now)
	ctx := context.Background()
	s := gmailSettings()
	if got, _ := b.EffectiveRate(ctx, "k", s); got != s.Rate {
		t.Fatalf("B: EffectiveRate = %v, want %v", got, s.Rate)
	}
	if _, err := a.Throttled(ctx, "k", s); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.EffectiveRate(ctx, "k", s); got != s.Rate {
		t.Errorf("B: EffectiveRate within its cache time = %v, want the cached %v", got, s.Rate)
	}
	clk.Advance(cacheTTL)
	if got, _ := b.EffectiveRate(ctx, "k", s); !near(got, perSecond(5)) {
		t.Errorf("B: EffectiveRate after %v = %v, want 5/s", cacheTTL, got)
	}
	// B's own burst of deferrals in the same interval does not cut again.
	if got, _ := b.Throttled(ctx, "k", s); !near(got, perSecond(5)) {
		t.Errorf("B: Throttled in A's interval = %v, want 5/s", got)
	}
}

// TestLoopSharedRealClock: with the real clock, a decision reaches the
// other process within a second.
func TestLoopSharedRealClock(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	rdb, prefix := redistest.Client(t)
	a, b := NewLoop(rdb, Keys{Prefix: prefix}, nil), NewLoop(rdb, Keys{Prefix: prefix}, nil)
	ctx := context.Background()
	s := gmailSettings()
	if _, err := b.EffectiveRate(ctx, "k", s); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Throttled(ctx, "k", s); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		got, err := b.EffectiveRate(ctx, "k", s)
		if err != nil {
			t.Fatal(err)
		}
		if near(got, perSecond(5)) {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("B still sees %v a second after A's cut", got)
		}
		<-tick.C
	}
	t.Logf("B saw the cut after %v", time.Since(start).Round(time.Millisecond))
}

// TestLoopBurstCutsOnce: N concurrent Throttled calls from several
// processes within one interval cut once.
func TestLoopBurstCutsOnce(t *testing.T) {
	l, rdb, keys, clk := setupLoop(t)
	loops := []*Loop{l, NewLoop(rdb, keys, clk.Now), NewLoop(rdb, keys, clk.Now)}
	ctx := context.Background()
	s := gmailSettings()
	const n = 60
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%7 == 0 {
				clk.Advance(10 * time.Millisecond) // the burst spreads over 90 ms
			}
			r, err := loops[i%len(loops)].Throttled(ctx, "k", s)
			if err == nil && !near(r, perSecond(5)) {
				err = fmt.Errorf("Throttled = %v, want 5/s", r)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	clk.Advance(cacheTTL)
	for i, lp := range loops {
		if got, _ := lp.EffectiveRate(ctx, "k", s); !near(got, perSecond(5)) {
			t.Errorf("loop %d: EffectiveRate after a burst of %d deferrals = %v, want 5/s (one cut)", i, n, got)
		}
	}
}

// TestLoopSettingsChange: a new configured rate restarts the key at it;
// narrower bounds clamp the effective rate at once.
func TestLoopSettingsChange(t *testing.T) {
	l, _, _, clk := setupLoop(t)
	ctx := context.Background()
	s := gmailSettings()
	if _, err := l.Throttled(ctx, "k", s); err != nil {
		t.Fatal(err)
	}
	narrow := s
	narrow.MinRate = perSecond(6)
	if got, _ := l.EffectiveRate(ctx, "k", narrow); got != narrow.MinRate {
		t.Errorf("EffectiveRate with min_rate 6/s over a 5/s state = %v, want 6/s", got)
	}
	if got, _ := l.Throttled(ctx, "k", narrow); got != narrow.MinRate {
		t.Errorf("Throttled with min_rate 6/s within the interval = %v, want 6/s", got)
	}

	faster := policy.Config{Default: policy.Settings{Rate: policy.Rate{N: 1800, Per: time.Minute}}}.Route("gmail.com").Settings
	if got, _ := l.EffectiveRate(ctx, "k", faster); got != faster.Rate {
		t.Errorf("EffectiveRate after the rate changed to %v = %v, want %v", faster.Rate, got, faster.Rate)
	}
	clk.Advance(faster.RecoveryInterval.D())
	got, err := l.Throttled(ctx, "k", faster)
	if want := (policy.Rate{N: 1800 * faster.ThrottleCut, Per: time.Minute}); err != nil || !near(got, want) || got.Per != time.Minute {
		t.Errorf("Throttled at the new rate = %v, %v, want %v (in the configured unit)", got, err, want)
	}
}

// TestLoopProperties checks the controller on random walks: never outside
// [min, max]; never rising under constant deferrals; reaching max under
// constant success.
func TestLoopProperties(t *testing.T) {
	l, _, _, clk := setupLoop(t)
	ctx := context.Background()
	seeds := 40
	if testing.Short() {
		seeds = 10
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 5))
		rate := 0.5 + rng.Float64()*100
		s := policy.Config{Default: policy.Settings{
			Rate:             perSecond(rate),
			MinRate:          perSecond(rate * (0.01 + rng.Float64()*0.99)),
			MaxRate:          perSecond(rate * (1 + rng.Float64()*4)),
			ThrottleCut:      0.05 + rng.Float64()*0.9,
			RecoveryStep:     0.01 + rng.Float64()*0.99,
			RecoveryInterval: policy.Duration(time.Duration(1+rng.IntN(30)) * time.Second),
		}}.Route("x.example").Settings
		if err := (policy.Config{Default: s}).Validate(); err != nil {
			t.Fatalf("seed %d: settings %+v: %v", seed, s, err)
		}
		iv := s.RecoveryInterval.D()
		inBounds := func(r policy.Rate, what string) {
			t.Helper()
			ps := r.PerSecond()
			if ps < s.MinRate.PerSecond() || ps > s.MaxRate.PerSecond() {
				t.Fatalf("seed %d: %s = %v, outside [%v, %v]", seed, what, r, s.MinRate, s.MaxRate)
			}
		}

		// Random walk: never outside the bounds.
		key := fmt.Sprintf("walk:%d", seed)
		for step := 0; step < 150; step++ {
			clk.Advance(time.Duration(rng.Int64N(int64(iv))))
			switch rng.IntN(3) {
			case 0:
				r, err := l.Throttled(ctx, key, s)
				if err != nil {
					t.Fatal(err)
				}
				inBounds(r, "Throttled")
			default:
				if err := l.Delivered(ctx, key, s); err != nil {
					t.Fatal(err)
				}
			}
			r, err := l.EffectiveRate(ctx, key, s)
			if err != nil {
				t.Fatal(err)
			}
			inBounds(r, "EffectiveRate")
		}

		// Constant deferrals (at least one per half interval) among
		// successes: the rate never rises.
		key = fmt.Sprintf("deferrals:%d", seed)
		prev := s.Rate.PerSecond()
		for step := 0; step < 60; step++ {
			clk.Advance(time.Duration(rng.Int64N(int64(iv / 2))))
			if _, err := l.Throttled(ctx, key, s); err != nil {
				t.Fatal(err)
			}
			for range rng.IntN(20) {
				if err := l.Delivered(ctx, key, s); err != nil {
					t.Fatal(err)
				}
				clk.Advance(time.Duration(rng.Int64N(int64(iv / 40))))
			}
			clk.Advance(cacheTTL)
			r, err := l.EffectiveRate(ctx, key, s)
			if err != nil {
				t.Fatal(err)
			}
			inBounds(r, "EffectiveRate under deferrals")
			if ps := r.PerSecond(); ps > prev*(1+1e-12) {
				t.Fatalf("seed %d step %d: the rate rose from %g/s to %v under constant deferrals", seed, step, prev, r)
			}
			prev = r.PerSecond()
		}

		// Constant success at the effective rate: each interval raises
		// the rate by at least step × rate, so it reaches max within
		// log(max/min) / log(1+step) intervals, +2 for the interval after
		// the last deferral and the phase of the first flush.
		needed := int(math.Ceil(math.Log(s.MaxRate.PerSecond()/s.MinRate.PerSecond())/math.Log1p(s.RecoveryStep))) + 2
		for range needed + 1 {
			r, err := l.EffectiveRate(ctx, key, s)
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(iv)
			if err := l.deliveredN(ctx, key, s, int64(math.Ceil(r.PerSecond()*iv.Seconds()))); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(cacheTTL)
		if r, _ := l.EffectiveRate(ctx, key, s); r != s.MaxRate {
			t.Fatalf("seed %d: after %d intervals of success EffectiveRate = %v, want max %v", seed, needed+1, r, s.MaxRate)
		}
	}
}

// TestLoopStep: the raise is recovery_step × the rate of the last cut
// while below it (a constant step: additive increase), and recovery_step ×
// the current rate above it and before any cut.
func TestLoopStep(t *testing.T) {
	l, _, _, clk := setupLoop(t)
	ctx := context.Background()
	s := gmailSettings()
	s.MaxRate = perSecond(100)
	const key = "k"
	iv := s.RecoveryInterval.D()
	work := func() policy.Rate {
		t.Helper()
		r, err := l.EffectiveRate(ctx, key, s)
		if err == nil {
			err = l.deliveredN(ctx, key, s, int64(math.Ceil(r.PerSecond()*iv.Seconds())))
		}
		if err != nil {
			t.Fatal(err)
		}
		r, _ = l.EffectiveRate(ctx, key, s)
		return r
	}
	var got []float64
	work() // the first call makes the record
	for range 2 {
		clk.Advance(iv)
		got = append(got, work().PerSecond())
	}
	if _, err := l.Throttled(ctx, key, s); err != nil {
		t.Fatal(err)
	}
	for range 7 {
		clk.Advance(iv)
		got = append(got, work().PerSecond())
	}
	// 10 ×1.1 ×1.1 = 12.1, cut to 6.05 (the limit is 12.1), + 1.21 five
	// times back to 12.1, then ×1.1 again.
	want := []float64{11, 12.1, 7.26, 8.47, 9.68, 10.89, 12.1, 13.31, 14.641}
	if len(got) != len(want) {
		t.Fatalf("rates %v, want %v", got, want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9*want[i] {
			t.Errorf("rate after raise %d = %g/s, want %g/s (all: %v)", i+1, got[i], want[i], got)
		}
	}
}

// TestLoopStepProperties checks the step on random settings: below the
// rate of the last cut every raise adds the same recovery_step × that
// rate; at or above it (and before any cut) a raise multiplies the rate by
// 1 + recovery_step; never above max_rate.
func TestLoopStepProperties(t *testing.T) {
	l, _, _, clk := setupLoop(t)
	ctx := context.Background()
	for seed := range 30 {
		rng := rand.New(rand.NewPCG(uint64(seed), 11))
		rate := 1 + rng.Float64()*200
		s := policy.Config{Default: policy.Settings{
			Rate:             perSecond(rate),
			MaxRate:          perSecond(rate * (1 + rng.Float64()*9)),
			ThrottleCut:      0.05 + rng.Float64()*0.9,
			RecoveryStep:     0.01 + rng.Float64()*0.99,
			RecoveryInterval: policy.Duration(time.Duration(1+rng.IntN(30)) * time.Second),
		}}.Route("x.example").Settings
		iv, step, hi := s.RecoveryInterval.D(), s.RecoveryStep, s.MaxRate.PerSecond()
		key := fmt.Sprintf("step:%d", seed)
		rateNow := func() float64 {
			r, err := l.EffectiveRate(ctx, key, s)
			if err != nil {
				t.Fatal(err)
			}
			return r.PerSecond()
		}
		limit := 0.0 // the rate of the last cut
		for i := 0; i < 60; i++ {
			clk.Advance(iv)
			before := rateNow()
			if rng.IntN(4) == 0 {
				r, err := l.Throttled(ctx, key, s)
				if err != nil {
					t.Fatal(err)
				}
				if want := math.Max(s.MinRate.PerSecond(), before*s.ThrottleCut); math.Abs(r.PerSecond()-want) > 1e-9*want {
					t.Fatalf("seed %d: Throttled at %g/s = %v, want %g/s", seed, before, r, want)
				}
				limit = before
				continue
			}
			if err := l.deliveredN(ctx, key, s, int64(math.Ceil(before*iv.Seconds()))); err != nil {
				t.Fatal(err)
			}
			after := rateNow()
			if i == 0 || before >= hi*(1-1e-12) {
				continue // the record's first call; at the ceiling
			}
			inc := step * math.Max(before, limit)
			want := math.Min(hi, before+inc)
			if math.Abs(after-want) > 1e-9*want {
				t.Fatalf("seed %d step %d: raise from %g/s (last cut at %g/s, step %g) = %g/s, want %g/s",
					seed, i, before, limit, step, after, want)
			}
		}
	}
}

// TestLoopIdleNoRaise: a key delivering less than half of what its rate
// allows in an interval (idle, or held back by its connections) is not
// raised, so it cannot drift up to max_rate untested; delivering more
// than half, it is.
func TestLoopIdleNoRaise(t *testing.T) {
	l, _, _, clk := setupLoop(t)
	ctx := context.Background()
	for seed := range 20 {
		rng := rand.New(rand.NewPCG(uint64(seed), 13))
		s := builtinSettings(5 + rng.Float64()*100)
		s.RecoveryInterval = policy.Duration(time.Duration(1+rng.IntN(30)) * time.Second)
		iv := s.RecoveryInterval.D()
		for _, tt := range []struct {
			share float64
			rises bool
		}{{0, false}, {0.45, false}, {0.55, true}, {1, true}} {
			key := fmt.Sprintf("idle:%d:%g", seed, tt.share)
			first := true
			for range 20 {
				r, err := l.EffectiveRate(ctx, key, s)
				if err != nil {
					t.Fatal(err)
				}
				n := int64(tt.share * r.PerSecond() * iv.Seconds())
				if tt.rises {
					n = int64(math.Ceil(tt.share * r.PerSecond() * iv.Seconds()))
				}
				if err := l.deliveredN(ctx, key, s, max(n, 1)); err != nil {
					t.Fatal(err)
				}
				after, _ := l.EffectiveRate(ctx, key, s)
				switch {
				case !tt.rises && after.PerSecond() > r.PerSecond():
					t.Fatalf("seed %d: delivering %d (%g of %v over %v) raised the rate to %v", seed, n, tt.share, r, iv, after)
				case tt.rises && !first && r != s.MaxRate && after.PerSecond() <= r.PerSecond():
					t.Fatalf("seed %d: delivering %d (%g of %v over %v) did not raise the rate", seed, n, tt.share, r, iv)
				}
				first = false
				clk.Advance(iv)
			}
		}
	}
}

// TestLoopScaleFree: the controller has no absolute unit: with rate,
// min_rate and max_rate multiplied by k, the same answers give the
// effective rates multiplied by k. So one default fits any capacity.
func TestLoopScaleFree(t *testing.T) {
	l, _, _, clk := setupLoop(t)
	ctx := context.Background()
	for seed := range 10 {
		rng := rand.New(rand.NewPCG(uint64(seed), 17))
		k := 0.1 + rng.Float64()*10
		a := builtinSettings(10)
		b := builtinSettings(10 * k)
		iv := a.RecoveryInterval.D()
		ka, kb := fmt.Sprintf("scale:%d:a", seed), fmt.Sprintf("scale:%d:b", seed)
		for i := 0; i < 80; i++ {
			clk.Advance(iv)
			ra, _ := l.EffectiveRate(ctx, ka, a)
			rb, _ := l.EffectiveRate(ctx, kb, b)
			if math.Abs(rb.PerSecond()-k*ra.PerSecond()) > 1e-9*rb.PerSecond() {
				t.Fatalf("seed %d step %d: rates %v and %v, want a ratio of %g", seed, i, ra, rb, k)
			}
			if rng.IntN(3) == 0 {
				if _, err := l.Throttled(ctx, ka, a); err != nil {
					t.Fatal(err)
				}
				if _, err := l.Throttled(ctx, kb, b); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := l.deliveredN(ctx, ka, a, int64(math.Ceil(ra.PerSecond()*iv.Seconds()))); err != nil {
				t.Fatal(err)
			}
			if err := l.deliveredN(ctx, kb, b, int64(math.Ceil(rb.PerSecond()*iv.Seconds()))); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestLoopConverges runs the built-in settings against a receiver of
// capacity C (it accepts C per second and defers the rest), from a rate
// configured 4× too high, 4× too low and at random in between: the rate
// reaches 90% of C within 20 intervals, and from then on stays within
// [throttle_cut × C, (1 + recovery_step)² × C] and delivers at least 88%
// of C on average.
func TestLoopConverges(t *testing.T) {
	l, _, _, clk := setupLoop(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 19))
	type start struct{ c, from float64 }
	starts := []start{{100, 400}, {100, 25}, {3, 12}, {3, 0.75}}
	for range 6 {
		c := 1 + rng.Float64()*500
		starts = append(starts, start{c, c * math.Pow(4, 2*rng.Float64()-1)})
	}
	for i, st := range starts {
		s := builtinSettings(st.from)
		iv := s.RecoveryInterval.D()
		key := fmt.Sprintf("converge:%d", i)
		reached := -1
		var delivered float64
		var n int
		for j := 0; j < 100; j++ {
			clk.Advance(iv)
			r, err := l.EffectiveRate(ctx, key, s)
			if err != nil {
				t.Fatal(err)
			}
			ps := r.PerSecond()
			if reached < 0 && ps >= 0.9*st.c && ps <= st.c {
				reached = j
			}
			if reached >= 0 {
				lo, hi := s.ThrottleCut*st.c, (1+s.RecoveryStep)*(1+s.RecoveryStep)*st.c
				if ps < lo*(1-1e-9) || ps > hi*(1+1e-9) {
					t.Fatalf("C %g from %g: interval %d: rate %v outside [%g, %g] after reaching 90%% of C", st.c, st.from, j, r, lo, hi)
				}
				delivered += math.Min(ps, st.c)
				n++
			}
			if ps > st.c {
				if _, err := l.Throttled(ctx, key, s); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.deliveredN(ctx, key, s, max(1, int64(math.Min(ps, st.c)*iv.Seconds()))); err != nil {
				t.Fatal(err)
			}
		}
		if reached < 0 || reached > 20 {
			t.Errorf("C %g from %g: reached 90%% of C after %d intervals, want <= 20", st.c, st.from, reached)
			continue
		}
		if mean := delivered / float64(n); mean < 0.88*st.c {
			t.Errorf("C %g from %g: delivered %.3g C on average after reaching it, want >= 0.88 C", st.c, st.from, mean/st.c)
		}
	}
}

func TestLoopMailboxFull(t *testing.T) {
	l, rdb, keys, _ := setupLoop(t)
	ctx := context.Background()
	for i, addr := range []string{"jana@centrum.sk", "Jana@Centrum.SK", " jana@centrum.sk"} {
		got, err := l.MailboxFull(ctx, addr)
		if err != nil || got != int64(i+1) {
			t.Errorf("MailboxFull(%q) = %d, %v, want %d", addr, got, err, i+1)
		}
	}
	if got, _ := l.MailboxFull(ctx, "peter@centrum.sk"); got != 1 {
		t.Errorf("MailboxFull(other address) = %d, want 1", got)
	}
	ttl, err := rdb.TTL(ctx, keys.MailboxFull("jana@centrum.sk")).Result()
	if err != nil || ttl < MailboxFullRetention-time.Minute || ttl > MailboxFullRetention {
		t.Errorf("TTL of the mailbox_full count = %v, %v, want about %v", ttl, err, MailboxFullRetention)
	}
}

func TestLoopTooLarge(t *testing.T) {
	a, rdb, keys, clk := setupLoop(t)
	b := NewLoop(rdb, keys, clk.Now)
	ctx := context.Background()
	for _, l := range []*Loop{a, b} {
		if got, err := l.TooLarge(ctx, "gmail.com"); err != nil || got {
			t.Fatalf("TooLarge(gmail.com) at start = %v, %v, want false", got, err)
		}
	}
	if err := a.RememberTooLarge(ctx, "gmail.com"); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.TooLarge(ctx, "gmail.com"); !got {
		t.Errorf("A: TooLarge(gmail.com) right after RememberTooLarge = false, want true")
	}
	if got, _ := b.TooLarge(ctx, "gmail.com"); got {
		t.Errorf("B: TooLarge(gmail.com) within its cache time = true, want the cached false")
	}
	clk.Advance(cacheTTL)
	if got, _ := b.TooLarge(ctx, "gmail.com"); !got {
		t.Errorf("B: TooLarge(gmail.com) after %v = false, want true", cacheTTL)
	}
	if got, _ := b.TooLarge(ctx, "yahoo.com"); got {
		t.Errorf("TooLarge(yahoo.com) = true, want false")
	}
	ttl, err := rdb.TTL(ctx, keys.TooLarge("gmail.com")).Result()
	if err != nil || ttl < TooLargeRetention-time.Minute || ttl > TooLargeRetention {
		t.Errorf("TTL of the too_large mark = %v, %v, want about %v", ttl, err, TooLargeRetention)
	}
}

func TestLoopOutcome(t *testing.T) {
	l, rdb, keys, _ := setupLoop(t)
	ctx := context.Background()
	type step struct {
		flagged bool
		window  int
		share   float64
		n       int
	}
	steps := []step{
		{true, 4, 1, 1},
		{false, 4, 0.5, 2},
		{false, 4, 1.0 / 3, 3},
		{false, 4, 0.25, 4},
		{false, 4, 0, 4}, // the flagged attempt left the window
		{true, 4, 0.25, 4},
		{true, 2, 1, 2}, // a smaller window drops the oldest
		{false, 5, 2.0 / 3, 3},
	}
	for i, st := range steps {
		share, n, err := l.Outcome(ctx, "centrum", st.flagged, st.window)
		if err != nil || n != st.n || math.Abs(share-st.share) > 1e-12 {
			t.Fatalf("step %d: Outcome(centrum, %v, %d) = %v, %d, %v, want %v, %d", i, st.flagged, st.window, share, n, err, st.share, st.n)
		}
	}
	// Other queues have their own window.
	if share, n, _ := l.Outcome(ctx, "google", false, 500); share != 0 || n != 1 {
		t.Errorf("Outcome(google) = %v, %d, want 0, 1", share, n)
	}
	// A lost counter is rebuilt from the list.
	if err := rdb.Del(ctx, keys.OutcomesFlagged("centrum")).Err(); err != nil {
		t.Fatal(err)
	}
	if share, n, _ := l.Outcome(ctx, "centrum", true, 5); share != 0.75 || n != 4 {
		t.Errorf("Outcome after losing the counter = %v, %d, want 0.75, 4", share, n)
	}
	if _, _, err := l.Outcome(ctx, "centrum", true, 0); err == nil {
		t.Errorf("Outcome(window 0) error = nil, want an error")
	}
	ttl, err := rdb.PTTL(ctx, keys.Outcomes("centrum")).Result()
	if err != nil || ttl < OutcomesRetention-time.Minute {
		t.Errorf("TTL of the review window = %v, %v, want about %v", ttl, err, OutcomesRetention)
	}
}

func TestLoopPauses(t *testing.T) {
	l, _, _, clk := setupLoop(t)
	ctx := context.Background()
	if got, err := l.Pauses(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Pauses() at start = %v, %v, want none", got, err)
	}
	if err := l.NotePause(ctx, "centrum", "spam_blocked 6.0% of the last 500 attempts"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := l.NotePause(ctx, "google", "suspended 30m: 421 4.7.28"); err != nil {
		t.Fatal(err)
	}
	got, err := l.Pauses(ctx)
	want := map[string]Pause{
		"centrum": {Reason: "spam_blocked 6.0% of the last 500 attempts", Since: clk.Now().Add(-time.Minute)},
		"google":  {Reason: "suspended 30m: 421 4.7.28", Since: clk.Now()},
	}
	if err != nil || len(got) != len(want) {
		t.Fatalf("Pauses() = %v, %v, want %v", got, err, want)
	}
	for q, w := range want {
		if g := got[q]; g.Reason != w.Reason || !g.Since.Equal(w.Since) {
			t.Errorf("Pauses()[%q] = %+v, want %+v", q, g, w)
		}
	}
	if ok, err := l.ClearPause(ctx, "centrum"); !ok || err != nil {
		t.Errorf("ClearPause(centrum) = %v, %v, want true", ok, err)
	}
	if ok, _ := l.ClearPause(ctx, "centrum"); ok {
		t.Errorf("ClearPause(centrum) again = true, want false")
	}
	if got, _ := l.Pauses(ctx); len(got) != 1 {
		t.Errorf("Pauses() after ClearPause = %v, want google only", got)
	}
}

// TestLoopRedisDown: every call fails with a wrapped error and no value
// when Redis is away; Delivered keeps its count for the next call.
func TestLoopRedisDown(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer rdb.Close()
	l := NewLoop(rdb, Keys{Prefix: "down"}, nil)
	ctx := context.Background()
	s := gmailSettings()
	if r, err := l.EffectiveRate(ctx, "k", s); err == nil || !r.IsZero() || !strings.HasPrefix(err.Error(), "feedback: ") {
		t.Errorf("EffectiveRate = %v, %v, want a feedback: error and no rate", r, err)
	}
	if r, err := l.Throttled(ctx, "k", s); err == nil || !r.IsZero() {
		t.Errorf("Throttled = %v, %v, want an error and no rate", r, err)
	}
	if err := l.Delivered(ctx, "k", s); err == nil {
		t.Errorf("Delivered = nil, want an error")
	}
	if n := l.delivered["k"].n; n != 1 {
		t.Errorf("Delivered kept %d successes after a failed call, want 1", n)
	}
	if _, err := l.MailboxFull(ctx, "a@b.example"); err == nil {
		t.Errorf("MailboxFull = nil error, want an error")
	}
	if v, err := l.TooLarge(ctx, "b.example"); err == nil || v {
		t.Errorf("TooLarge = %v, %v, want false and an error", v, err)
	}
	if _, _, err := l.Outcome(ctx, "q", true, 10); err == nil {
		t.Errorf("Outcome = nil error, want an error")
	}
	if err := l.NotePause(ctx, "q", "x"); err == nil {
		t.Errorf("NotePause = nil, want an error")
	}
	if _, err := l.Pauses(ctx); err == nil {
		t.Errorf("Pauses = nil error, want an error")
	}
	if _, err := l.RateStates(ctx); err == nil {
		t.Errorf("RateStates = nil error, want an error")
	}
	var op *net.OpError
	if _, err := l.Throttled(ctx, "k", s); !errors.As(err, &op) {
		t.Errorf("Throttled error %v does not wrap the network error", err)
	}
}

func BenchmarkEffectiveRate(b *testing.B) {
	rdb, prefix := redistest.Client(b)
	clk := newFakeClock()
	l := NewLoop(rdb, Keys{Prefix: prefix}, clk.Now)
	ctx := context.Background()
	s := gmailSettings()
	if _, err := l.Throttled(ctx, "k", s); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.EffectiveRate(ctx, "k", s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}

func BenchmarkDelivered(b *testing.B) {
	rdb, prefix := redistest.Client(b)
	l := NewLoop(rdb, Keys{Prefix: prefix}, nil)
	ctx := context.Background()
	s := gmailSettings()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := l.Delivered(ctx, "k", s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

func BenchmarkThrottled(b *testing.B) {
	rdb, prefix := redistest.Client(b)
	l := NewLoop(rdb, Keys{Prefix: prefix}, nil)
	ctx := context.Background()
	s := gmailSettings()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.Throttled(ctx, "k", s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "scripts/s")
}

func BenchmarkOutcome(b *testing.B) {
	rdb, prefix := redistest.Client(b)
	l := NewLoop(rdb, Keys{Prefix: prefix}, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, err := l.Outcome(ctx, "google", i%20 == 0, 500); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "outcomes/s")
}
