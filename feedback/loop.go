package feedback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bounceloop/bounceloop/policy"
)

// The loop's Redis layout, every key under Keys.Prefix:
//
//	<prefix>:rates                       hash: rate key (Route.Key) -> rateRecord (JSON)
//	<prefix>:mailbox_full:<addr>         string: count of mailbox_full answers, expires 30 days after the last
//	<prefix>:too_large:<domain>          string "1": the domain refused the full size, expires after 30 days
//	<prefix>:outcomes:{<queue>}          list of "0"/"1", newest first: the queue's review window
//	<prefix>:outcomes:{<queue>}:flagged  string: the number of "1" in the list
//	<prefix>:pauses                      hash: queue -> Pause (JSON)
//	<prefix>:holds                       hash: "domain:<d>" or "rcpt:<addr>" -> Hold (JSON): suspensions by rule
//
// Every script touches one key (rates) or two keys sharing a hash tag (the
// outcomes pair), so the layout works on Redis Cluster.

// Rates returns the key of the hash of adaptive rates: one field per rate
// key (policy.Route.Key), holding the controller's state as JSON.
func (k Keys) Rates() string { return k.prefix() + ":rates" }

// MailboxFull returns the key counting mailbox_full answers for addr
// (lower-cased).
func (k Keys) MailboxFull(addr string) string {
	return k.prefix() + ":mailbox_full:" + normalizeAddress(addr)
}

// TooLarge returns the key marking domain as refusing the full message
// size.
func (k Keys) TooLarge(domain string) string { return k.prefix() + ":too_large:" + domain }

// Outcomes returns the key of queue's review window: a list of "1"
// (flagged) and "0", newest first. The queue name is the hash tag, so it
// and OutcomesFlagged live in one Cluster slot.
func (k Keys) Outcomes(queue string) string { return k.prefix() + ":outcomes:{" + queue + "}" }

// OutcomesFlagged returns the key counting the "1" entries of
// Outcomes(queue).
func (k Keys) OutcomesFlagged(queue string) string { return k.Outcomes(queue) + ":flagged" }

// Pauses returns the key of the hash of paused queues: queue -> Pause
// (JSON).
func (k Keys) Pauses() string { return k.prefix() + ":pauses" }

// Retention of the loop's per-address and per-domain memory, and of an
// idle review window.
const (
	MailboxFullRetention = 30 * 24 * time.Hour
	TooLargeRetention    = 30 * 24 * time.Hour
	OutcomesRetention    = 30 * 24 * time.Hour
)

// Reasons of the last change of an adaptive rate (RateState.LastReason).
const (
	ReasonConfigured = "configured" // started at (or reset to) the configured rate
	ReasonThrottled  = "throttled"  // cut after a rate_limited answer
	ReasonRecovered  = "recovered"  // raised after an interval of successes
)

// cacheTTL is how long a process trusts what it read from Redis; with the
// time a refresh takes, every process sees a decision within a second.
const cacheTTL = 500 * time.Millisecond

// maxLocalKeys is the size past which idle local entries are swept.
const maxLocalKeys = 4096

// RateState is the adaptive state of one rate key, for metrics and
// operators' views.
type RateState struct {
	// Rate is the current effective rate, per second. It is clamped to
	// the key's [MinRate, MaxRate] when read through EffectiveRate.
	Rate policy.Rate
	// LastChange is when the rate last changed (or the loop first saw the
	// key).
	LastChange time.Time
	// LastReason is why: ReasonConfigured, ReasonThrottled or
	// ReasonRecovered.
	LastReason string
}

// Pause is why and since when a queue is paused.
type Pause struct {
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	// Until is when a suspension ends and the queue is resumed by the
	// server; zero for a pause that waits for an operator.
	Until time.Time `json:"until,omitzero"`
}

// rateRecord is the JSON of a field of Keys.Rates, written by rateScript.
// Rates are per second, times UNIX milliseconds. Records written before
// limit, used and since existed read them as 0, 0 and changed.
type rateRecord struct {
	Rate      float64 `json:"rate"`      // effective rate
	Base      float64 `json:"base"`      // the configured rate it started from
	Changed   int64   `json:"changed"`   // last change
	Reason    string  `json:"reason"`    // why
	Cut       int64   `json:"cut"`       // last cut
	Throttled int64   `json:"throttled"` // last rate_limited answer, cut or not
	Limit     float64 `json:"limit"`     // the rate just before the last cut (0: no cut yet)
	Used      float64 `json:"used"`      // deliveries reported since Since
	Since     int64   `json:"since"`     // start of the window counting Used
}

