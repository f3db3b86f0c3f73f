package queue

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback/report"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/queue/compose"
	"github.com/bounceloop/bounceloop/queue/internal/smtpsim"
	"github.com/bounceloop/bounceloop/queue/sender"
)

// demoShares are the recipient domains of the demo campaign with their
// share of the original analysis' delivered (200) answers in May 2018;
// "(other)" is spread over example.org, example.net and example.com.
var demoShares = []struct {
	domain string
	n      float64
}{
	{"gmail.com", 1619446}, {"(other)", 303968}, {"azet.sk", 162889}, {"yahoo.com", 57808}, {"hotmail.com", 57267},
	{"seznam.cz", 33210}, {"stonline.sk", 12894}, {"centrum.sk", 9169}, {"zoznam.sk", 7111}, {"icloud.com", 6844},
}

// DemoOptions configure RunDemo.
type DemoOptions struct {
	Messages int   // recipients of the campaign; default 20,000
	Seed     int64 // the world's and the campaign's seed
	// Speedup compresses time: every configured rate is multiplied by it
	// and retry delays are divided by it (default 120), so that both of the
	// demo's campaigns run within a minute.
	Speedup   float64
	Policy    policy.Config // the [policy] section (shipped config.toml)
	Queue     Config
	Web       WebConfig // listen "off" unless the UI should run
	Templates *compose.Store
	// Classifier diagnoses the answers.
	Classifier *bounces.Classifier
	// SingleProcess: the Redis is the embedded one (see StackConfig).
	SingleProcess bool
	// Second, when set, sends a second campaign to the same list once the
	// first is settled: the addresses the first suppressed get 605 (at
	// enqueue, or right before sending for those suppressed meanwhile).
	Second bool
	Log    zerolog.Logger
	// Progress, when set, is called about every 200 ms with the number of
	// messages in a final state.
	Progress func(final, total int)
}

// DemoSummary is the demo's result; its JSON is the "demo --json" output.
type DemoSummary struct {
	Messages    int                    `json:"messages"`
	Delivered   int                    `json:"delivered"`
	ByClass     map[string]int         `json:"by_class"`
	Domains     map[string]*DemoDomain `json:"domains"`
	DurationS   float64                `json:"duration_s"`
	Suppressed  int                    `json:"suppressed"`   // addresses on the suppression list
	ResentSmall int                    `json:"resent_small"` // too-large messages resent with the small variant
	Review      int                    `json:"review"`       // messages flagged for review
	Paused      []string               `json:"paused"`       // queues paused past their review threshold
	Rates       map[string]float64     `json:"rates"`        // domain -> final rate per second (the loop's)
	// Second is the second campaign to the same list (DemoOptions.Second).
	Second *DemoSecond `json:"second,omitempty"`
}

// DemoSecond is the result of the demo's second campaign to the same list.
type DemoSecond struct {
	Campaign  string `json:"campaign"`
	Messages  int    `json:"messages"`
	Enqueued  int    `json:"enqueued"`
	Delivered int    `json:"delivered"`
	// SuppressedAtEnqueue were refused by EnqueueBatch (counted as 605);
	// SuppressedAtSend were suppressed after they were enqueued and got 605
	// right before sending.
	SuppressedAtEnqueue int            `json:"suppressed_at_enqueue"`
	SuppressedAtSend    int            `json:"suppressed_at_send"`
	ByClass             map[string]int `json:"by_class"` // answers of the second campaign
	DurationS           float64        `json:"duration_s"`
}

// DemoDomain is one domain's part of a DemoSummary.
type DemoDomain struct {
	Attempts  int            `json:"attempts"`
	Delivered int            `json:"delivered"`
	ByClass   map[string]int `json:"by_class"`
	RatePerS  float64        `json:"rate_per_s"` // attempts per second of the run
}

// Demo is a running demo: the simulated world and the stack sending to it.
type Demo struct {
	World *smtpsim.World
	Stack *Stack
	rdb   redis.UniversalClient
}

