package policy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// ErrThrottled is matched by every *ThrottledError (errors.Is).
var ErrThrottled = errors.New("policy: throttled")

// ThrottledError says that Key has no slot within the wait allowed and
// when the next one is expected. The caller gives the worker back (asynq:
// retry after RetryIn without spending the retry budget).
type ThrottledError struct {
	Key     string        // rate-limit key, as given to Wait
	RetryIn time.Duration // time until the next slot, as known when Wait gave up
}

// Error implements error.
func (e *ThrottledError) Error() string {
	return fmt.Sprintf("policy: %s throttled: next slot in %v", e.Key, e.RetryIn.Round(time.Millisecond))
}

// Is reports whether target is ErrThrottled.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// Limiter hands out sending slots per key (a Route.Key), shared by every
// process through Redis and smoothed in each process; see the package
// documentation for the algorithm. Limits are passed to each call, so a
// changed rate applies at the next call. The zero Limiter is not usable;
// call NewLimiter. A Limiter is safe for concurrent use.
type Limiter struct {
	gcra   *redis_rate.Limiter
	rdb    redis.UniversalClient // for leaseScript
	prefix string

	mu    sync.Mutex
	local map[string]*localLimiter
}

// localLimiter is the in-process limiter of one key, and the slots this
// process leased from Redis for it and has not handed out yet.
type localLimiter struct {
	lim  *rate.Limiter
	used atomic.Int64 // UnixNano of the last Wait, for eviction

	mu       sync.Mutex
	leased   int              // slots granted by Redis, not yet handed out
	lapse    time.Time        // when they lapse unused
	leaseLim redis_rate.Limit // the limit they were granted under
	fetching bool             // a lease request is in flight
}

// Leases: at a high rate, one GCRA call takes up to leaseSpan's worth of
// slots (rate × 20 ms, at most the burst and maxLease) and this process
// hands them out to its next Waits, so that Redis sees one call per lease
// rather than one per message. Below 100/s a lease is one slot, so a low
// rate is paced exactly as without leases. Slots not handed out within
// leaseTTL, or when the key's rate or burst changes, lapse unused: a lease
// can only lower the rate across processes, never raise it, and shifts at
// most one lease (20 ms of the rate) per process in time.
const (
	leaseSpan = 20 * time.Millisecond
	maxLease  = 64
	leaseTTL  = 250 * time.Millisecond
)

// leaseSize returns how many slots one GCRA call takes at r with burst.
func leaseSize(r Rate, burst int) int {
	k := int(r.PerSecond() * leaseSpan.Seconds())
	return max(1, min(k, burst, maxLease))
}

// Local limiters idle for localIdle are dropped once more than maxLocal
// keys are known, so that a campaign to many small domains does not grow
// the map without bound. A dropped key starts again with a full local
// burst; Redis still holds the shared state.
const (
	maxLocal  = 4096
	localIdle = time.Minute
)

// NewLimiter returns a Limiter over rdb (any client of RedisConfig: single
// server, Sentinel or Cluster). Its Redis keys are "<prefix>:rate:<key>";
// prefix is RedisConfig.KeyPrefix(), "" meaning "bounceloop". The caller
// keeps rdb and closes it.
func NewLimiter(rdb redis.UniversalClient, prefix string) *Limiter {
	if prefix == "" {
		prefix = "bounceloop"
	}
	return &Limiter{
		gcra:   redis_rate.NewLimiter(unprefixed{rdb}),
		rdb:    rdb,
		prefix: prefix,
		local:  make(map[string]*localLimiter),
	}
}

// NewLocalLimiter returns a Limiter that keeps the pace in this process
// only, without Redis: for the embedded single-process mode, where no other
// process shares the rates.
func NewLocalLimiter() *Limiter {
	return &Limiter{local: make(map[string]*localLimiter)}
}

// rateKey is the Redis key of a rate-limit key: "<prefix>:rate:<key>".
func rateKey(prefix, key string) string { return prefix + ":rate:" + key }

// gcraPrefix is the prefix redis_rate puts in front of every key; unprefixed
// takes it off again so that our keys stay under our own prefix.
const gcraPrefix = "rate:"

// unprefixed is the Redis client given to redis_rate: it strips the
// "rate:" redis_rate adds, so that the GCRA state of key lives at
// rateKey(prefix, key) as given.
type unprefixed struct{ redis.UniversalClient }

