package queue

// Crash, restart and Redis-restart tests (issue 6, items 1, 2 and 7;
// docs/reliability.md). Each runs a campaign through real "bounceloop
// serve" processes (built from ./cmd/bounceloop) on real Redis, sending over
// SMTP to the simulated world in this process, and hurts them mid-campaign:
//
//	TestReliability/SIGKILL      workers killed with SIGKILL and restarted
//	TestReliability/SIGTERM      workers stopped with SIGTERM and started again
//	TestReliability/RedisRestart redis-server (append-only file on) killed or stopped, and restarted
//
// Then every message must be in a final state (delivered, or archived with
// its reason), none lost, and the receiver must have seen each Message-ID
// once, except — after SIGKILL or a Redis crash — transactions that were in
// flight at that moment.
//
// By default they run a fast version (a smaller campaign; after a SIGKILL
// they fast-forward asynq's clock instead of waiting for its lease expiry,
// see expireLeases). BOUNCELOOP_LOAD=1 runs the full versions (20,000
// messages, five hurts, real waits; minutes):
//
//	BOUNCELOOP_LOAD=1 go test -run TestReliability -v -timeout 60m ./queue/
//	BOUNCELOOP_LOAD=1 go test -run TestReliability/SIGKILL -v -timeout 30m ./queue/   # one of them
//
// Knobs: BOUNCELOOP_FAULT_N (messages), BOUNCELOOP_FAULT_HURTS (kills,
// restarts), BOUNCELOOP_FAULT_SECONDS (the campaign's planned length: the
// rates are set from it), BOUNCELOOP_FAULT_PROCS (serve processes).

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/policy/redistest"
	"github.com/bounceloop/bounceloop/queue/compose"
	"github.com/bounceloop/bounceloop/queue/internal/smtpsim"
)

// crashPlan is the size of one run.
type crashPlan struct {
	full        bool
	n           int           // messages
	procs       int           // serve processes
	concurrency int           // workers per process
	hurts       int           // kills or restarts
	length      time.Duration // planned campaign length (sets the rates)
	web         bool          // each process listens (for /healthz)
}

// planFor returns the fast plan, or the full one under BOUNCELOOP_LOAD=1,
// with the BOUNCELOOP_FAULT_* knobs applied.
func planFor(t *testing.T, fast, full crashPlan) crashPlan {
	t.Helper()
	p := fast
	if os.Getenv("BOUNCELOOP_LOAD") == "1" {
		p = full
		p.full = true
	}
	p.n = envInt(t, "BOUNCELOOP_FAULT_N", p.n)
	p.hurts = envInt(t, "BOUNCELOOP_FAULT_HURTS", p.hurts)
	p.procs = envInt(t, "BOUNCELOOP_FAULT_PROCS", p.procs)
	p.length = time.Duration(envInt(t, "BOUNCELOOP_FAULT_SECONDS", int(p.length/time.Second))) * time.Second
	return p
}

// crashDomains is the campaign's mix: domain → share, and the policy
// provider group whose rate it sets ("" = [policy.default]).
var crashDomains = []struct {
	domain, provider string
	share            float64
}{
	{"gmail.com", "google", 0.60},
	{"yahoo.com", "yahoo", 0.15},
	{"azet.sk", "azet", 0.15},
	{"example.org", "", 0.10},
}

// rig is one run: the world, Redis, the serve processes, the campaign.
type rig struct {
	t     *testing.T
	plan  crashPlan
	bin   string
	world *smtpsim.World
	rdb   *redis.Client
	insp  *asynq.Inspector
	procs []*serveProc
	// rescueCfg is the config of the extra processes rescueOrphans starts.
	rescueCfg string
	msgs      []Message
	res       []Result
	rnd       *rand.Rand
	start     time.Time

	mu       sync.Mutex
	inflight map[string]bool // message ids active in Redis at a hurt
	rescuers []*serveProc    // started by rescueOrphans
	ranEarly atomic.Int64    // retries run early by fastForward
	rescued  atomic.Int64    // orphaned tasks whose lease rescueOrphans expired
}