// rateScript is the rate controller, atomic in Redis. KEYS[1] is the rates
// hash; ARGV: op ("cut" or "raise"), field (the rate key), now (ms),
// base, lo, hi (per second), cut factor, step (a share), interval (ms),
// and for a raise the deliveries counted since the caller's last call.
// It returns {rate as a string, 1 if it changed else 0}.
//
// A record whose base differs from the configured rate (a config change)
// starts over at the configured rate. A cut applies when the last cut is at
// least an interval old; it remembers the rate it cut from (limit); every
// rate_limited answer is remembered. A raise call adds its deliveries to
// the count of the window starting at since (used; a call that makes the
// record starts the window, its deliveries uncounted). When the window,
// the last change and the last rate_limited answer are at least an
// interval old, the window is judged and restarted: the rate rises by
// step × max(rate, limit) if used reached half of what the rate allows in
// one interval. A new record never rises on its first call.
var rateScript = redis.NewScript(`
local h, op, field = KEYS[1], ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
local base, lo, hi = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local cut, step, iv = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local n = tonumber(ARGV[10]) or 0
local s
local raw = redis.call('HGET', h, field)
if raw then
  local ok, v = pcall(cjson.decode, raw)
  if ok and type(v) == 'table' and type(v.rate) == 'number' and type(v.base) == 'number' then s = v end
end
local fresh = false
if (not s) or math.abs(s.base - base) > 1e-9 * base then
  s = {rate = base, base = base, changed = now, reason = 'configured', cut = 0, throttled = 0}
  fresh = true
end
local limit = tonumber(s.limit) or 0
local used = tonumber(s.used) or 0
local since = tonumber(s.since) or tonumber(s.changed) or now
local r = s.rate
if r < lo then r = lo end
if r > hi then r = hi end
local dirty = fresh or r ~= s.rate
local changed = 0
if op == 'cut' then
  s.throttled = now
  dirty = true
  if now - (s.cut or 0) >= iv then
    limit = r
    r = r * cut
    if r < lo then r = lo end
    s.cut, s.changed, s.reason = now, now, 'throttled'
    used, since = 0, now
    changed = 1
  end
elseif op == 'raise' then
  if n > 0 and not fresh then
    used = used + n
    dirty = true
  end
  if (not fresh) and now - since >= iv and now - (s.changed or 0) >= iv and now - (s.throttled or 0) >= iv then
    if r < hi and used >= 0.5 * r * iv / 1000 then
      r = r + step * math.max(r, limit)
      if r > hi then r = hi end
      s.changed, s.reason = now, 'recovered'
      changed = 1
    end
    used, since, dirty = 0, now, true
  end
end
if dirty then
  redis.call('HSET', h, field, string.format(
    '{"rate":%.17g,"base":%.17g,"changed":%.17g,"reason":"%s","cut":%.17g,"throttled":%.17g,"limit":%.17g,"used":%.17g,"since":%.17g}',
    r, s.base, s.changed or now, s.reason or 'configured', s.cut or 0, s.throttled or 0, limit, used, since))
end
return {string.format('%.17g', r), changed}
`)

// outcomeScript adds outcomes to a review window. KEYS: the list and its
// flagged counter (one hash tag); ARGV: the outcomes in order, one
// character each ("1" flagged, "0" not), the window size, the retention
// (ms). It returns {flagged, n}.
var outcomeScript = redis.NewScript(`
local ring, cnt = KEYS[1], KEYS[2]
local vs, w, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local f = redis.call('GET', cnt)
if f then
  f = tonumber(f)
else
  f = 0
  for _, x in ipairs(redis.call('LRANGE', ring, 0, -1)) do
    if x == '1' then f = f + 1 end
  end
end
for i = 1, #vs do
  local v = string.sub(vs, i, i)
  redis.call('LPUSH', ring, v)
  if v == '1' then f = f + 1 end
end
local n = redis.call('LLEN', ring)
while n > w do
  if redis.call('RPOP', ring) == '1' then f = f - 1 end
  n = n - 1
end
if f < 0 then f = 0 end
redis.call('SET', cnt, f, 'PX', ttl)
redis.call('PEXPIRE', ring, ttl)
return {f, n}
`)

