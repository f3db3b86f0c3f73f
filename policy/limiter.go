package policy

import (
	"context"
	"errors"
	"fmt"
	"math"
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
	prefix string

	mu    sync.Mutex
	local map[string]*localLimiter
}

// localLimiter is the in-process limiter of one key.
type localLimiter struct {
	lim  *rate.Limiter
	used atomic.Int64 // UnixNano of the last Wait, for eviction
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
	local := l.localFor(key, r, burst, start)
	res := local.ReserveN(start, 1)
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
	for {
		got, err := l.gcra.Allow(ctx, rk, limit)
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

// localFor returns the local limiter of key, set to r and burst.
func (l *Limiter) localFor(key string, r Rate, burst int, now time.Time) *rate.Limiter {
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
	return e.lim
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