// serveProc is one "bounceloop serve" slot, restarted in place.
type serveProc struct {
	i       int
	cfg     string
	web     string // "" when off
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// newRig starts the world, builds the binary, enqueues the campaign and
// writes one config per process; the processes are not started yet.
func newRig(t *testing.T, bin string, plan crashPlan, rdb *redis.Client) *rig {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	r := &rig{t: t, bin: bin, plan: plan, rdb: rdb, rnd: rand.New(rand.NewPCG(seed, 6)), inflight: map[string]bool{}}
	t.Logf("plan: %d messages, %d serve processes × %d workers, %d hurts, campaign planned for %v; random seed %d",
		plan.n, plan.procs, plan.concurrency, plan.hurts, plan.length, seed)
	world, err := smtpsim.Start(smtpsim.Config{Seed: 6, CatchAll: "other",
		Providers: []smtpsim.Provider{
			{Name: "google", Domains: []string{"gmail.com"}}, {Name: "yahoo", Domains: []string{"yahoo.com"}},
			{Name: "azet", Domains: []string{"azet.sk"}}, {Name: "other", Domains: []string{"example.org"}},
		},
		// A few unknown users (suppressed), spam blocks (flagged for
		// review) and temporary failures (retried after 1 s).
		Default: smtpsim.Domain{UnknownShare: 0.004, TempFailShare: 0.01},
		Domains: map[string]smtpsim.Domain{"azet.sk": {UnknownShare: 0.004, SpamShare: 0.004, TempFailShare: 0.01}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { world.Close() })
	r.world = world
	r.insp = asynq.NewInspectorFromRedisClient(rdb)
	t.Cleanup(func() { r.insp.Close() })

	// The campaign, in the mix's proportions, interleaved.
	counts := map[string]int{}
	for i := 0; i < plan.n; i++ {
		d := crashDomains[len(crashDomains)-1].domain
		u, acc := float64(i%100)/100+0.005, 0.0
		for _, cd := range crashDomains {
			if acc += cd.share; u < acc {
				d = cd.domain
				break
			}
		}
		counts[d]++
		r.msgs = append(r.msgs, Message{Campaign: "crash", To: fmt.Sprintf("user%d@%s", i, d), Template: "notice",
			Data: map[string]any{"first_name": "Jana"}})
	}
	c := NewClient(rdb, ClientOptions{Policy: policy.Config{}.WithDefaults(), Templates: compose.Default()})
	for lo := 0; lo < len(r.msgs); lo += 500 {
		rs, err := c.EnqueueBatch(context.Background(), r.msgs[lo:min(lo+500, len(r.msgs))])
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range rs {
			if x.Status != StatusEnqueued {
				t.Fatalf("enqueue %s: %v %s", x.ID, x.Status, x.Reason)
			}
		}
		r.res = append(r.res, rs...)
	}

	// Rates: each domain's share over the planned length, fixed (the
	// adaptive rate may not climb above it).
	var def, provs strings.Builder
	for _, cd := range crashDomains {
		rate := max(1, int(math.Ceil(float64(counts[cd.domain])/plan.length.Seconds())))
		if cd.provider == "" {
			fmt.Fprintf(&def, "rate = \"%d/s\"\nmax_rate = \"%d/s\"\n", rate, rate)
			continue
		}
		fmt.Fprintf(&provs, "[policy.providers.%s]\nrate = \"%d/s\"\nmax_rate = \"%d/s\"\n", cd.provider, rate, rate)
	}
	pol := "[policy.default]\nretry_schedule = [\"1s\"]\nmax_age = \"1h\"\n" + def.String() + provs.String()
	var routes strings.Builder
	for d, a := range world.Routes() {
		fmt.Fprintf(&routes, "%q = %q\n", d, a)
	}
	o := rdb.Options()
	dir := t.TempDir()
	for i := 0; i < plan.procs; i++ {
		p := &serveProc{i: i, logPath: filepath.Join(dir, fmt.Sprintf("serve-%d.log", i)), cfg: filepath.Join(dir, fmt.Sprintf("serve-%d.toml", i))}
		listen := "off"
		if plan.web {
			p.web = freeAddr(t)
			listen = p.web
		}
		cfg := fmt.Sprintf(`[redis]
addrs = [%q]
db = %d
prefix = "crash"

[web]
listen = %q

[queue]
concurrency = %d
shutdown_timeout = "10s"

[smtp]
mode = "mx"
helo = "bounceloop.test"
starttls = "off"

[smtp.routes]
%s
%s`, o.Addr, o.DB, listen, plan.concurrency, routes.String(), pol)
		if err := os.WriteFile(p.cfg, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		r.procs = append(r.procs, p)
		if i == 0 {
			r.rescueCfg = filepath.Join(dir, "rescue.toml")
			cfg = strings.Replace(cfg, fmt.Sprintf("listen = %q", listen), `listen = "off"`, 1)
			if err := os.WriteFile(r.rescueCfg, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		for _, p := range r.all() {
			p.kill()
		}
		if t.Failed() {
			r.showLogs()
		}
	})
	return r
}

// all returns the serve processes and the rescuers.
func (r *rig) all() []*serveProc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(append([]*serveProc(nil), r.procs...), r.rescuers...)
}

// startAll starts every process.
func (r *rig) startAll() {
	r.t.Helper()
	r.start = time.Now()
	for _, p := range r.procs {
		r.startProc(p)
	}
}

// startProc starts one serve process (its output appended to its log)
// and, when it listens, waits for its listener. It fails the test on an
// error.
func (r *rig) startProc(p *serveProc) {
	r.t.Helper()
	if err := r.launch(p); err != nil {
		r.t.Fatal(err)
	}
	if p.web != "" {
		waitListening(r.t, p.web, 30*time.Second)
	}
}

// launch starts p's process.
func (r *rig) launch(p *serveProc) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "--- start %d\n", p.starts+1)
	cmd := exec.Command(r.bin, "serve", "--config", p.cfg, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("serve %d: %w", p.i, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	p.cmd, p.exited = cmd, exited
	p.starts++
	return nil
}

// signal sends sig to p and waits up to within for it to exit; it returns
// the exit code (-1: killed by a signal) and how long the exit took.
func (p *serveProc) signal(sig syscall.Signal, within time.Duration) (int, time.Duration, error) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return 0, 0, fmt.Errorf("serve %d: not running", p.i)
	}
	t0 := time.Now()
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(within):
		_ = cmd.Process.Kill()
		<-exited
		return -1, time.Since(t0), fmt.Errorf("serve %d: still running %v after %v: killed", p.i, within, sig)
	}
	p.mu.Lock()
	p.cmd = nil
	p.mu.Unlock()
	return cmd.ProcessState.ExitCode(), time.Since(t0), nil
}

// kill kills p if it runs.
func (p *serveProc) kill() {
	p.mu.Lock()
	running := p.cmd != nil
	p.mu.Unlock()
	if running {
		_, _, _ = p.signal(syscall.SIGKILL, 10*time.Second)
	}
}

// alive reports whether p's process runs.
func (p *serveProc) alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// showLogs logs the tail of each process's log.
func (r *rig) showLogs() {
	for _, p := range r.all() {
		b, err := os.ReadFile(p.logPath)
		if err != nil {
			continue
		}
		if len(b) > 3000 {
			b = b[len(b)-3000:]
		}
		r.t.Logf("serve %d log (tail):\n%s", p.i, b)
	}
}

// logCount counts the lines of every process's log that hold s.
func (r *rig) logCount(s string) int {
	n := 0
	for _, p := range r.all() {
		if b, err := os.ReadFile(p.logPath); err == nil {
			n += strings.Count(string(b), s)
		}
	}
	return n
}

// accepted is the receiver's count of accepted messages.
func (r *rig) accepted() int { return r.world.Stats().Accepted }

// thresholds returns k distinct progress points (accepted messages) drawn
// at random between 10% and 80% of the campaign, in order.
func (r *rig) thresholds(k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = int(float64(r.plan.n) * (0.1 + 0.7*r.rnd.Float64()))
	}
	sort.Ints(out)
	return out
}