// Loop keeps the feedback loop's shared state in Redis: the adaptive rate
// of every rate key, mailbox_full counts, the domains that refuse large
// messages, the review windows of the queues and the reasons of pauses.
// Keys are built by Keys, under its prefix. Times come from the injected
// clock, so processes should have their clocks in sync (skew only delays
// a cut or a raise by the skew).
//
// The rate controller is AIMD. A key's effective rate starts at its
// configured Settings.Rate; a rate_limited answer (Throttled) multiplies it
// by ThrottleCut, at most once per RecoveryInterval, never below MinRate,
// so a burst of deferrals from one overload cuts once. After a
// RecoveryInterval with no change and no rate_limited answer, in which the
// successes (Delivered, summed over processes) reached half of what the
// rate allows in an interval, it rises by RecoveryStep × max(rate, limit),
// never above MaxRate, where limit is the rate of the last cut: the rate
// at which the receiver last deferred. Below that rate the step is
// constant (additive increase, back to it in (1 − ThrottleCut) /
// RecoveryStep intervals); above it, and before any cut, the step grows
// with the rate (probing, by RecoveryStep per interval). The step is thus
// set by the receiver's answers, not by the configured rate, so one
// RecoveryStep fits a rate configured too high or too low, and a key
// sending well below its rate (idle, or short of connections) does not
// drift up untested. Each decision is one Lua script on one hash, atomic
// across processes. A change of the configured Rate restarts the key at
// the new rate.
//
// Cost on the send path: EffectiveRate reads a local cache (a Redis read at
// most every 500 ms per key and process); Delivered counts in memory and
// calls Redis at most once per key and RecoveryInterval; TooLarge is
// cached like EffectiveRate. Throttled, MailboxFull, Outcome and
// RememberTooLarge are one round trip each.
//
// Safe for concurrent use; every decision made by one process is seen by
// every other within a second.
type Loop struct {
	rdb  redis.UniversalClient
	keys Keys
	now  func() time.Time

	mu        sync.Mutex
	rates     map[string]*rateEntry  // rate key -> cached state
	delivered map[string]*deliveries // rate key -> successes not yet sent
	tooLarge  map[string]flagEntry   // domain -> cached TooLarge
	lastSweep time.Time
	holds     holdCache // a copy of Keys.Holds (holds.go)
}

// rateEntry is a cached record of Keys.Rates (absent: no record).
type rateEntry struct {
	rate, base float64
	present    bool
	at         time.Time // when read
	refreshing bool      // a goroutine is reading it again
}

// deliveries are the successes of a key counted since the last call to
// Redis.
type deliveries struct {
	n    int64
	last time.Time // last call to Redis (or attempt)
}

type flagEntry struct {
	v  bool
	at time.Time
}

// NewLoop returns a Loop keeping its state in rdb under keys. now is the
// clock; nil means time.Now.
func NewLoop(rdb redis.UniversalClient, keys Keys, now func() time.Time) *Loop {
	if now == nil {
		now = time.Now
	}
	return &Loop{
		rdb:       rdb,
		keys:      keys,
		now:       now,
		rates:     map[string]*rateEntry{},
		delivered: map[string]*deliveries{},
		tooLarge:  map[string]flagEntry{},
	}
}