// StartDemo starts the simulated world (scripted from the original
// analysis) and a stack sending to it over real SMTP through rdb.
func StartDemo(rdb redis.UniversalClient, connOpt asynq.RedisConnOpt, o DemoOptions) (*Demo, error) {
	if o.Speedup <= 0 {
		o.Speedup = 120
	}
	pol := speedUp(o.Policy.WithDefaults(), o.Speedup)
	wc := smtpsim.DefaultConfig(o.Seed)
	// Capacities grow with the speed-up, so that only Gmail defers.
	wc.Scale = o.Speedup
	// Gmail defers above a hidden capacity: 45% of our (sped-up) rate, so
	// that the demo shows the 4.2.1 deferrals of the analysis.
	if g, ok := wc.Domains["gmail.com"]; ok {
		g.RatePerSec = 0.45 * pol.Route("gmail.com").Settings.Rate.PerSecond() / wc.Scale
		g.Burst = 0 // the world's default: a second's worth
		wc.Domains["gmail.com"] = g
	}
	world, err := smtpsim.Start(wc)
	if err != nil {
		return nil, err
	}
	q := o.Queue
	if q.Concurrency == 0 {
		q.Concurrency = 5 * DefaultConcurrency // more messages in flight while time is compressed
	}
	speed := o.Speedup
	st, err := NewStack(StackConfig{
		Redis: rdb, ConnOpt: connOpt, KeyPrefix: demoPrefix, Queue: q, Web: o.Web, Policy: pol,
		SMTP:      sender.Config{Mode: sender.ModeMX, Routes: world.Routes(), InsecureSkipVerify: true, HeloName: "demo.bounceloop.invalid"},
		Templates: o.Templates, Classifier: o.Classifier, Log: o.Log, Resolver: refuseDNS{}, SingleProcess: o.SingleProcess,
		RetryDelay: func(n int, err error, t *asynq.Task) time.Duration {
			if !IsFailure(err) {
				return RetryDelay(n, err, t) // throttle delays are the limiter's, already sped up
			}
			return time.Duration(float64(RetryDelay(n, err, t)) / speed)
		},
	})
	if err != nil {
		world.Close()
		return nil, err
	}
	return &Demo{World: world, Stack: st, rdb: rdb}, nil
}

// demoPrefix is the prefix of the demo's own Redis keys.
const demoPrefix = "bounceloop-demo"

// demoReviewWindow is the review window of the demo's providers.
const demoReviewWindow = 50

// speedUp multiplies every rate of c by k and allows four times the
// connections, so that compressed time does not wait on SMTP round trips.
func speedUp(c policy.Config, k float64) policy.Config {
	mul := func(s policy.Settings) policy.Settings {
		if !s.Rate.IsZero() {
			s.Rate.N *= k
			s.Burst = 0 // recomputed from the new rate
		}
		if !s.MinRate.IsZero() {
			s.MinRate.N *= k
		}
		if !s.MaxRate.IsZero() {
			s.MaxRate.N *= k
		}
		if s.MaxConnections > 0 {
			s.MaxConnections *= 4
		}
		return s
	}
	out := policy.Config{Default: mul(c.Default), Providers: map[string]policy.Provider{}, Domains: map[string]policy.Settings{}}
	// A demo campaign is small: judge review shares on the last 50 attempts.
	out.Default.ReviewWindow = demoReviewWindow
	// The loop reacts at its fastest (time is compressed).
	out.Default.RecoveryInterval = policy.Duration(policy.MinRecoveryInterval)
	if out.Default.Rate.IsZero() {
		out.Default.Rate = policy.Rate{N: policy.DefaultRate.N * k, Per: policy.DefaultRate.Per}
	}
	if out.Default.MaxConnections == 0 {
		out.Default.MaxConnections = 4 * policy.DefaultMaxConnections
	}
	for name, p := range c.Providers {
		p.Settings = mul(p.Settings)
		if p.ReviewWindow > demoReviewWindow {
			p.ReviewWindow = demoReviewWindow
		}
		if p.RecoveryInterval != 0 {
			p.RecoveryInterval = policy.Duration(policy.MinRecoveryInterval)
		}
		out.Providers[name] = p
	}
	for d, s := range c.Domains {
		out.Domains[d] = mul(s)
	}
	return out
}

// refuseDNS answers no MX lookup: the demo's routes catch every domain.
type refuseDNS struct{}

func (refuseDNS) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	return nil, &net.DNSError{Err: "the demo does not use DNS", Name: name, IsNotFound: true}
}

// Campaign returns the demo campaign: n messages over the analysis'
// domains in its proportions.
func (d *Demo) Campaign(n int) []Message { return demoCampaign("demo-2018-05", n) }

