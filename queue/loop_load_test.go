package queue

// TestLoadLoop: the figures of docs/loop.md. Like the other load tests it
// runs only with BOUNCELOOP_LOAD=1 and only on loopback:
//
//	BOUNCELOOP_LOAD=1 go test -count=1 -run TestLoadLoop -v -timeout 15m ./queue/

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/policy/redistest"
	"github.com/bounceloop/bounceloop/queue/internal/smtpsim"
)

// loopCase is one run of TestLoadLoop: what the operator's
// [policy.providers.google] sets (the rest comes from the built-in table)
// and the suspension rules, for a run of dur.
type loopCase struct {
	name     string
	settings policy.Settings
	rules    []policy.Rule
	dur      time.Duration
	target   bool // the targets apply (the loop's runs)
}

// loopSample is what the receiver had seen of the domain at a time, and
// the loop's effective rate then.
type loopSample struct {
	at                           time.Duration // since the stack started
	accepted, attempts, deferred int
	rate                         float64 // the loop's effective rate, per second (0: no record yet)
}

// loopResult are one run's figures.
type loopResult struct {
	name          string
	settings      policy.Settings // resolved
	reach         time.Duration   // time to the first good window; < 0: never
	steadyPerMin  float64         // delivered per minute over the steady window
	steadyShare   float64         // deferrals / attempts over the steady window
	steadyOfC     float64         // steady delivered rate / C
	totalPerMin   float64         // delivered per minute over the whole run
	totalShare    float64         // deferrals / attempts over the whole run
	rates, perSec string          // effective rate, delivered: per second
	deferred      string          // deferred per second
	load          string          // the machine's load average at the start and the end
}

