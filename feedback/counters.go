package feedback

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Counter layout in Redis (the report's Redis source reads it):
//
//	<prefix>:counts:<YYYYMMDDHH>   hash, one per UTC hour
//	    field "<code>|<domain>"    number of answers with that basic code
//	                               for that recipient domain in the hour
//
// Hours, not days, so that a report can cut days in any zone whose offset
// is a whole number of hours. Each hash expires CounterRetention after its
// last write. A month is at most 744 hashes of (codes × domains) fields.

// CounterRetention is how long an hour's counters are kept.
const CounterRetention = 400 * 24 * time.Hour

// Keys builds every Redis key of the feedback package under one prefix.
// The zero Keys uses the prefix "bounceloop".
type Keys struct {
	Prefix string
}

func (k Keys) prefix() string {
	if k.Prefix == "" {
		return "bounceloop"
	}
	return k.Prefix
}

// Counts returns the key of the counters of the UTC hour holding t.
func (k Keys) Counts(t time.Time) string {
	return k.prefix() + ":counts:" + t.UTC().Format("2006010215")
}

// counterField is the hash field of (code, domain).
func counterField(code int, domain string) string {
	return strconv.Itoa(code) + "|" + domain
}

// parseCounterField splits a hash field written by counterField.
func parseCounterField(f string) (int, string, error) {
	c, d, ok := strings.Cut(f, "|")
	if !ok || d == "" {
		return 0, "", fmt.Errorf("feedback: bad counter field %q", f)
	}
	code, err := strconv.Atoi(c)
	if err != nil || code < 0 || code > 999 {
		return 0, "", fmt.Errorf("feedback: bad code in counter field %q", f)
	}
	return code, d, nil
}

type counterKey struct {
	hour   int64 // UNIX hour
	code   int
	domain string
}

// Recorder counts answers per (hour, code, domain) for the monthly report.
// Record is cheap (a map increment under a mutex): the counts reach Redis
// in one pipeline per Flush, which Run calls every interval. Counts a
// failed Flush could not write are kept and written by the next one, so
// nothing is lost while Redis is away (the pending map grows by at most one
// entry per hour, code and domain). Safe for concurrent use.
type Recorder struct {
	rdb  redis.Cmdable
	keys Keys

	mu      sync.Mutex
	pending map[counterKey]int64
}

// NewRecorder returns a Recorder writing through rdb under keys.
func NewRecorder(rdb redis.Cmdable, keys Keys) *Recorder {
	return &Recorder{rdb: rdb, keys: keys, pending: map[counterKey]int64{}}
}

// Record counts one answer with basic code code for domain at t.
func (r *Recorder) Record(t time.Time, domain string, code int) {
	r.Add(t, domain, code, 1)
}

// Add counts n answers.
func (r *Recorder) Add(t time.Time, domain string, code int, n int64) {
	k := counterKey{hour: t.Unix() / 3600, code: code, domain: domain}
	r.mu.Lock()
	r.pending[k] += n
	r.mu.Unlock()
}

// Flush writes the pending counts to Redis in one pipeline. On error the
// counts stay pending for the next Flush.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	batch := r.pending
	r.pending = make(map[counterKey]int64, len(batch))
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		touched := map[string]bool{}
		for k, n := range batch {
			key := r.keys.Counts(time.Unix(k.hour*3600, 0))
			p.HIncrBy(ctx, key, counterField(k.code, k.domain), n)
			touched[key] = true
		}
		for key := range touched {
			p.Expire(ctx, key, CounterRetention)
		}
		return nil
	})
	if err != nil {
		r.mu.Lock()
		for k, n := range batch {
			r.pending[k] += n
		}
		r.mu.Unlock()
		return fmt.Errorf("feedback: flush counters: %w", err)
	}
	return nil
}

// Run flushes every interval until ctx is done, then flushes once more
// with a short deadline of its own. It returns the last flush's error.
func (r *Recorder) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return r.Flush(fctx)
		case <-t.C:
			_ = r.Flush(ctx) // kept pending; the next tick retries
		}
	}
}

// CounterError is a counter field ReadCounts could not read; the other
// counters are still read.
type CounterError struct {
	Key    string // the hash
	Field  string // the field
	Reason string
}

func (e *CounterError) Error() string {
	return fmt.Sprintf("feedback: counter %s field %q: %s", e.Key, e.Field, e.Reason)
}

// CountFunc receives one counter: the start of its UTC hour, the domain,
// the basic code and the count.
type CountFunc func(hour time.Time, domain string, code int, n int64)

// ReadCounts calls fn for every counter of the hours in [from, to), reading
// them in pipelines of a day. A field that cannot be read is reported as a
// *CounterError in the returned error (all of them joined) and the rest is
// still read; a Redis failure stops the read and is returned alone.
func ReadCounts(ctx context.Context, rdb redis.Cmdable, keys Keys, from, to time.Time, fn CountFunc) error {
	var errs []error
	start := from.UTC().Truncate(time.Hour)
	for day := start; day.Before(to); day = day.Add(24 * time.Hour) {
		var hours []time.Time
		for h := day; h.Before(day.Add(24*time.Hour)) && h.Before(to); h = h.Add(time.Hour) {
			hours = append(hours, h)
		}
		cmds := make([]*redis.MapStringStringCmd, len(hours))
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, h := range hours {
				cmds[i] = p.HGetAll(ctx, keys.Counts(h))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("feedback: read counters: %w", err)
		}
		for i, cmd := range cmds {
			for f, v := range cmd.Val() {
				code, domain, err := parseCounterField(f)
				if err != nil {
					errs = append(errs, &CounterError{Key: keys.Counts(hours[i]), Field: f, Reason: "not <code>|<domain>"})
					continue
				}
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					errs = append(errs, &CounterError{Key: keys.Counts(hours[i]), Field: f, Reason: fmt.Sprintf("bad count %q", v)})
					continue
				}
				fn(hours[i], domain, code, n)
			}
		}
	}
	return errors.Join(errs...)
}
