package queue

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/policy/redistest"
	"github.com/bounceloop/bounceloop/queue/compose"
	"github.com/bounceloop/bounceloop/queue/sender"
)

// sentinelConfig is the part of a serve config.toml the Sentinel test
// reads: the sections a serve stack is built from.
type sentinelConfig struct {
	Redis  policy.RedisConfig `toml:"redis"`
	Queue  Config             `toml:"queue"`
	Web    WebConfig          `toml:"web"`
	SMTP   sender.Config      `toml:"smtp"`
	Policy policy.Config      `toml:"policy"`
}

// sentinelRig is one run of TestSentinelFailover.
type sentinelRig struct {
	t      *testing.T
	cfg    sentinelConfig
	logs   *lineCounter
	stacks []*Stack
	rdbs   []redis.UniversalClient // each stack's own client, as each serve process has

	mu       sync.Mutex
	inflight map[string]bool // task ids in flight at the failover
}

// lineCounter passes log lines on and counts those with a phrase.
type lineCounter struct {
	w      io.Writer
	mu     sync.Mutex
	counts map[string]int
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	for k := range c.counts {
		if strings.Contains(string(p), k) {
			c.counts[k]++
		}
	}
	c.mu.Unlock()
	return c.w.Write(p)
}

func (c *lineCounter) count(phrase string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[phrase]
}

// startStack builds and starts a serve stack the way "bounceloop serve"
// does (cmd/bounceloop/stack.go): its own client from the [redis]
// section, asynq's connection options from it, the key prefix.
func (r *sentinelRig) startStack(i int) error {
	cl, err := bounces.NewClassifier()
	if err != nil {
		return err
	}
	rdb := r.cfg.Redis.NewClient()
	st, err := NewStack(StackConfig{
		Redis: rdb, ConnOpt: RedisConnOpt(r.cfg.Redis), KeyPrefix: r.cfg.Redis.KeyPrefix(),
		Queue: r.cfg.Queue, Web: r.cfg.Web, Policy: r.cfg.Policy, SMTP: r.cfg.SMTP,
		Templates: compose.Default(), Classifier: cl, Resolver: noDNS{},
		Log: zerolog.New(r.logs).Level(zerolog.WarnLevel).With().Int("stack", i).Logger(),
	})
	if err != nil {
		_ = rdb.Close()
		return err
	}
	if err := st.Start(); err != nil {
		_ = rdb.Close()
		return err
	}
	r.mu.Lock()
	r.stacks = append(r.stacks, st)
	r.rdbs = append(r.rdbs, rdb)
	r.mu.Unlock()
	return nil
}

func (r *sentinelRig) shutdown() {
	r.mu.Lock()
	stacks, rdbs := r.stacks, r.rdbs
	r.stacks, r.rdbs = nil, nil
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, st := range stacks {
		wg.Add(1)
		go func() { defer wg.Done(); st.Shutdown() }()
	}
	wg.Wait()
	for _, rdb := range rdbs {
		_ = rdb.Close()
	}
}

// noteActive records the ids in the active lists of every queue on the
// data node at addr (the old or the new master).
func (r *sentinelRig) noteActive(ctx context.Context, addr string, queues []string) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	for _, q := range queues {
		ids, err := rdb.LRange(ctx, crashActiveKey(q), 0, -1).Result()
		if err != nil {
			continue
		}
		r.mu.Lock()
		for _, id := range ids {
			r.inflight[id] = true
		}
		r.mu.Unlock()
	}
}

// onMaster reports whether a client's connection is to the server at
// addr, and that server's ROLE is master.
func onMaster(ctx context.Context, rdb redis.UniversalClient, addr string) error {
	_, port, _ := net.SplitHostPort(addr)
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return err
	}
	if !strings.Contains(info, "tcp_port:"+port+"\r\n") {
		return fmt.Errorf("connected to another server than %s", addr)
	}
	role, err := rdb.Do(ctx, "ROLE").Slice()
	if err != nil {
		return err
	}
	if len(role) == 0 || role[0] != "master" {
		return fmt.Errorf("ROLE %v, want master", role)
	}
	return nil
}

