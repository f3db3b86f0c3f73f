package queue

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/policy/redistest"
	"github.com/bounceloop/bounceloop/queue/compose"
	"github.com/bounceloop/bounceloop/queue/internal/smtpsim"
)

// TestClusterKeySlots checks that the keys of every multi-key operation
// of ours (a Lua script or a MULTI/EXEC transaction) hash to one Redis
// Cluster slot, for queue names and ids of several shapes. The scripts and
// their keys:
//
//   - asynqEnqueueMany (EnqueueBatch, resends): asynq:{q}:pending and
//     asynq:{q}:t:<id>…
//   - asynqAddArchived (review copies): asynq:{q}:t:<id>, asynq:{q}:archived
//   - feedback outcomeScript: <prefix>:outcomes:{q}, <prefix>:outcomes:{q}:flagged
//   - feedback MailboxFull (MULTI: INCR, EXPIRE): one key
//   - feedback rateScript, redis_rate's GCRA script: one key each
//
// Plain pipelines (PreSend's HEXISTS + GET, the counters' flush, the
// report's SETs and SADD) may span slots: a ClusterClient splits them by
// slot.
func TestClusterKeySlots(t *testing.T) {
	keys := feedback.Keys{Prefix: "bounceloop"}
	for _, q := range []string{"default", "review", "google", "a.b", "x}y", "{q}", "provider:1"} {
		for _, id := range []string{"0f3c9a2e@mail.example.com", "small.1@x", "review.{2}@y", ""} {
			sets := map[string][]string{
				"asynqEnqueueMany": {asynqPendingKey(q), asynqTaskKey(q, id), asynqTaskKey(q, id+"2")},
				"asynqAddArchived": {asynqTaskKey(q, id), asynqArchivedKey(q)},
				"outcomeScript":    {keys.Outcomes(q), keys.OutcomesFlagged(q)},
			}
			for name, ks := range sets {
				for _, k := range ks[1:] {
					if redistest.Slot(k) != redistest.Slot(ks[0]) {
						t.Errorf("%s, queue %q, id %q: %q in slot %d, %q in slot %d", name, q, id,
							ks[0], redistest.Slot(ks[0]), k, redistest.Slot(k))
					}
				}
			}
		}
	}
}

// clusterAudited lists every Lua script and MULTI/EXEC transaction of
// ours, by file, with the keys it touches (checked above, or one key).
// TestClusterAudit fails when the source has one that is not listed: check
// its keys share a slot (a hash tag), then list it here.
var clusterAudited = map[string][]string{
	"feedback/loop.go":    {"script rateScript: <prefix>:rates", "script outcomeScript: <prefix>:outcomes:{q}, …:flagged", "multi MailboxFull: <prefix>:mailbox_full:<addr>"},
	"feedback/holds.go":   {"script setHoldScript: <prefix>:holds"},
	"policy/limiter.go":   {"script leaseScript: <prefix>:rate:<key>"},
	"queue/asynqwire.go":  {"script asynqEnqueueMany: asynq:{q}:pending, asynq:{q}:t:<id>…", "script asynqAddArchived: asynq:{q}:t:<id>, asynq:{q}:archived"},
	"queue/reporttask.go": {}, // a plain pipeline (SET, SET, SADD): split by slot on a cluster
}

var (
	scriptDecl = regexp.MustCompile(`(?m)^\s*(?:var\s+)?(\w+)\s*=\s*redis\.NewScript\(`)
	txCall     = regexp.MustCompile(`\.(TxPipelined|TxPipeline|Watch)\(`)
)