// EffectiveRate returns the current adaptive rate of key (a Route.Key)
// with settings s: s.Rate until the loop changes it, always within
// [s.MinRate, s.MaxRate]. It is read from a local cache refreshed from
// Redis at most every 500 ms; while one goroutine refreshes an entry, the
// others get the cached value. The returned Rate has s.Rate's period.
func (l *Loop) EffectiveRate(ctx context.Context, key string, s policy.Settings) (policy.Rate, error) {
	now := l.now()
	l.mu.Lock()
	e := l.rates[key]
	if e != nil && (now.Sub(e.at) < cacheTTL || e.refreshing) {
		r := effective(e, s)
		l.mu.Unlock()
		return r, nil
	}
	if e == nil {
		e = &rateEntry{}
		l.rates[key] = e
		l.sweepLocked(now)
	}
	e.refreshing = true
	l.mu.Unlock()

	raw, err := l.rdb.HGet(ctx, l.keys.Rates(), key).Result()
	var rec rateRecord
	present := false
	switch {
	case errors.Is(err, redis.Nil):
		err = nil
	case err == nil:
		if jerr := json.Unmarshal([]byte(raw), &rec); jerr == nil {
			present = true
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	e.refreshing = false
	if err != nil {
		e.at = time.Time{} // read again next time
		return policy.Rate{}, fmt.Errorf("feedback: effective rate of %s: %w", key, err)
	}
	e.rate, e.base, e.present, e.at = rec.Rate, rec.Base, present, now
	return effective(e, s), nil
}

// effective is the rate of a cached entry under settings s.
func effective(e *rateEntry, s policy.Settings) policy.Rate {
	if !e.present || !sameRate(e.base, s.Rate.PerSecond()) {
		return clampRate(s.Rate.PerSecond(), s)
	}
	return clampRate(e.rate, s)
}

// sameRate reports whether two per-second rates are equal but for
// rounding.
func sameRate(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Abs(b) }

// clampRate returns ps (per second) as a Rate in s.Rate's period, within
// [s.MinRate, s.MaxRate]; the bounds and the configured rate come back
// exactly as configured.
func clampRate(ps float64, s policy.Settings) policy.Rate {
	lo, hi := s.MinRate.PerSecond(), s.MaxRate.PerSecond()
	switch {
	case !s.MinRate.IsZero() && (ps <= lo || sameRate(ps, lo)):
		return s.MinRate
	case !s.MaxRate.IsZero() && (ps >= hi || sameRate(ps, hi)):
		return s.MaxRate
	case sameRate(ps, s.Rate.PerSecond()):
		return s.Rate
	}
	per := s.Rate.Per
	if per <= 0 {
		per = time.Second
	}
	r := policy.Rate{N: ps * per.Seconds(), Per: per}
	if !s.MaxRate.IsZero() && r.PerSecond() > hi {
		return s.MaxRate
	}
	if !s.MinRate.IsZero() && r.PerSecond() < lo {
		return s.MinRate
	}
	return r
}

// Throttled records a rate_limited answer for key: the effective rate is
// cut × s.ThrottleCut (not below s.MinRate), at most once per
// s.RecoveryInterval, so the concurrent deferrals of one burst cut once,
// and no raise follows for an interval. It returns the new effective rate
// (unchanged when the cut was already made in this interval). One Lua
// script, atomic across processes; this process's cache is updated at once.
func (l *Loop) Throttled(ctx context.Context, key string, s policy.Settings) (policy.Rate, error) {
	r, err := l.runRate(ctx, "cut", key, s, 0)
	if err != nil {
		return policy.Rate{}, fmt.Errorf("feedback: throttle %s: %w", key, err)
	}
	return r, nil
}

// Delivered records a successful delivery for key. Successes are counted
// in memory; at most once per key and s.RecoveryInterval (and on the first
// success of a key) the process runs the controller in Redis with its
// count. The controller raises the effective rate by s.RecoveryStep ×
// max(rate, rate of the last cut), not above s.MaxRate, when a
// RecoveryInterval has passed since the last change and since the last
// rate_limited answer, and the successes reported by every process since
// the controller last judged the key reached half of what the rate allows
// in one interval (so a key that sends below half its rate is not
// raised). A failed call keeps the count for the next one and returns the
// error.
func (l *Loop) Delivered(ctx context.Context, key string, s policy.Settings) error {
	return l.deliveredN(ctx, key, s, 1)
}

// deliveredN is Delivered for n successes at once.
func (l *Loop) deliveredN(ctx context.Context, key string, s policy.Settings, n int64) error {
	now := l.now()
	l.mu.Lock()
	d := l.delivered[key]
	if d == nil {
		d = &deliveries{}
		l.delivered[key] = d
		l.sweepLocked(now)
	}
	d.n += n
	if !d.last.IsZero() && now.Sub(d.last) < s.RecoveryInterval.D() {
		l.mu.Unlock()
		return nil
	}
	count := d.n
	d.n, d.last = 0, now
	l.mu.Unlock()

	if _, err := l.runRate(ctx, "raise", key, s, count); err != nil {
		l.mu.Lock()
		d.n += count
		l.mu.Unlock()
		return fmt.Errorf("feedback: recover %s: %w", key, err)
	}
	return nil
}

// runRate runs rateScript and caches its answer; n is the deliveries a
// raise reports.
func (l *Loop) runRate(ctx context.Context, op, key string, s policy.Settings, n int64) (policy.Rate, error) {
	now := l.now()
	base := s.Rate.PerSecond()
	lo, hi := s.MinRate.PerSecond(), s.MaxRate.PerSecond()
	if s.MinRate.IsZero() {
		lo = 0
	}
	if s.MaxRate.IsZero() {
		hi = math.MaxFloat64
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	res, err := rateScript.Run(ctx, l.rdb, []string{l.keys.Rates()},
		op, key, now.UnixMilli(), f(base), f(lo), f(hi), f(s.ThrottleCut), f(s.RecoveryStep),
		s.RecoveryInterval.D().Milliseconds(), n).Slice()
	if err != nil {
		return policy.Rate{}, err
	}
	if len(res) != 2 {
		return policy.Rate{}, fmt.Errorf("rate script returned %v", res)
	}
	str, _ := res[0].(string)
	ps, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return policy.Rate{}, fmt.Errorf("rate script returned rate %q", str)
	}
	l.mu.Lock()
	e := l.rates[key]
	if e == nil {
		e = &rateEntry{}
		l.rates[key] = e
	}
	e.rate, e.base, e.present, e.at = ps, base, true, now
	l.mu.Unlock()
	return clampRate(ps, s), nil
}

// RateStates returns the state of every key the loop has seen, for metrics
// and operators' views: key -> RateState. One round trip; not cached.
func (l *Loop) RateStates(ctx context.Context) (map[string]RateState, error) {
	all, err := l.rdb.HGetAll(ctx, l.keys.Rates()).Result()
	if err != nil {
		return nil, fmt.Errorf("feedback: rate states: %w", err)
	}
	out := make(map[string]RateState, len(all))
	for k, raw := range all {
		var rec rateRecord
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			continue // not ours to fail on; the controller rewrites it
		}
		out[k] = RateState{
			Rate:       policy.Rate{N: rec.Rate, Per: time.Second},
			LastChange: time.UnixMilli(rec.Changed).UTC(),
			LastReason: rec.Reason,
		}
	}
	return out, nil
}

// MailboxFull counts a mailbox_full answer for addr (lower-cased) and
// returns the count of such answers within MailboxFullRetention of each
// other (the count expires 30 days after the last). One round trip.
func (l *Loop) MailboxFull(ctx context.Context, addr string) (int64, error) {
	key := l.keys.MailboxFull(addr)
	var incr *redis.IntCmd
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.Incr(ctx, key)
		p.Expire(ctx, key, MailboxFullRetention)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("feedback: count mailbox_full: %w", err)
	}
	return incr.Val(), nil
}