// rescueOrphans fast-forwards asynq's clock for tasks that no worker
// holds after the failover: a task whose acknowledgement went to the old
// master after the promotion (lost with it) stays active on the new one
// until its lease lapses and a recoverer runs it again, 1–2.5 min later
// (asynq v0.25.1, see TestReliability's rescueOrphans). Every second it
// looks on the new master for active tasks whose lease nobody extended
// for 8 s (a live worker's is extended every 5 s to 30 s ahead), moves
// their lease 70 s into the past and starts one more stack, whose
// recoverer runs at once and puts them in the retry set; retries due more
// than 2 s ahead (asynq's 15–45 s backoff) are run at once.
func (r *sentinelRig) rescueOrphans(ctx context.Context, rdb redis.UniversalClient, insp *asynq.Inspector, rescued *int) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		qs, err := insp.Queues()
		if err != nil {
			continue
		}
		stale := fmt.Sprint(time.Now().Add(22 * time.Second).Unix())
		past := float64(time.Now().Add(-70 * time.Second).Unix())
		n := 0
		for _, q := range qs {
			ids, err := rdb.ZRangeByScore(ctx, crashLeaseKey(q), &redis.ZRangeBy{Min: "-inf", Max: stale}).Result()
			if err != nil {
				continue
			}
			for _, id := range ids {
				if rdb.ZAddXX(ctx, crashLeaseKey(q), redis.Z{Score: past, Member: id}).Err() == nil {
					n++
				}
			}
		}
		if n > 0 {
			*rescued += n
			r.t.Logf("rescue: %d orphaned tasks (lease not extended for 8 s): leases expired, one more stack started to recover them", n)
			if err := r.startStack(100 + *rescued); err != nil {
				r.t.Errorf("rescue: %v", err)
				return
			}
		}
		for _, q := range qs {
			tis, err := insp.ListRetryTasks(q, asynq.PageSize(1000))
			if err != nil {
				continue
			}
			for _, ti := range tis {
				if time.Until(ti.NextProcessAt) > 2*time.Second {
					_ = insp.RunTask(q, ti.ID)
				}
			}
		}
	}
}