// waitProgress waits until the receiver has accepted n messages.
func (r *rig) waitProgress(n int) {
	r.t.Helper()
	deadline := time.Now().Add(r.plan.length*3 + 3*time.Minute)
	for r.accepted() < n {
		if time.Now().After(deadline) {
			r.t.Fatalf("the campaign is stuck: %d accepted, waiting for %d", r.accepted(), n)
		}
		<-time.After(10 * time.Millisecond)
	}
}

// asynq's keys of a queue's active list and lease set (asynq v0.25.1
// internal/base; asynqwire_test.go pins the layout).
func crashActiveKey(q string) string { return "asynq:{" + q + "}:active" }
func crashLeaseKey(q string) string  { return "asynq:{" + q + "}:lease" }

// noteInflight records the message ids active in Redis now: after a
// SIGKILL they hold every transaction that was in flight in the killed
// process (a superset when other processes run). It returns their number.
func (r *rig) noteInflight() int {
	r.t.Helper()
	qs, err := r.insp.Queues()
	if err != nil {
		r.t.Fatal(err)
	}
	n := 0
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range qs {
		ids, err := r.rdb.LRange(context.Background(), crashActiveKey(q), 0, -1).Result()
		if err != nil {
			r.t.Fatal(err)
		}
		for _, id := range ids {
			r.inflight[id] = true
		}
		n += len(ids)
	}
	return n
}