// TestLoadLoop runs the simulated Gmail with a hidden capacity C
// (BOUNCELOOP_LOAD_LOOP_C, default 100/s, receiver burst 10) against one
// in-process stack (20 workers) with the shipped policy: the built-in
// google provider (max_connections 4, and the loop's built-in min_rate,
// max_rate, throttle_cut, recovery_step, recovery_interval), of which the
// operator sets only the rate, six times:
//
//	(a) the loop from rate 4C
//	(b) the loop from rate C/4
//	(c) a fixed rate 4C: min_rate = rate = max_rate, so the loop's cut is
//	    clamped away
//	(d) (c) plus a [[policy.rules]] rule suspending the provider queue for
//	    5s on "450 4.2.1", as rule-based MTAs do
//	(e), (f) as (c) and (d) at the rate C/4
//
// It measures at the receiver, every second: delivered per second, the
// deferral share (450 answers / RCPT attempts), and reports the time to
// reach 90% of C (the end of the first 5-second window delivering ≥ 0.9 C
// with ≤ 2% deferrals: a window at C with a flood of deferrals is overload,
// not a reached rate), and delivered per minute and deferral share over the
// steady window (the run's last BOUNCELOOP_LOAD_LOOP_STEADY_S seconds,
// default 25). Targets for (a) and (b): reach ≤ 60 s, steady deferral
// share ≤ 2%.
func TestLoadLoop(t *testing.T) {
	loadOnly(t)
	c := float64(envInt(t, "BOUNCELOOP_LOAD_LOOP_C", 100))
	loopDur := time.Duration(envInt(t, "BOUNCELOOP_LOAD_LOOP_RUN_S", 75)) * time.Second
	fixedDur := time.Duration(envInt(t, "BOUNCELOOP_LOAD_LOOP_FIXED_S", 40)) * time.Second
	steady := time.Duration(envInt(t, "BOUNCELOOP_LOAD_LOOP_STEADY_S", 25)) * time.Second
	rate := func(x float64) policy.Rate { return policy.Rate{N: x, Per: time.Second} }
	// The loop's runs use the built-in settings. To try others on (a) and
	// (b): BOUNCELOOP_LOAD_LOOP_CUT_PCT (throttle_cut in percent) and
	// BOUNCELOOP_LOAD_LOOP_STEP_PCT (recovery_step in percent).
	loop := func(from float64) policy.Settings {
		s := policy.Settings{Rate: rate(from)}
		if v := envInt(t, "BOUNCELOOP_LOAD_LOOP_CUT_PCT", 1<<30); v < 1<<30 {
			s.ThrottleCut = float64(v) / 100
		}
		if v := envInt(t, "BOUNCELOOP_LOAD_LOOP_STEP_PCT", 1<<30); v < 1<<30 {
			s.RecoveryStep = float64(v) / 100
		}
		return s
	}
	fixed := func(at float64) policy.Settings {
		return policy.Settings{Rate: rate(at), MinRate: rate(at), MaxRate: rate(at)}
	}
	suspend := []policy.Rule{{ID: "loadtest.450.4.2.1", Codes: []int{450}, Enhanced: []string{"4.2.1"},
		Scope: policy.ScopeProvider, Suspend: policy.Duration(5 * time.Second)}}
	cases := []loopCase{
		{name: "(a) loop from 4C", settings: loop(4 * c), dur: loopDur, target: true},
		{name: "(b) loop from C/4", settings: loop(c / 4), dur: loopDur, target: true},
		{name: "(c) fixed 4C", settings: fixed(4 * c), dur: fixedDur},
		{name: "(d) fixed 4C + suspend 5s", settings: fixed(4 * c), rules: suspend, dur: fixedDur},
		{name: "(e) fixed C/4", settings: fixed(c / 4), dur: fixedDur},
		{name: "(f) fixed C/4 + suspend 5s", settings: fixed(c / 4), rules: suspend, dur: fixedDur},
	}
	var res []loopResult
	for _, lc := range cases {
		r := runLoopCase(t, lc, c, steady)
		t.Logf("%s: effective rate every second: %s", r.name, r.rates)
		t.Logf("%s: delivered per second: %s", r.name, r.perSec)
		t.Logf("%s: deferred per second: %s", r.name, r.deferred)
		t.Logf("%s: load average (1 min) at the start and the end: %s", r.name, r.load)
		res = append(res, r)
	}

	t.Logf("C = %.0f/s (receiver burst 10); runs: loop %v, fixed %v; steady window: the last %v of each run", c, loopDur, fixedDur, steady)
	for _, r := range res[:2] {
		s := r.settings
		t.Logf("%s: rate %v in [%v, %v], throttle_cut %g, recovery_step %g, recovery_interval %v, max_connections %d",
			r.name, s.Rate, s.MinRate, s.MaxRate, s.ThrottleCut, s.RecoveryStep, s.RecoveryInterval.D(), s.MaxConnections)
	}
	t.Logf("%-28s %12s %14s %8s %12s %14s %12s", "run", "reach 90% C", "steady /min", "of C", "steady defer", "whole-run /min", "whole defer")
	for _, r := range res {
		reach := "never"
		if r.reach >= 0 {
			reach = r.reach.String()
		}
		t.Logf("%-28s %12s %14.0f %7.0f%% %11.2f%% %14.0f %11.2f%%", r.name, reach, r.steadyPerMin, 100*r.steadyOfC,
			100*r.steadyShare, r.totalPerMin, 100*r.totalShare)
	}
	for i, lc := range cases {
		if !lc.target {
			continue
		}
		r := res[i]
		if r.reach < 0 || r.reach > 60*time.Second {
			t.Errorf("%s: reached 90%% of C after %v (never if negative), want <= 60s", r.name, r.reach)
		}
		if r.steadyShare > 0.02 {
			t.Errorf("%s: steady deferral share %.2f%%, want <= 2%%", r.name, 100*r.steadyShare)
		}
	}
}