// TestSentinelFailover runs a campaign of a few hundred messages through
// two serve stacks configured with [redis] master_name and the sentinels'
// addresses (a master, a replica and three sentinels of our own on
// loopback, redistest.StartSentinel), forces a failover (SENTINEL
// FAILOVER) when about a third of the messages are delivered, and checks:
//
//   - the stacks' clients follow: each one's connection is to the new
//     master and ROLE there says master; messages enqueued after the
//     failover (writes) are delivered;
//   - every message ends final, none lost, with the outcome the simulated
//     receivers script (as in TestClusterCampaign; a recipient suppressed
//     by its own bounce may end "suppressed" instead, see below), a
//     completed one accepted by the receiver, an archived one never; the
//     two suppressions kept;
//   - duplicates at the receiver are bounded: a Message-ID accepted twice
//     must be one in flight at the failover — active on either master
//     from just before SENTINEL FAILOVER until every client is on the new
//     master, or accepted by the receiver in that window. Redis
//     replication is asynchronous and the old master takes writes until
//     the clients switch: a task taken, acknowledged or recorded as sent
//     there in that window is lost with it and runs again (the receiver
//     accepts it twice when its idempotency record was among the lost
//     writes). Nothing outside the window may repeat.
//
// The old master must end as the new one's replica. Tasks whose
// acknowledgement was lost with the old master stay active on the new one
// until asynq's lease recovery (1–2.5 min); rescueOrphans fast-forwards
// it, as TestReliability's fast versions do.
//
// Knobs: BOUNCELOOP_SENTINEL_KILL=1 kills the master (SIGKILL) instead:
// the sentinels find it down after 1 s (down-after-milliseconds), agree
// (quorum 2) and promote the replica; there is no second master then,
// and the old one is not started again. BOUNCELOOP_SENTINEL_MIN_REPLICAS=1
// runs the data nodes with min-replicas-to-write 1 and
// min-replicas-max-lag 10 (docs/reliability.md's advice).
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Sentinel deployment and a campaign")
	}
	const rateN = 200
	kill := envInt(t, "BOUNCELOOP_SENTINEL_KILL", 0) == 1
	minReplicas := envInt(t, "BOUNCELOOP_SENTINEL_MIN_REPLICAS", 0) == 1
	var nodeArgs []string
	if minReplicas {
		nodeArgs = []string{"--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"}
	}
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last: after the stacks, clients and Redis are closed
	began := time.Now()
	s := redistest.StartSentinel(t, 3, nodeArgs...)
	world := clusterWorld(t)
	defer world.Close()
	quoted := make([]string, len(s.Addrs()))
	for i, a := range s.Addrs() {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	conf := fmt.Sprintf("[redis]\nmaster_name = %q\naddrs = [%s]\nprefix = \"s\"\n\n[web]\nlisten = \"off\"\n\n"+
		"[smtp]\nmode = \"mx\"\nhelo = \"bounceloop.test\"\n\n[smtp.routes]\n\"*\" = %q\n%s",
		s.MasterName(), strings.Join(quoted, ", "), world.Addr("sim"), clusterCampaignTOML)
	r := &sentinelRig{t: t, inflight: map[string]bool{},
		logs: &lineCounter{w: zerolog.NewTestWriter(t), counts: map[string]int{}}}
	for _, k := range logPhrases {
		r.logs.counts[k] = 0
	}
	md, err := toml.Decode(conf, &r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("config keys not decoded: %v", u)
	}
	if err := r.cfg.Redis.Validate(); err != nil {
		t.Fatal(err)
	}
	if o, ok := RedisConnOpt(r.cfg.Redis).(asynq.RedisFailoverClientOpt); !ok || o.MasterName != s.MasterName() {
		t.Fatalf("RedisConnOpt = %#v, want asynq.RedisFailoverClientOpt for %s", RedisConnOpt(r.cfg.Redis), s.MasterName())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rdb := r.cfg.Redis.NewClient() // the test's own: enqueue and inspect
	defer rdb.Close()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	defer insp.Close()

	msgs := clusterMessages(rateN)
	c := NewClient(rdb, ClientOptions{Config: r.cfg.Queue.WithDefaults(), Policy: r.cfg.Policy.WithDefaults(), Templates: compose.Default()})
	res, err := c.EnqueueBatch(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	to := map[string]string{} // task id → recipient
	for i, x := range res {
		if x.Status != StatusEnqueued {
			t.Fatalf("enqueue %s: %v %s", msgs[i].To, x.Status, x.Reason)
		}
		to[x.ID] = msgs[i].To
	}
	defer r.shutdown()
	for i := 0; i < 2; i++ {
		if err := r.startStack(i); err != nil {
			t.Fatal(err)
		}
	}
	started := time.Now()

	// The failover, when about a third is delivered.
	third := len(msgs) / 3
	for world.Stats().Accepted < third {
		if time.Since(started) > 30*time.Second {
			t.Fatalf("%d accepted after 30 s, want %d before the failover", world.Stats().Accepted, third)
		}
		<-time.After(5 * time.Millisecond)
	}
	queues, err := insp.Queues()
	if err != nil {
		t.Fatal(err)
	}
	accepted := func() map[string]int {
		out := map[string]int{}
		for id := range to {
			for _, p := range []string{"", "small.", "review."} {
				out[p+id] = world.Accepted(p + id)
			}
		}
		return out
	}
	old, err := s.MasterAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := accepted()
	atFailover := world.Stats().Accepted
	r.noteActive(ctx, old, queues)
	activeBefore := len(r.inflight)
	sampling, stopSampling := context.WithCancel(ctx)
	var sampled sync.WaitGroup
	sampled.Add(1)
	go func() { // everything active on either master in the window
		defer sampled.Done()
		for sampling.Err() == nil {
			for _, a := range s.DataAddrs() {
				r.noteActive(sampling, a, queues)
			}
			<-time.After(10 * time.Millisecond)
		}
	}()
	t0 := time.Now()
	hurt := "SENTINEL FAILOVER"
	from, newMaster := old, s.DataAddrs()[1]
	if kill {
		hurt = "master killed"
		if err := s.Kill(old); err != nil {
			t.Fatal(err)
		}
		err = s.WaitMaster(ctx, newMaster, nil, 15*time.Second)
	} else {
		from, newMaster, err = s.Failover(ctx, 15*time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	promoted := time.Since(t0)
	// Every client on the new master: the stacks', the test's.
	r.mu.Lock()
	clients := append([]redis.UniversalClient{rdb}, r.rdbs...)
	r.mu.Unlock()
	for i, cl := range clients {
		for {
			err := onMaster(ctx, cl, newMaster)
			if err == nil {
				break
			}
			if time.Since(t0) > 20*time.Second {
				t.Fatalf("client %d (0: the test's; then the stacks') not on the new master %s 20 s after the failover: %v", i, newMaster, err)
			}
			<-time.After(20 * time.Millisecond)
		}
	}
	switched := time.Since(t0)
	stopSampling()
	sampled.Wait()
	for _, a := range s.DataAddrs() {
		r.noteActive(ctx, a, queues)
	}
	inWindow := 0
	for id, n := range accepted() {
		if n > before[id] {
			r.inflight[id] = true
			inWindow++
		}
	}
	t.Logf("%s (min-replicas-to-write %v): %s → %s at %d accepted (%v after start): new master named after %v, every client on it after %v; "+
		"in flight: %d active before, %d accepted in the window, %d in all",
		hurt, minReplicas, from, newMaster, atFailover, t0.Sub(started).Round(time.Millisecond), promoted.Round(time.Millisecond),
		switched.Round(time.Millisecond), activeBefore, inWindow, len(r.inflight))

	if minReplicas && !kill {
		// The new master refuses writes (NOREPLICAS) until the old one
		// is its replica.
		if err := s.WaitMaster(ctx, newMaster, []string{from}, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		replica := time.Since(t0)
		for { // the master counts it as a good replica at its next acknowledgement
			err := rdb.Set(ctx, r.cfg.Redis.KeyPrefix()+":probe", "1", 0).Err()
			if err == nil {
				break
			}
			if time.Since(t0) > 30*time.Second {
				t.Fatalf("writes still refused 30 s after the failover: %v", err)
			}
			<-time.After(50 * time.Millisecond)
		}
		t.Logf("old master a connected replica after %v, writes accepted again after %v",
			replica.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	}
	// Writes after the failover: a stack's client enqueues more.
	var after []Message
	for i := 0; i < 20; i++ {
		after = append(after, Message{Campaign: "sentinel", To: fmt.Sprintf("after-%d@other.cluster.test", i), Template: "notice",
			Data: map[string]any{"first_name": "Jana", "offer": "20% off"}})
	}
	r.mu.Lock()
	first := r.stacks[0]
	r.mu.Unlock()
	res2, err := first.Client.EnqueueBatch(ctx, after)
	if err != nil {
		t.Fatalf("enqueue after the failover: %v", err)
	}
	for i, x := range res2 {
		if x.Status != StatusEnqueued {
			t.Fatalf("enqueue %s after the failover: %v %s", after[i].To, x.Status, x.Reason)
		}
		to[x.ID] = after[i].To
	}

	rescueCtx, stopRescue := context.WithCancel(ctx)
	rescued := 0
	var rescuing sync.WaitGroup
	rescuing.Add(1)
	go func() { defer rescuing.Done(); r.rescueOrphans(rescueCtx, rdb, insp, &rescued) }()
	waitFinal(t, insp, 60*time.Second)
	stopRescue()
	rescuing.Wait()
	took := time.Since(started)
	r.shutdown()

	// Final states, read from the new master.
	states := map[string]string{} // recipient ("small."/"review." + recipient) → state
	for id, st := range finalStates(t, insp) {
		base, derived := splitDerived(id)
		rcpt, ok := to[base]
		if !ok {
			t.Errorf("a task of no message of the campaign: %s %s", id, st)
			continue
		}
		n := world.Accepted(id)
		if st == "completed" && n == 0 {
			t.Errorf("%s (%s): completed, but the receiver never accepted it", id, rcpt)
		}
		if st != "completed" && n != 0 {
			t.Errorf("%s (%s): %s, but the receiver accepted it %d times", id, rcpt, st, n)
		}
		if m := classInError.FindStringSubmatch(st); strings.HasPrefix(st, "archived") && m != nil {
			st = "archived (" + m[1] + ")"
		} else if strings.HasPrefix(st, "archived: suppressed") {
			st = "archived (suppressed)" // the pre-send check: the recipient was already suppressed
		}
		states[derived+rcpt] = st
	}
	lost := 0
	for id, rcpt := range to {
		if _, ok := states[rcpt]; !ok {
			lost++
			t.Errorf("lost: %s (%s) is in no final state", id, rcpt)
		}
	}
	if want := len(msgs) + len(after) + 2; len(states) != want {
		t.Errorf("%d tasks final, want %d (the messages, the 20 enqueued after the failover, a small resend, a review copy)", len(states), want)
	}
	want := scriptedOutcomes(rateN)
	for _, m := range append(slices.Clone(msgs), after...) {
		if strings.HasPrefix(m.To, "ok-") || strings.HasPrefix(m.To, "after-") {
			want[m.To] = "completed"
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		got := states[k]
		// A recipient suppressed by its own bounce may end "suppressed":
		// the suppression was written to the new master but the task's
		// archiving was lost with the old one, and the re-run stopped at
		// the pre-send check. Not sent either way.
		if got == "archived (suppressed)" && (want[k] == "archived (invalid_recipient)" || want[k] == "archived (mailbox_full)") {
			continue
		}
		if got != want[k] {
			t.Errorf("%s: %q, want %q", k, got, want[k])
		}
	}
	suppressed, err := rdb.HLen(ctx, feedback.Keys{Prefix: r.cfg.Redis.KeyPrefix()}.Suppressed()).Result()
	if err != nil || suppressed != 2 {
		t.Errorf("suppressed: %d (%v), want 2 (unknown-1, full-1)", suppressed, err)
	}
	n := map[string]int{}
	for _, st := range states {
		n[st]++
	}
	var summary []string
	for _, st := range slices.Sorted(maps.Keys(n)) {
		summary = append(summary, fmt.Sprintf("%s ×%d", st, n[st]))
	}

	// Duplicates: only what was in flight at the failover.
	dups := world.Duplicated()
	for _, id := range slices.Sorted(maps.Keys(dups)) {
		if !r.inflight[id] {
			t.Errorf("%s (%s) accepted %d times, but it was not in flight at the failover", id, to[id], dups[id])
		}
	}
	if len(dups) > len(r.inflight) {
		t.Errorf("%d duplicates, more than the %d tasks in flight at the failover", len(dups), len(r.inflight))
	}
	t.Logf("campaign: %d tasks final after %v (%v in all with the deployment): %s; lost %d", len(states),
		took.Round(time.Millisecond), time.Since(began).Round(time.Second), strings.Join(summary, ", "), lost)
	t.Logf("receiver: %d acceptances, %d Message-IDs accepted more than once (bound: the %d in flight at the failover); "+
		"%d orphaned tasks rescued", world.Stats().Accepted, len(dups), len(r.inflight), rescued)
	var logged []string
	for _, k := range logPhrases {
		logged = append(logged, fmt.Sprintf("%q ×%d", k, r.logs.count(k)))
	}
	t.Logf("logs: %s", strings.Join(logged, ", "))

	if !kill {
		// The old master is the new one's replica now.
		if err := s.WaitMaster(ctx, newMaster, []string{from}, 20*time.Second); err != nil {
			t.Error(err)
		}
	}
}

// logPhrases are the log lines TestSentinelFailover counts: asynq could
// not write a task's new state (and the task was not active where it
// wrote: taken on the old master after the promotion); a re-run stopped
// by the idempotency record; a delivery record written again.
var logPhrases = []string{"Will retry syncing", "NOT FOUND; Will retry syncing", "already accepted by the receiver",
	"writing the delivery record again", "delivered, but the delivery could not be recorded"}