// expireLeases fast-forwards asynq's clock for the tasks of dead workers:
// with every serve process dead, it moves the lease deadline of every
// active task 70 s into the past, as if asynq's lease (30 s) and its
// recoverer's safety margin (30 s) had passed. A serve process that starts
// then recovers them at once (asynq's recoverer runs at start). Only the
// fast versions do this; the full ones wait in real time.
func (r *rig) expireLeases() int {
	r.t.Helper()
	for _, p := range r.procs {
		if p.alive() {
			r.t.Fatalf("expireLeases with serve %d alive: its tasks would run twice", p.i)
		}
	}
	qs, err := r.insp.Queues()
	if err != nil {
		r.t.Fatal(err)
	}
	ctx := context.Background()
	past := float64(time.Now().Add(-70 * time.Second).Unix())
	n := 0
	for _, q := range qs {
		ids, err := r.rdb.ZRange(ctx, crashLeaseKey(q), 0, -1).Result()
		if err != nil {
			r.t.Fatal(err)
		}
		for _, id := range ids {
			if err := r.rdb.ZAddXX(ctx, crashLeaseKey(q), redis.Z{Score: past, Member: id}).Err(); err != nil {
				r.t.Fatal(err)
			}
			n++
		}
	}
	return n
}

// fastForward runs, until ctx ends, every retry due more than 2 s from now
// at once: the backoff asynq gives a task whose worker died (15–45 s) or
// that failed while Redis was away. The campaign's own retries (the
// retry schedule's 1 s) are not touched. Only the fast versions use it.
func (r *rig) fastForward(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
		qs, err := r.insp.Queues()
		if err != nil {
			continue
		}
		for _, q := range qs {
			tis, err := r.insp.ListRetryTasks(q, asynq.PageSize(1000))
			if err != nil {
				continue
			}
			for _, ti := range tis {
				if time.Until(ti.NextProcessAt) > 2*time.Second && r.insp.RunTask(q, ti.ID) == nil {
					r.ranEarly.Add(1)
				}
			}
		}
	}
}

// watch logs the receiver's count and the queues' backlog every
// interval until ctx ends.
func (r *rig) watch(ctx context.Context, every time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		var b strings.Builder
		if qs, err := r.insp.Queues(); err == nil {
			for _, q := range qs {
				if qi, err := r.insp.GetQueueInfo(q); err == nil && qi.Size-qi.Completed-qi.Archived > 0 {
					fmt.Fprintf(&b, " %s p%d a%d r%d s%d", q, qi.Pending, qi.Active, qi.Retry, qi.Scheduled)
				}
			}
		}
		r.t.Logf("progress %v: %d accepted;%s", time.Since(r.start).Round(time.Second), r.accepted(), b.String())
	}
}