func stripKeys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = strings.TrimPrefix(k, gcraPrefix)
	}
	return out
}

func (u unprefixed) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return u.UniversalClient.Eval(ctx, script, stripKeys(keys), args...)
}

func (u unprefixed) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return u.UniversalClient.EvalSha(ctx, sha1, stripKeys(keys), args...)
}

func (u unprefixed) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return u.UniversalClient.EvalRO(ctx, script, stripKeys(keys), args...)
}

func (u unprefixed) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return u.UniversalClient.EvalShaRO(ctx, sha1, stripKeys(keys), args...)
}

func (u unprefixed) Del(ctx context.Context, keys ...string) *redis.IntCmd {
	return u.UniversalClient.Del(ctx, stripKeys(keys)...)
}

// gcraLimit expresses r and burst as a redis_rate.Limit. redis_rate wants
// an integer count per period; only Period/Rate (the interval) and Burst
// matter to GCRA, so a fractional rate becomes one message per interval
// (0.5/s = 1 per 2s).
func gcraLimit(r Rate, burst int) redis_rate.Limit {
	if r.N == math.Trunc(r.N) && r.N <= math.MaxInt32 {
		return redis_rate.Limit{Rate: int(r.N), Burst: burst, Period: r.Per}
	}
	return redis_rate.Limit{Rate: 1, Burst: burst, Period: r.Interval()}
}

// Wait waits until key may send one message at rate r with burst, for at
// most maxWait (and never past ctx's deadline). It returns nil when the
// slot is taken; a *ThrottledError without waiting when the next slot is
// further away (so the worker is freed); ctx.Err() when ctx ends first; a
// wrapped Redis error when Redis fails.
//
// The zero Rate is unlimited: Wait returns nil at once, without Redis.
// burst < 1 means r.DefaultBurst(). The rate and burst apply from this
// call on, for every process that uses them: the GCRA state in Redis
// follows whatever limit each call passes.
//
// Safe for concurrent use; it never sleeps without watching ctx.
func (l *Limiter) Wait(ctx context.Context, key string, r Rate, burst int, maxWait time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.IsZero() {
		return nil
	}
	if err := r.check(); err != nil {
		return fmt.Errorf("policy: rate limit %s: rate %s: %w", key, r, err)
	}
	if burst < 1 {
		burst = r.DefaultBurst()
	}
	start := time.Now()
	deadline := start.Add(max(maxWait, 0))
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		if !d.After(start) {
			return context.DeadlineExceeded // ctx's timer has not fired yet
		}
		deadline = d
	}

	// 1. The process's own limiter: spreads this process's attempts so
	// that a burst of workers does not hammer Redis.
	entry := l.localFor(key, r, burst, start)
	res := entry.lim.ReserveN(start, 1)
	if !res.OK() {
		return &ThrottledError{Key: key, RetryIn: r.Interval()}
	}
	delay := res.DelayFrom(start)
	if start.Add(delay).After(deadline) {
		res.CancelAt(start)
		return &ThrottledError{Key: key, RetryIn: delay}
	}
	if err := sleep(ctx, delay); err != nil {
		res.Cancel()
		return err
	}
	actAt := start.Add(delay)

	// 2. The shared GCRA in Redis: the authority across processes.
	if l.gcra == nil {
		return nil // a local limiter (NewLocalLimiter)
	}
	limit := gcraLimit(r, burst)
	rk := rateKey(l.prefix, key)
	k := leaseSize(r, burst)
	for {
		got, err := l.allow(ctx, entry, rk, limit, k)
		if err != nil {
			res.CancelAt(actAt)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("policy: rate limit %s: %w", key, err)
		}
		if got.Allowed > 0 {
			return nil
		}
		retry := got.RetryAfter
		if retry < 0 {
			retry = 0
		}
		if time.Now().Add(retry).After(deadline) {
			// Give the local token back: this process sent nothing.
			res.CancelAt(actAt)
			return &ThrottledError{Key: key, RetryIn: retry}
		}
		if err := sleep(ctx, retry); err != nil {
			res.CancelAt(actAt)
			return err
		}
	}
}