// runLoopCase runs one case on its own world, Redis database and stack,
// and returns its figures.
func runLoopCase(t *testing.T, lc loopCase, c float64, steady time.Duration) loopResult {
	t.Helper()
	const domain = "gmail.com"
	world, err := smtpsim.Start(smtpsim.Config{Seed: 1,
		Providers: []smtpsim.Provider{{Name: "google", Domains: []string{domain}}},
		Domains:   map[string]smtpsim.Domain{domain: {RatePerSec: c, Burst: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	defer world.Close()
	rdb := redistest.DB(t)
	pol := policy.Config{
		Providers: map[string]policy.Provider{"google": {Settings: lc.settings, Domains: []string{domain}}},
		Rules:     lc.rules,
	}
	st := newTestStack(t, rdb, world, pol, Config{Concurrency: 20}, nil)

	// More than the run can deliver, so that the queue never runs dry.
	n := int(c*lc.dur.Seconds()*1.3) + 1000
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{Campaign: "loop", To: fmt.Sprintf("user%d@%s", i, domain), Template: "notice",
			Data: map[string]any{"first_name": "Jana"}}
	}
	ctx := context.Background()
	for lo := 0; lo < n; lo += benchBatch {
		rs, err := st.Client.EnqueueBatch(ctx, msgs[lo:min(lo+benchBatch, n)])
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Status != StatusEnqueued {
				t.Fatalf("enqueue %s: %v %s", r.ID, r.Status, r.Reason)
			}
		}
	}

	key := pol.WithDefaults().Route(domain).Key
	snap := func(start time.Time) loopSample {
		s := world.Stats().Domains[domain]
		ls := loopSample{at: time.Since(start), accepted: s.Accepted, attempts: s.Attempts, deferred: s.Answers[450]}
		if rs, err := st.Handler.Loop.RateStates(ctx); err == nil {
			ls.rate = rs[key].Rate.PerSecond()
		}
		return ls
	}
	load0 := loadAverage()
	start := time.Now()
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	ss := []loopSample{snap(start)}
	tick := time.NewTicker(time.Second)
	for range tick.C {
		ss = append(ss, snap(start))
		if ss[len(ss)-1].at >= lc.dur {
			break
		}
	}
	tick.Stop()
	st.Shutdown()

	r := loopResult{name: lc.name, settings: st.Policy.Route(domain).Settings, reach: -1, load: load0 + " " + loadAverage()}
	last := ss[len(ss)-1]
	if last.accepted >= n {
		t.Errorf("%s: the queue ran dry (%d accepted of %d)", lc.name, last.accepted, n)
	}
	share := func(a, b loopSample) float64 {
		if b.attempts == a.attempts {
			return 0
		}
		return float64(b.deferred-a.deferred) / float64(b.attempts-a.attempts)
	}
	perSec := func(a, b loopSample) float64 {
		return float64(b.accepted-a.accepted) / (b.at - a.at).Seconds()
	}
	const win = 5
	for i := win; i < len(ss); i++ {
		if perSec(ss[i-win], ss[i]) >= 0.9*c && share(ss[i-win], ss[i]) <= 0.02 {
			r.reach = ss[i].at.Round(time.Second)
			break
		}
	}
	from := 0
	for i := range ss {
		if ss[i].at <= last.at-steady {
			from = i
		}
	}
	r.steadyPerMin = 60 * perSec(ss[from], last)
	r.steadyOfC = perSec(ss[from], last) / c
	r.steadyShare = share(ss[from], last)
	r.totalPerMin = 60 * perSec(ss[0], last)
	r.totalShare = share(ss[0], last)
	var rates, per, def strings.Builder
	for i := range ss {
		fmt.Fprintf(&rates, "%.0f ", ss[i].rate)
		if i > 0 {
			fmt.Fprintf(&per, "%.0f ", math.Round(perSec(ss[i-1], ss[i])))
			fmt.Fprintf(&def, "%d ", ss[i].deferred-ss[i-1].deferred)
		}
	}
	r.rates, r.perSec, r.deferred = strings.TrimSpace(rates.String()), strings.TrimSpace(per.String()), strings.TrimSpace(def.String())
	return r
}

// loadAverage returns the machine's 1-minute load average (Linux), or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