// rescueOrphans fast-forwards asynq's clock for tasks whose worker is
// alive but whose acknowledgement was lost: asynq v0.25.1 (and v0.26.0)
// retries a failed acknowledgement with a context it has already
// cancelled, so a task that finished while Redis was away stays active
// until its lease lapses and a recoverer — at a serve process's start, or
// every minute — runs it again. Every second, until ctx ends, it looks for
// active tasks whose lease nobody extended for 12 s (a live worker's is
// extended every 5 s), moves their lease 70 s into the past and starts one
// more serve process, whose recoverer runs at once. Only the fast
// versions do this; the full ones wait in real time.
func (r *rig) rescueOrphans(ctx context.Context) {
	for k := 0; ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		qs, err := r.insp.Queues()
		if err != nil {
			continue
		}
		stale := strconv.FormatInt(time.Now().Add(18*time.Second).Unix(), 10)
		past := float64(time.Now().Add(-70 * time.Second).Unix())
		n := 0
		for _, q := range qs {
			ids, err := r.rdb.ZRangeByScore(ctx, crashLeaseKey(q), &redis.ZRangeBy{Min: "-inf", Max: stale}).Result()
			if err != nil {
				continue
			}
			for _, id := range ids {
				if r.rdb.ZAddXX(ctx, crashLeaseKey(q), redis.Z{Score: past, Member: id}).Err() == nil {
					n++
				}
			}
		}
		if n == 0 {
			continue
		}
		r.rescued.Add(int64(n))
		p := &serveProc{i: 100 + k, cfg: r.rescueCfg, logPath: filepath.Join(filepath.Dir(r.rescueCfg), fmt.Sprintf("rescue-%d.log", k))}
		r.mu.Lock()
		r.rescuers = append(r.rescuers, p)
		r.mu.Unlock()
		if err := r.launch(p); err != nil {
			r.t.Errorf("rescue: %v", err)
			return
		}
		r.t.Logf("rescue: %d orphaned tasks (lease not extended for 12 s): leases expired, serve %d started to recover them", n, p.i)
	}
}

// outcome is what a run ended with.
type outcome struct {
	took       time.Duration
	completed  int
	archived   map[string]int // reason → messages
	lost       int
	duplicates map[string]int // Message-ID → times accepted (> 1)
	notResent  int            // re-runs stopped by the idempotency record
}

// finish waits until every task is final, then checks each message: in a
// final state (completed, or archived with a reason), a completed one
// accepted by the receiver, an archived one never; each duplicate at the
// receiver among the transactions in flight at a hurt.
func (r *rig) finish(within time.Duration) outcome {
	r.t.Helper()
	waitFinal(r.t, r.insp, within)
	o := outcome{took: time.Since(r.start), archived: map[string]int{}, duplicates: r.world.Duplicated()}
	states := finalStates(r.t, r.insp)
	for i, x := range r.res {
		st, ok := states[x.ID]
		n := r.world.Accepted(x.ID)
		switch {
		case !ok:
			o.lost++
			ti, err := r.insp.GetTaskInfo(x.Queue, x.ID)
			r.t.Errorf("lost: %s (%s): not final: %+v %v", x.ID, r.msgs[i].To, ti, err)
		case st == "completed":
			o.completed++
			if n == 0 {
				r.t.Errorf("%s (%s): completed, but the receiver never accepted it", x.ID, r.msgs[i].To)
			}
		default:
			reason := strings.TrimPrefix(st, "archived: ")
			if reason == "" {
				r.t.Errorf("%s (%s): archived without a reason", x.ID, r.msgs[i].To)
			}
			if n != 0 {
				r.t.Errorf("%s (%s): archived (%s), but the receiver accepted it %d times", x.ID, r.msgs[i].To, reason, n)
			}
			o.archived[reasonKey(reason)]++
		}
	}
	r.mu.Lock()
	for id, n := range o.duplicates {
		if !r.inflight[id] {
			r.t.Errorf("%s accepted %d times, but it was in flight at no hurt", id, n)
		}
	}
	r.mu.Unlock()
	o.notResent = r.logCount("already accepted by the receiver")
	return o
}

// reasonKey is the kind of an archived task's reason: its text up to the
// first ":" or " as " ("suppressed", "flagged for review", ...).
func reasonKey(s string) string {
	if i := strings.Index(s, " as "); i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	return s
}