// demoCampaign returns campaign name's n messages; the same n gives the
// same list of recipients.
func demoCampaign(name string, n int) []Message {
	var total float64
	for _, s := range demoShares {
		total += s.n
	}
	others := []string{"example.org", "example.net", "example.com"}
	msgs := make([]Message, 0, n)
	acc := 0.0
	for i, s := range demoShares {
		acc += s.n
		upto := int(math.Round(acc / total * float64(n)))
		if i == len(demoShares)-1 {
			upto = n
		}
		for len(msgs) < upto {
			dom := s.domain
			if dom == "(other)" {
				dom = others[len(msgs)%len(others)]
			}
			k := len(msgs)
			msgs = append(msgs, Message{
				Campaign: name, To: fmt.Sprintf("reader%06d@%s", k, dom), Template: "newsletter",
				Data: map[string]any{"first_name": fmt.Sprintf("Reader %d", k), "offer": "20% off in May"},
			})
		}
	}
	return msgs
}

// Run enqueues the campaign, starts the workers and waits until every
// message is in a final state (or ctx ends), then returns the summary. The
// stack keeps running; call Close.
func (d *Demo) Run(ctx context.Context, o DemoOptions) (DemoSummary, error) {
	n := o.Messages
	if n <= 0 {
		n = 20000
	}
	start := time.Now()
	if _, err := d.enqueue(ctx, d.Campaign(n)); err != nil {
		return DemoSummary{}, err
	}
	if err := d.Stack.Start(); err != nil {
		return DemoSummary{}, err
	}
	if err := d.settle(ctx, n, o.Progress); err != nil {
		return d.summary(n, time.Since(start)), err
	}
	sum := d.summary(n, time.Since(start))
	if !o.Second {
		return sum, nil
	}
	sec, err := d.second(ctx, n, o.Progress)
	sum.Second = &sec
	return sum, err
}

// enqueue enqueues msgs in batches and returns how many of each status.
func (d *Demo) enqueue(ctx context.Context, msgs []Message) (map[Status]int, error) {
	out := map[Status]int{}
	for i := 0; i < len(msgs); i += 1000 {
		res, err := d.Stack.Client.EnqueueBatch(ctx, msgs[i:min(i+1000, len(msgs))])
		if err != nil {
			return out, err
		}
		for _, r := range res {
			if r.Status == StatusInvalid {
				return out, fmt.Errorf("queue: demo message refused: %s", r.Reason)
			}
			out[r.Status]++
		}
	}
	return out, nil
}

// second sends the second campaign, to the first's n recipients, and
// waits until it is settled.
func (d *Demo) second(ctx context.Context, n int, progress func(final, total int)) (DemoSecond, error) {
	start := time.Now()
	_, before := d.Stack.Metrics.Snapshot()
	insp := asynq.NewInspectorFromRedisClient(d.rdb)
	_, final, _ := taskTotals(insp) // the first campaign is settled: its pending tasks wait in paused queues
	insp.Close()
	const name = "demo-2018-06"
	st, err := d.enqueue(ctx, demoCampaign(name, n))
	sec := DemoSecond{Campaign: name, Messages: n, Enqueued: st[StatusEnqueued], SuppressedAtEnqueue: st[StatusSuppressed], ByClass: map[string]int{}}
	if err == nil {
		var shown func(int, int)
		if progress != nil {
			shown = func(f, _ int) { progress(min(f-final+sec.SuppressedAtEnqueue, n), n) }
		}
		err = d.settle(ctx, final+sec.Enqueued, shown)
	}
	_, after := d.Stack.Metrics.Snapshot()
	for dom, classes := range after {
		for c, k := range classes {
			if diff := int(k - before[dom][c]); diff > 0 {
				sec.ByClass[c.String()] += diff
			}
		}
	}
	sec.Delivered = sec.ByClass[bounces.ClassDelivered.String()]
	sec.SuppressedAtSend = sec.ByClass[bounces.ClassSuppressed.String()]
	sec.DurationS = math.Round(time.Since(start).Seconds()*10) / 10
	return sec, err
}