// RememberTooLarge remembers for TooLargeRetention that domain refuses the
// full message size. This process's cache is updated at once.
func (l *Loop) RememberTooLarge(ctx context.Context, domain string) error {
	if err := l.rdb.Set(ctx, l.keys.TooLarge(domain), "1", TooLargeRetention).Err(); err != nil {
		return fmt.Errorf("feedback: remember %s too large: %w", domain, err)
	}
	now := l.now()
	l.mu.Lock()
	l.tooLarge[domain] = flagEntry{v: true, at: now}
	l.sweepLocked(now)
	l.mu.Unlock()
	return nil
}

// TooLarge reports whether domain is known to refuse the full message
// size, so that the small variant is sent from the start. Cached for
// 500 ms.
func (l *Loop) TooLarge(ctx context.Context, domain string) (bool, error) {
	now := l.now()
	l.mu.Lock()
	e, ok := l.tooLarge[domain]
	l.mu.Unlock()
	if ok && now.Sub(e.at) < cacheTTL {
		return e.v, nil
	}
	n, err := l.rdb.Exists(ctx, l.keys.TooLarge(domain)).Result()
	if err != nil {
		return false, fmt.Errorf("feedback: is %s too large: %w", domain, err)
	}
	l.mu.Lock()
	l.tooLarge[domain] = flagEntry{v: n > 0, at: now}
	l.sweepLocked(now)
	l.mu.Unlock()
	return n > 0, nil
}

// Outcome adds one attempt's outcome to queue's review window, which
// keeps the last window attempts (flagged: spam_blocked, policy_blocked or
// auth_failure), and returns the flagged share of the window and the
// number of attempts in it (< window until the window has filled). A
// smaller window than before drops the oldest attempts. One round trip (a
// Lua script on two keys sharing a hash tag); an idle window expires after
// OutcomesRetention.
func (l *Loop) Outcome(ctx context.Context, queue string, flagged bool, window int) (share float64, n int, err error) {
	v := "0"
	if flagged {
		v = "1"
	}
	return l.Outcomes(ctx, queue, v, window)
}