// TestClusterAudit scans the non-test sources of feedback, policy and
// queue for Lua scripts (redis.NewScript) and transactions (TxPipelined,
// TxPipeline, Watch) and fails on one that clusterAudited does not list.
// redis_rate's own script (one key) is outside the scan.
func TestClusterAudit(t *testing.T) {
	seen := 0
	for _, pkg := range []struct{ dir, name string }{{"../feedback", "feedback"}, {"../policy", "policy"}, {".", "queue"}} {
		files, err := filepath.Glob(filepath.Join(pkg.dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			name := pkg.name + "/" + filepath.Base(f)
			seen++
			listed := strings.Join(clusterAudited[name], "\n")
			for _, m := range scriptDecl.FindAllStringSubmatch(string(b), -1) {
				if !strings.Contains(listed, "script "+m[1]+":") {
					t.Errorf("%s: Lua script %s is not in clusterAudited: check that its keys share one hash slot, then list it", name, m[1])
				}
			}
			if n := len(txCall.FindAllString(string(b), -1)); n > strings.Count(listed, "multi ") {
				t.Errorf("%s: %d transactions (TxPipelined/TxPipeline/Watch), %d in clusterAudited: check that each keeps its keys in one hash slot, then list it",
					name, n, strings.Count(listed, "multi "))
			}
		}
	}
	if seen < 10 {
		t.Fatalf("scanned %d source files: the scan is looking in the wrong place", seen)
	}
}

// clusterCampaignTOML is the [queue] and [policy] part of the campaign's
// config, read by the serve processes and, decoded, by the test's client.
// Three provider groups and the default queue: their hash tags fall on
// the three masters (alpha 865, gamma 2469; default 5718; beta 15419,
// review 12014; slots 0–5460, 5461–10922, 10923–16383).
const clusterCampaignTOML = `
[queue]
concurrency = 10
max_retry = 25

[policy.default]
retry_schedule = ["300ms"]
max_age = "1m"
recovery_interval = "1s"

[policy.providers.alpha]
domains = ["alpha.cluster.test", "rate.cluster.test"]

[policy.providers.beta]
domains = ["beta.cluster.test", "slow.cluster.test"]

[policy.providers.gamma]
domains = ["gamma.cluster.test"]

[policy.domains."rate.cluster.test"]
rate = "50/s"
max_rate = "50/s" # no recovery above the configured rate: the test measures the limit

[policy.domains."slow.cluster.test"]
rate = "20/s"

[policy.domains."gamma.cluster.test"]
max_age = "3s"
`

// clusterWorld is the receiving side of the campaign.
func clusterWorld(t *testing.T) *smtpsim.World {
	t.Helper()
	w, err := smtpsim.Start(smtpsim.Config{Seed: 1, CatchAll: "sim", Providers: []smtpsim.Provider{{Name: "sim", Domains: []string{
		"alpha.cluster.test", "beta.cluster.test", "gamma.cluster.test", "rate.cluster.test", "slow.cluster.test", "other.cluster.test",
	}}}, Domains: map[string]smtpsim.Domain{
		"alpha.cluster.test": {SizeLimit: 4096},
		"beta.cluster.test":  {FullReply: "552 5.2.2 Mailbox full"},
		"slow.cluster.test":  {RatePerSec: 5, Burst: 2},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// clusterMessages is the campaign: rateN messages to the 50/s domain and
// one or more recipients of every outcome the loop acts on.
func clusterMessages(rateN int) []Message {
	var ms []Message
	add := func(to, tpl string) {
		ms = append(ms, Message{Campaign: "cluster", To: to, Template: tpl, Data: map[string]any{"first_name": "Jana", "offer": "20% off"}})
	}
	for i := 0; i < 20; i++ {
		add(fmt.Sprintf("ok-%d@alpha.cluster.test", i), "notice")
		add(fmt.Sprintf("ok-%d@beta.cluster.test", i), "notice")
		add(fmt.Sprintf("ok-%d@other.cluster.test", i), "notice")
		add(fmt.Sprintf("ok-%d@slow.cluster.test", i), "notice") // deferred by the receiver: rate cuts
	}
	add("unknown-1@alpha.cluster.test", "notice")  // suppressed
	add("big-1@alpha.cluster.test", "newsletter")  // resent small
	add("spam-1@beta.cluster.test", "notice")      // flagged for review
	add("full-1@beta.cluster.test", "notice")      // mailbox_full three times: suppressed
	add("flaky-1@gamma.cluster.test", "notice")    // a retry, then delivered
	add("tempfail-1@gamma.cluster.test", "notice") // expired at max_age
	for i := 0; i < rateN; i++ {
		add(fmt.Sprintf("ok-%d@rate.cluster.test", i), "notice")
	}
	return ms
}

// campaignResult is what a run of the campaign ends with.
type campaignResult struct {
	states     map[string]string // recipient ("small."/"review." + recipient for derived tasks) -> state
	suppressed int64
	rate       float64 // accepted/s of rate.cluster.test over the steady window
	lo, hi     float64 // its one-second rates
	duplicates int
	slowCut    bool // slow.cluster.test's adaptive rate was cut
}

var classInError = regexp.MustCompile(`\(([a-z_]+),`)

// runCampaign runs the campaign with three "bounceloop serve" processes
// on the Redis that rdb reaches and that redisTOML (the [redis] section)
// describes, and returns its final states.
func runCampaign(t *testing.T, bin string, rdb redis.UniversalClient, redisTOML string, rateN int) campaignResult {
	t.Helper()
	var cfg struct {
		Queue  Config        `toml:"queue"`
		Policy policy.Config `toml:"policy"`
	}
	if _, err := toml.Decode(clusterCampaignTOML, &cfg); err != nil {
		t.Fatal(err)
	}
	world := clusterWorld(t)
	defer world.Close()
	ctx := context.Background()
	c := NewClient(rdb, ClientOptions{Config: cfg.Queue.WithDefaults(), Policy: cfg.Policy.WithDefaults(), Templates: compose.Default()})
	msgs := clusterMessages(rateN)
	res, err := c.EnqueueBatch(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	to := map[string]string{}
	for i, r := range res {
		if r.Status != StatusEnqueued {
			t.Fatalf("enqueue %s: %v %s", msgs[i].To, r.Status, r.Reason)
		}
		to[r.ID] = msgs[i].To
	}

	conf := fmt.Sprintf("%s\n[web]\nlisten = \"off\"\n\n[smtp]\nmode = \"mx\"\nhelo = \"bounceloop.test\"\n\n[smtp.routes]\n\"*\" = %q\n%s",
		redisTOML, world.Addr("sim"), clusterCampaignTOML)
	path := t.TempDir() + "/config.toml"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var stops []func()
	for i := 0; i < 3; i++ {
		stops = append(stops, startServe(t, bin, path, i))
	}
	const domain = "rate.cluster.test"
	count := func() int { return world.Stats().Domains[domain].Accepted }
	first := waitFirst(t, count, 60*time.Second)
	total := time.Duration(rateN/50) * time.Second
	from, until := first.Add(2*time.Second), first.Add(total-2*time.Second)
	ss := pollAccepted(count, until.Add(time.Second))
	out := campaignResult{states: map[string]string{}}
	out.rate, out.lo, out.hi = windowRate(ss, from, until)

	insp := asynq.NewInspectorFromRedisClient(rdb)
	defer insp.Close()
	if srvs, err := insp.Servers(); err != nil || len(srvs) != 3 {
		t.Errorf("%d asynq servers during the campaign (%v), want 3 (one per serve process)", len(srvs), err)
	}
	waitFinal(t, insp, 2*time.Minute)
	for _, stop := range stops {
		stop()
	}
	for id, st := range finalStates(t, insp) {
		base, derived := splitDerived(id)
		r, ok := to[base]
		if !ok {
			t.Errorf("a task of no message of the campaign: %s %s", id, st)
			continue
		}
		if m := classInError.FindStringSubmatch(st); strings.HasPrefix(st, "archived") && m != nil {
			st = "archived (" + m[1] + ")" // the text holds times and ids that differ between runs
		}
		out.states[derived+r] = st
	}
	ws := world.Stats()
	out.duplicates = ws.Duplicates
	keys := feedback.Keys{Prefix: "c"}
	out.suppressed, err = rdb.HLen(ctx, keys.Suppressed()).Result()
	if err != nil {
		t.Fatal(err)
	}
	rates, err := feedback.NewLoop(rdb, keys, nil).RateStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out.slowCut = rates["domain:slow.cluster.test"].Rate.PerSecond() < 20
	return out
}

// TestClusterCampaign runs the same campaign twice with three "bounceloop
// serve" processes: on one Redis and on a Redis Cluster of three masters
// on loopback. Both runs must end in the same final states, with no
// duplicate at the receiver and the 50/s domain within 10% of 50/s over
// its steady window (the processes share its rate through the cluster).
// Every multi-key operation of ours must stay in one hash slot, or the
// cluster refuses it (CROSSSLOT) and the run differs. Campaign size:
// BOUNCELOOP_CLUSTER_RATE_N messages at 50/s (default 500: 10 s).
func TestClusterCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster and six serve processes")
	}
	rateN := envInt(t, "BOUNCELOOP_CLUSTER_RATE_N", 500)
	clusterAddrs := redistest.ClusterAddrs(t) // skips before the build when redis-cli is missing
	bin := buildBinary(t)

	single := redistest.DB(t)
	o := single.Options()
	one := runCampaign(t, bin, single, fmt.Sprintf("[redis]\naddrs = [%q]\ndb = %d\nprefix = \"c\"\n", o.Addr, o.DB), rateN)

	crdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: clusterAddrs})
	defer crdb.Close()
	quoted := make([]string, len(clusterAddrs))
	for i, a := range clusterAddrs {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	clu := runCampaign(t, bin, crdb, fmt.Sprintf("[redis]\naddrs = [%s]\ncluster = true\nprefix = \"c\"\n", strings.Join(quoted, ", ")), rateN)
	var perNode []string
	for _, a := range clusterAddrs {
		node := redis.NewClient(&redis.Options{Addr: a})
		n, err := node.DBSize(context.Background()).Result()
		_ = node.Close()
		if err != nil || n == 0 {
			t.Errorf("cluster node %s holds %d keys (%v): the campaign did not spread over the masters", a, n, err)
		}
		perNode = append(perNode, fmt.Sprint(n))
	}
	t.Logf("Redis Cluster: keys per master after the campaign: %s", strings.Join(perNode, ", "))

	summary := func(r campaignResult) string {
		n := map[string]int{}
		for _, s := range r.states {
			n[s]++
		}
		var parts []string
		for _, s := range slices.Sorted(maps.Keys(n)) {
			parts = append(parts, fmt.Sprintf("%s ×%d", s, n[s]))
		}
		return strings.Join(parts, ", ")
	}
	for _, r := range []struct {
		name string
		res  campaignResult
	}{{"one Redis", one}, {"Redis Cluster", clu}} {
		t.Logf("%s: %d tasks: %s; suppressed %d; duplicates %d; slow domain cut %v", r.name, len(r.res.states), summary(r.res),
			r.res.suppressed, r.res.duplicates, r.res.slowCut)
		t.Logf("%s: rate.cluster.test at %.2f msgs/s over its steady window (one-second rates %.0f..%.0f), 3 processes sharing 50/s",
			r.name, r.res.rate, r.res.lo, r.res.hi)
		if r.res.rate < 45 || r.res.rate > 55 {
			t.Errorf("%s: rate.cluster.test at %.2f msgs/s, want 50 ± 10%%", r.name, r.res.rate)
		}
		if r.res.duplicates != 0 {
			t.Errorf("%s: the receiver saw %d duplicates", r.name, r.res.duplicates)
		}
		if !r.res.slowCut {
			t.Errorf("%s: slow.cluster.test's rate was not cut", r.name)
		}
	}
	if want := len(clusterMessages(rateN)) + 2; len(one.states) != want {
		t.Errorf("one Redis: %d tasks, want %d (the messages, a small resend, a review copy)", len(one.states), want)
	}
	for _, k := range slices.Sorted(maps.Keys(one.states)) {
		if clu.states[k] != one.states[k] {
			t.Errorf("%s: %q on the cluster, %q on one Redis", k, clu.states[k], one.states[k])
		}
	}
	for k, s := range clu.states {
		if _, ok := one.states[k]; !ok {
			t.Errorf("%s: %q on the cluster only", k, s)
		}
	}
	if one.suppressed != 2 || clu.suppressed != 2 {
		t.Errorf("suppressed: %d on one Redis, %d on the cluster, want 2 (unknown-1, full-1)", one.suppressed, clu.suppressed)
	}
	// The outcomes the campaign scripts.
	for k, want := range scriptedOutcomes(rateN) {
		if got := clu.states[k]; got != want {
			t.Errorf("cluster: %s: %q, want %q", k, got, want)
		}
	}
}

// splitDerived splits a task id into the id of the campaign's message and
// the prefix of the task derived from it ("small." resend, "review." copy),
// "" for the message's own task.
func splitDerived(id string) (base, derived string) {
	for _, p := range []string{"small.", "review."} {
		if b, ok := strings.CutPrefix(id, p); ok {
			return b, p
		}
	}
	return id, ""
}

// scriptedOutcomes is the final state of the tasks whose outcome the
// cluster campaign scripts (rateN messages to the rate domain), keyed by
// recipient ("small."/"review." + recipient for the derived tasks).
func scriptedOutcomes(rateN int) map[string]string {
	return map[string]string{
		"unknown-1@alpha.cluster.test":                  "archived (invalid_recipient)",
		"big-1@alpha.cluster.test":                      "archived (message_too_large)",
		"small.big-1@alpha.cluster.test":                "completed",
		"spam-1@beta.cluster.test":                      "archived (spam_blocked)",
		"review.spam-1@beta.cluster.test":               "archived (spam_blocked)",
		"full-1@beta.cluster.test":                      "archived (mailbox_full)",
		"flaky-1@gamma.cluster.test":                    "completed",
		"tempfail-1@gamma.cluster.test":                 "archived (transient)",
		"ok-19@slow.cluster.test":                       "completed",
		fmt.Sprintf("ok-%d@rate.cluster.test", rateN-1): "completed",
	}
}