// settle waits until no task is active, scheduled, retrying or pending
// in a queue that is not paused, and at least n tasks are in a final
// state (or ctx ends).
func (d *Demo) settle(ctx context.Context, n int, progress func(final, total int)) error {
	insp := asynq.NewInspectorFromRedisClient(d.rdb)
	defer insp.Close()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		busy, final, err := taskTotals(insp)
		if err != nil {
			return fmt.Errorf("queue: demo: %w", err)
		}
		if progress != nil {
			progress(min(final, n), n)
		}
		if busy == 0 && final >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// taskTotals counts the tasks of every queue that are still to run
// (active, scheduled, retrying, pending in a running queue) and those in a
// final state (completed, archived, or pending in a paused queue: they wait
// for an operator).
func taskTotals(insp *asynq.Inspector) (busy, final int, err error) {
	qs, err := insp.Queues()
	if err != nil {
		return 0, 0, err
	}
	for _, q := range qs {
		if info, err := insp.GetQueueInfo(q); err == nil {
			busy += info.Active + info.Scheduled + info.Retry
			final += info.Completed + info.Archived
			if info.Paused {
				final += info.Pending
			} else {
				busy += info.Pending
			}
		}
	}
	return busy, final, nil
}

func (d *Demo) summary(n int, took time.Duration) DemoSummary {
	attempts, byClass := d.Stack.Metrics.Snapshot()
	s := DemoSummary{Messages: n, ByClass: map[string]int{}, Domains: map[string]*DemoDomain{}, DurationS: math.Round(took.Seconds()*10) / 10,
		Paused: []string{}, Rates: map[string]float64{}}
	for dom, a := range attempts {
		dd := &DemoDomain{Attempts: int(a), ByClass: map[string]int{}}
		for c, k := range byClass[dom] {
			dd.ByClass[c.String()] = int(k)
			s.ByClass[c.String()] += int(k)
		}
		dd.Delivered = dd.ByClass[bounces.ClassDelivered.String()]
		s.Delivered += dd.Delivered
		if took > 0 {
			dd.RatePerS = math.Round(float64(a)/took.Seconds()*10) / 10
		}
		s.Domains[dom] = dd
	}
	d.loopSummary(&s)
	return s
}

// loopSummary adds what the feedback loop did to s.
func (d *Demo) loopSummary(s *DemoSummary) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n, err := d.Stack.Suppressions.Len(ctx); err == nil {
		s.Suppressed = int(n)
	}
	insp := asynq.NewInspectorFromRedisClient(d.rdb)
	defer insp.Close()
	qs, _ := insp.Queues()
	sort.Strings(qs)
	for _, q := range qs {
		info, err := insp.GetQueueInfo(q)
		if err != nil {
			continue
		}
		if info.Paused && q != policy.ReviewQueue { // review is always paused
			s.Paused = append(s.Paused, q)
		}
		if q == policy.ReviewQueue {
			s.Review = info.Archived + info.Pending + info.Completed
			continue
		}
		for page := 1; ; page++ {
			arch, err := insp.ListArchivedTasks(q, asynq.Page(page), asynq.PageSize(1000))
			if err != nil {
				break
			}
			for _, t := range arch {
				if strings.HasPrefix(t.LastErr, ReasonResent) {
					s.ResentSmall++
				}
			}
			if len(arch) < 1000 {
				break
			}
		}
	}
	states, err := d.Stack.Loop.RateStates(ctx)
	if err != nil {
		return
	}
	for dom := range s.Domains {
		rt := d.Stack.Policy.Route(dom)
		if st, ok := states[rt.Key]; ok {
			s.Rates[dom] = math.Round(st.Rate.PerSecond()*10) / 10
		} else {
			s.Rates[dom] = rt.Settings.Rate.PerSecond()
		}
	}
}

// Report returns the root-cause report of the demo's own counters: the
// month of now (UTC), as `bounceloop report --redis` would build it.
func (d *Demo) Report(ctx context.Context) (*report.Report, error) {
	if err := d.Stack.Recorder.Flush(ctx); err != nil { // the last second's answers
		return nil, fmt.Errorf("queue: demo report: %w", err)
	}
	now := time.Now().UTC()
	r := &Reports{Redis: d.rdb, Prefix: demoPrefix, Location: time.UTC, Classifier: d.Stack.Handler.Classifier}
	return r.Analyze(ctx, report.Month{Year: now.Year(), Month: now.Month()})
}

// DomainsByAttempts returns the summary's domains by attempts, most first.
func (s DemoSummary) DomainsByAttempts() []string {
	out := make([]string, 0, len(s.Domains))
	for d := range s.Domains {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := s.Domains[out[i]], s.Domains[out[j]]
		if a.Attempts != b.Attempts {
			return a.Attempts > b.Attempts
		}
		return out[i] < out[j]
	})
	return out
}

// Close stops the stack and the world.
func (d *Demo) Close() error {
	d.Stack.Shutdown()
	return errors.Join(d.World.Close())
}