// Outcomes adds several attempts' outcomes at once, in order: one
// character each, '1' flagged and '0' not (a sender batches its unflagged
// outcomes this way). The result is Outcome's.
func (l *Loop) Outcomes(ctx context.Context, queue, outcomes string, window int) (share float64, n int, err error) {
	if window < 1 {
		return 0, 0, fmt.Errorf("feedback: outcome of %s: window %d must be >= 1", queue, window)
	}
	if outcomes == "" || strings.Trim(outcomes, "01") != "" {
		return 0, 0, fmt.Errorf("feedback: outcome of %s: outcomes %q must be one or more of '0' and '1'", queue, outcomes)
	}
	res, err := outcomeScript.Run(ctx, l.rdb, []string{l.keys.Outcomes(queue), l.keys.OutcomesFlagged(queue)},
		outcomes, window, OutcomesRetention.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("feedback: outcome of %s: %w", queue, err)
	}
	if len(res) != 2 || res[1] < 1 {
		return 0, 0, fmt.Errorf("feedback: outcome of %s: script returned %v", queue, res)
	}
	return float64(res[0]) / float64(res[1]), int(res[1]), nil
}

// NotePause records that queue was paused now, and why, for operators
// (the handler pauses the queue through asynq). A later note replaces it.
func (l *Loop) NotePause(ctx context.Context, queue, reason string) error {
	b, err := json.Marshal(Pause{Reason: reason, Since: l.now().UTC()})
	if err != nil {
		return fmt.Errorf("feedback: note pause of %s: %w", queue, err)
	}
	if err := l.rdb.HSet(ctx, l.keys.Pauses(), queue, b).Err(); err != nil {
		return fmt.Errorf("feedback: note pause of %s: %w", queue, err)
	}
	return nil
}

// NoteSuspension records that queue was paused until until, and why; the
// server resumes it then (see Pause.Until).
func (l *Loop) NoteSuspension(ctx context.Context, queue, reason string, until time.Time) error {
	b, err := json.Marshal(Pause{Reason: reason, Since: l.now().UTC(), Until: until.UTC()})
	if err != nil {
		return fmt.Errorf("feedback: note suspension of %s: %w", queue, err)
	}
	if err := l.rdb.HSet(ctx, l.keys.Pauses(), queue, b).Err(); err != nil {
		return fmt.Errorf("feedback: note suspension of %s: %w", queue, err)
	}
	return nil
}

// ClearPause forgets the pause of queue (when it is resumed) and reports
// whether there was one.
func (l *Loop) ClearPause(ctx context.Context, queue string) (bool, error) {
	n, err := l.rdb.HDel(ctx, l.keys.Pauses(), queue).Result()
	if err != nil {
		return false, fmt.Errorf("feedback: clear pause of %s: %w", queue, err)
	}
	return n > 0, nil
}

// Pauses returns the noted pauses: queue -> Pause.
func (l *Loop) Pauses(ctx context.Context) (map[string]Pause, error) {
	all, err := l.rdb.HGetAll(ctx, l.keys.Pauses()).Result()
	if err != nil {
		return nil, fmt.Errorf("feedback: pauses: %w", err)
	}
	out := make(map[string]Pause, len(all))
	for q, raw := range all {
		var p Pause
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			p = Pause{Reason: raw}
		}
		out[q] = p
	}
	return out, nil
}

// sweepLocked drops local entries idle for a minute once the maps hold
// more than maxLocalKeys entries, at most every 10 seconds. l.mu is held.
func (l *Loop) sweepLocked(now time.Time) {
	if len(l.rates)+len(l.delivered)+len(l.tooLarge) <= maxLocalKeys || now.Sub(l.lastSweep) < 10*time.Second {
		return
	}
	l.lastSweep = now
	for k, e := range l.rates {
		if !e.refreshing && now.Sub(e.at) > time.Minute {
			delete(l.rates, k)
		}
	}
	for k, d := range l.delivered {
		if now.Sub(d.last) > time.Minute {
			delete(l.delivered, k)
		}
	}
	for k, e := range l.tooLarge {
		if now.Sub(e.at) > time.Minute {
			delete(l.tooLarge, k)
		}
	}
}