// allow takes one slot of rk from Redis, or from this process's lease when
// k > 1: a leased slot returns an allowed Result without Redis; else it
// asks Redis for up to k slots and keeps the rest. While one Wait of the
// key asks for a lease, the others ask for one slot each.
func (l *Limiter) allow(ctx context.Context, e *localLimiter, rk string, limit redis_rate.Limit, k int) (*redis_rate.Result, error) {
	if k <= 1 {
		return l.gcra.Allow(ctx, rk, limit)
	}
	now := time.Now()
	e.mu.Lock()
	if e.leased > 0 && e.leaseLim == limit && now.Before(e.lapse) {
		e.leased--
		e.mu.Unlock()
		return &redis_rate.Result{Limit: limit, Allowed: 1}, nil
	}
	if e.fetching {
		// Another Wait is asking for a lease: ask for one slot, as
		// without leases, rather than queue behind it or lease twice.
		e.mu.Unlock()
		return l.gcra.Allow(ctx, rk, limit)
	}
	e.fetching = true
	e.mu.Unlock()

	got, err := l.lease(ctx, rk, limit, k)
	e.mu.Lock()
	e.fetching = false
	if err == nil && got.Allowed > 0 {
		e.leased, e.lapse, e.leaseLim = got.Allowed-1, time.Now().Add(leaseTTL), limit
	}
	e.mu.Unlock()
	return got, err
}

// leaseScript is redis_rate's GCRA taking up to ARGV[4] slots at once, on
// the same state (KEYS[1] holds the theoretical arrival time, seconds since
// 2017 as a float, as redis_rate keeps it), so that leases and single
// slots share one key. Unlike redis_rate's AllowAtMost, which may consume a
// fraction of a slot more than it reports, it takes whole slots only.
// ARGV: burst, rate, period (seconds), slots wanted. It returns {slots
// granted, retry after (seconds, as a string; -1 when granted)}.
var leaseScript = redis.NewScript(`
redis.replicate_commands()
local key = KEYS[1]
local burst, rate, period, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ei = period / rate
local now = redis.call("TIME")
now = (now[1] - 1483228800) + (now[2] / 1000000)
local tat = redis.call("GET", key)
if not tat then tat = now else tat = tonumber(tat) end
tat = math.max(tat, now)
local diff = now - (tat - ei * burst)
local n = math.floor(diff / ei)
if n > want then n = want end
if n < 1 then
  return {0, tostring(ei - diff)}
end
local new_tat = tat + ei * n
local reset_after = new_tat - now
if reset_after > 0 then
  redis.call("SET", key, new_tat, "EX", math.ceil(reset_after))
end
return {n, "-1"}
`)

// lease runs leaseScript for up to k slots of rk under limit.
func (l *Limiter) lease(ctx context.Context, rk string, limit redis_rate.Limit, k int) (*redis_rate.Result, error) {
	v, err := leaseScript.Run(ctx, l.rdb, []string{rk}, limit.Burst, limit.Rate, limit.Period.Seconds(), k).Slice()
	if err != nil {
		return nil, err
	}
	if len(v) != 2 {
		return nil, fmt.Errorf("lease script returned %v", v)
	}
	n, _ := v[0].(int64)
	s, _ := v[1].(string)
	retry, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("lease script returned retry %q", s)
	}
	return &redis_rate.Result{Limit: limit, Allowed: int(n), RetryAfter: time.Duration(retry * float64(time.Second))}, nil
}

// localFor returns the local limiter entry of key, set to r and burst.
func (l *Limiter) localFor(key string, r Rate, burst int, now time.Time) *localLimiter {
	want := rate.Limit(r.PerSecond())
	l.mu.Lock()
	e, ok := l.local[key]
	if !ok {
		if len(l.local) >= maxLocal {
			l.evictLocked(now)
		}
		e = &localLimiter{lim: rate.NewLimiter(want, burst)}
		l.local[key] = e
	}
	l.mu.Unlock()
	e.used.Store(now.UnixNano())
	if e.lim.Limit() != want {
		e.lim.SetLimitAt(now, want)
	}
	if e.lim.Burst() != burst {
		e.lim.SetBurstAt(now, burst)
	}
	return e
}

// evictLocked drops local limiters idle for localIdle. l.mu is held.
func (l *Limiter) evictLocked(now time.Time) {
	cutoff := now.Add(-localIdle).UnixNano()
	for k, e := range l.local {
		if e.used.Load() < cutoff {
			delete(l.local, k)
		}
	}
}

// sleep waits d or until ctx ends, whichever is first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