// log writes the figures of a run.
func (r *rig) log(o outcome, what string) {
	r.t.Helper()
	var arch []string
	for k, v := range o.archived {
		arch = append(arch, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(arch)
	extra := 0
	for _, n := range o.duplicates {
		extra += n - 1
	}
	r.mu.Lock()
	inflight := len(r.inflight)
	r.mu.Unlock()
	r.t.Logf("%s: %d messages final in %v: %d delivered, archived: %s; lost %d",
		what, len(r.res), o.took.Round(100*time.Millisecond), o.completed, strings.Join(arch, ", "), o.lost)
	r.t.Logf("receiver: %d accepted, %d Message-IDs accepted twice or more (%d extra copies); %d tasks were active at the hurts; %d re-runs stopped by the idempotency record; fast-forward: %d retries run early, %d orphaned leases expired",
		r.accepted(), len(o.duplicates), extra, inflight, o.notResent, r.ranEarly.Load(), r.rescued.Load())
}

// TestReliability builds ./cmd/bounceloop once and runs the campaigns:
// SIGKILL (item 1), SIGTERM (item 7), RedisRestart (item 2).
func TestReliability(t *testing.T) {
	bin := buildBinary(t)
	t.Run("SIGKILL", func(t *testing.T) { testCrashSIGKILL(t, bin) })
	t.Run("SIGTERM", func(t *testing.T) { testRestartSIGTERM(t, bin) })
	t.Run("RedisRestart", func(t *testing.T) { testRedisRestart(t, bin) })
}

// testCrashSIGKILL (item 1): worker processes killed with SIGKILL at random
// moments of a campaign and restarted. Fast: 2 processes, 2,000 messages,
// every process killed at once twice, asynq's lease expiry fast-forwarded.
// Full: 3 processes, 20,000 messages, one random process killed at five
// random moments and restarted after up to a second, real waits.
func testCrashSIGKILL(t *testing.T, bin string) {
	plan := planFor(t,
		crashPlan{n: 2000, procs: 2, concurrency: 20, hurts: 2, length: 6 * time.Second},
		crashPlan{n: 20000, procs: 3, concurrency: 20, hurts: 5, length: 60 * time.Second})
	r := newRig(t, bin, plan, redistest.DB(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !plan.full {
		go r.fastForward(ctx)
	}
	r.startAll()
	if plan.full {
		go r.watch(ctx, 10*time.Second)
	}
	killed := 0
	for k, at := range r.thresholds(plan.hurts) {
		r.waitProgress(at)
		if plan.full {
			p := r.procs[r.rnd.IntN(len(r.procs))]
			if _, _, err := p.signal(syscall.SIGKILL, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			killed++
			active := r.noteInflight()
			pause := time.Duration(r.rnd.IntN(1000)) * time.Millisecond
			t.Logf("kill %d at %d accepted (%v): serve %d killed, %d tasks active; restarted after %v",
				k+1, r.accepted(), time.Since(r.start).Round(100*time.Millisecond), p.i, active, pause)
			<-time.After(pause)
			r.startProc(p)
			continue
		}
		for _, p := range r.procs {
			if _, _, err := p.signal(syscall.SIGKILL, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			killed++
		}
		active := r.noteInflight()
		expired := r.expireLeases()
		t.Logf("kill %d at %d accepted (%v): every serve process killed, %d tasks active, %d leases expired by hand",
			k+1, r.accepted(), time.Since(r.start).Round(100*time.Millisecond), active, expired)
		<-time.After(time.Duration(r.rnd.IntN(500)) * time.Millisecond)
		for _, p := range r.procs {
			r.startProc(p)
		}
	}
	within := 90 * time.Second
	if plan.full {
		within = 10 * time.Minute
	}
	o := r.finish(within)
	cancel()
	r.log(o, fmt.Sprintf("%d SIGKILLs", killed))
	// At most the transactions in flight at a kill: concurrency per
	// process killed.
	extra := 0
	for _, n := range o.duplicates {
		extra += n - 1
	}
	if limit := killed * plan.concurrency; extra > limit {
		t.Errorf("%d extra copies at the receiver, more than the %d transactions that can be in flight at %d kills", extra, limit, killed)
	}
}

// testRestartSIGTERM (item 7): every serve process stopped with SIGTERM
// at random moments of a campaign, then started again. Graceful: each
// exits 0 within its shutdown_timeout, leaves no task active, and the
// receiver sees every Message-ID once.
func testRestartSIGTERM(t *testing.T, bin string) {
	plan := planFor(t,
		crashPlan{n: 1500, procs: 2, concurrency: 20, hurts: 2, length: 5 * time.Second},
		crashPlan{n: 20000, procs: 3, concurrency: 20, hurts: 5, length: 60 * time.Second})
	r := newRig(t, bin, plan, redistest.DB(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.startAll()
	if plan.full {
		go r.watch(ctx, 10*time.Second)
	}
	var slowest time.Duration
	started := time.Now()
	for k, at := range r.thresholds(plan.hurts) {
		r.waitProgress(at)
		// A SIGTERM within microseconds of exec reaches a process before
		// the Go runtime installs its handlers (the default action kills
		// it): each stop comes at least a second after the start.
		time.Sleep(time.Until(started.Add(time.Second)))
		before := r.accepted()
		var wg sync.WaitGroup
		errs := make([]error, len(r.procs))
		for i, p := range r.procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, took, err := p.signal(syscall.SIGTERM, 30*time.Second)
				switch {
				case err != nil:
					errs[i] = err
				case code != 0:
					errs[i] = fmt.Errorf("serve %d exited %d after SIGTERM", p.i, code)
				}
				r.mu.Lock()
				slowest = max(slowest, took)
				r.mu.Unlock()
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		// Nothing is left active: the transactions in flight finished or
		// went back to their queue.
		if n := r.noteInflight(); n != 0 {
			t.Errorf("restart %d: %d tasks still active after every process stopped", k+1, n)
		}
		t.Logf("restart %d at %d accepted (%v): every serve process stopped (SIGTERM); %d accepted during the shutdown",
			k+1, before, time.Since(r.start).Round(100*time.Millisecond), r.accepted()-before)
		<-time.After(time.Duration(r.rnd.IntN(500)) * time.Millisecond)
		for _, p := range r.procs {
			r.startProc(p)
		}
		started = time.Now()
	}
	within := 90 * time.Second
	if plan.full {
		within = 10 * time.Minute
	}
	o := r.finish(within)
	r.log(o, fmt.Sprintf("%d SIGTERM restarts", plan.hurts))
	t.Logf("slowest graceful exit: %v", slowest.Round(time.Millisecond))
	if len(o.duplicates) != 0 {
		t.Errorf("the receiver saw %d Message-IDs more than once after graceful restarts: %v", len(o.duplicates), o.duplicates)
	}
	if n := r.logCount("task lease expired"); n != 0 {
		t.Errorf("%d tasks lost their lease: a graceful stop left them behind", n)
	}
}

// testRedisRestart (item 2): a redis-server of the test's own, with the
// append-only file on, goes away mid-campaign — killed (SIGKILL) or
// stopped (SIGTERM), alternately, starting with a kill — and comes back on
// the same port after a pause. The serve processes are never restarted:
// they reconnect on their own; their HTTP listeners answer throughout,
// /healthz "degraded" (503) while Redis is away and "ok" again after; no
// message is lost.
func testRedisRestart(t *testing.T, bin string) {
	plan := planFor(t,
		crashPlan{n: 1500, procs: 2, concurrency: 20, hurts: 1, length: 6 * time.Second, web: true},
		crashPlan{n: 20000, procs: 3, concurrency: 20, hurts: 3, length: 60 * time.Second, web: true})
	srv := redistest.StartServer(t, "--appendonly", "yes")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	r := newRig(t, bin, plan, rdb)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !plan.full {
		go r.fastForward(ctx)
		go r.rescueOrphans(ctx)
	}
	r.startAll()
	if plan.full {
		go r.watch(ctx, 10*time.Second)
	}

	// /healthz of every process, every 100 ms.
	var down atomic.Bool
	type health struct{ ok, degraded, degradedWhileDown, failed int }
	var hmu sync.Mutex
	hs := make([]health, len(r.procs))
	var firstFail error
	var hwg sync.WaitGroup
	hc := &http.Client{Timeout: 5 * time.Second}
	for i, p := range r.procs {
		hwg.Add(1)
		go func() {
			defer hwg.Done()
			for ctx.Err() == nil {
				resp, err := hc.Get("http://" + p.web + "/healthz")
				hmu.Lock()
				switch {
				case err != nil:
					hs[i].failed++
					if firstFail == nil {
						firstFail = err
					}
				default:
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case resp.StatusCode == http.StatusOK:
						hs[i].ok++
					case resp.StatusCode == http.StatusServiceUnavailable && strings.HasPrefix(string(body), "degraded"):
						hs[i].degraded++
						if down.Load() {
							hs[i].degradedWhileDown++
						}
					default:
						hs[i].failed++
						if firstFail == nil {
							firstFail = fmt.Errorf("/healthz: %d %q", resp.StatusCode, body)
						}
					}
				}
				hmu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
	}
	healthy := func() bool {
		for _, p := range r.procs {
			resp, err := hc.Get("http://" + p.web + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false
			}
		}
		return true
	}

	pause := 2 * time.Second
	if plan.full {
		pause = 5 * time.Second
	}
	for k, at := range r.thresholds(plan.hurts) {
		r.waitProgress(at)
		r.noteInflight() // just before: what may be in flight when Redis goes
		how, stop := "killed (SIGKILL)", srv.Kill
		if k%2 == 1 {
			how, stop = "stopped (SIGTERM)", srv.Stop
		}
		down.Store(true)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		before := r.accepted()
		<-time.After(pause)
		// Let every process see the outage at least once.
		deadline := time.Now().Add(10 * time.Second)
		for {
			hmu.Lock()
			seen := true
			for _, h := range hs {
				seen = seen && h.degradedWhileDown > 0
			}
			hmu.Unlock()
			if seen || time.Now().After(deadline) {
				break
			}
			<-time.After(50 * time.Millisecond)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		during := r.accepted() - before
		down.Store(false)
		for !healthy() {
			if time.Since(back) > 30*time.Second {
				t.Fatalf("outage %d: /healthz not ok 30 s after Redis came back", k+1)
			}
			<-time.After(50 * time.Millisecond)
		}
		t.Logf("outage %d at %d accepted: Redis %s for %v (%d accepted meanwhile); /healthz ok again %v after it came back",
			k+1, before, how, back.Sub(t0).Round(10*time.Millisecond), during, time.Since(back).Round(10*time.Millisecond))
	}
	within := 90 * time.Second
	if plan.full {
		within = 10 * time.Minute
	}
	o := r.finish(within)
	cancel()
	hwg.Wait()
	r.log(o, fmt.Sprintf("%d Redis restarts", plan.hurts))
	for i, p := range r.procs {
		h := hs[i]
		t.Logf("serve %d /healthz: %d ok, %d degraded (%d while Redis was away), %d failed; started %d time(s)", i, h.ok, h.degraded, h.degradedWhileDown, h.failed, p.starts)
		if h.failed != 0 {
			t.Errorf("serve %d: /healthz failed %d times (first: %v): the HTTP server must stay up", i, h.failed, firstFail)
		}
		if h.degradedWhileDown == 0 {
			t.Errorf("serve %d: /healthz never said degraded while Redis was away", i)
		}
		if !p.alive() || p.starts != 1 {
			t.Errorf("serve %d: alive %v, started %d times; want it to ride the outage out", i, p.alive(), p.starts)
		}
	}
	extra := 0
	for _, n := range o.duplicates {
		extra += n - 1
	}
	if limit := plan.hurts * plan.procs * plan.concurrency; extra > limit {
		t.Errorf("%d extra copies at the receiver, more than the %d transactions in flight at %d outages", extra, limit, plan.hurts)
	}
	t.Logf("while Redis was away: %d task acknowledgements asynq could not write (\"Will retry syncing\"), %d idempotency records written again after a failed try, %d never written",
		r.logCount("Will retry syncing"), r.logCount("the delivery record is written now"), r.logCount("delivered, but the delivery could not be recorded"))
}
