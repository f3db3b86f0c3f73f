package feedback

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Holds returns the key of the hash of suspensions that hold back a domain
// or a recipient: HoldDomain(d) or HoldRecipient(a) -> Hold (JSON).
func (k Keys) Holds() string { return k.prefix() + ":holds" }

// HoldDomain is the field of Holds for a domain (lower-case ASCII).
func HoldDomain(domain string) string { return "domain:" + strings.ToLower(domain) }

// HoldRecipient is the field of Holds for a recipient address.
func HoldRecipient(addr string) string { return "rcpt:" + normalizeAddress(addr) }

// Hold is a suspension of a domain or a recipient by a rule: nothing is
// sent to it before Until.
type Hold struct {
	Rule   string    `json:"rule"`
	Reason string    `json:"reason"` // the answer that triggered it
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
}

// holdsRefresh is how often a process reads the holds again: a hold set
// by one process applies in every other within this time.
const holdsRefresh = 500 * time.Millisecond

// holdCache is a process' copy of the holds.
type holdCache struct {
	mu    sync.Mutex
	at    time.Time
	holds map[string]Hold
}

// SetHold holds back field (HoldDomain or HoldRecipient) until h.Until. A
// hold that ends later is kept. It applies in this process at once and
// in every other within holdsRefresh.
func (l *Loop) SetHold(ctx context.Context, field string, h Hold) error {
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("feedback: hold %s: %w", field, err)
	}
	// Keep the later of the two ends: one script, one key.
	if err := setHoldScript.Run(ctx, l.rdb, []string{l.keys.Holds()}, field, b, h.Until.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("feedback: hold %s: %w", field, err)
	}
	l.holds.mu.Lock()
	if l.holds.holds != nil {
		if old, ok := l.holds.holds[field]; !ok || old.Until.Before(h.Until) {
			l.holds.holds[field] = h
		}
	}
	l.holds.mu.Unlock()
	return nil
}

// setHoldScript sets KEYS[1][ARGV[1]] = ARGV[2] unless the hold there
// ends after ARGV[3] (Unix ms).
var setHoldScript = redis.NewScript(`
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local ok, h = pcall(cjson.decode, old)
  if ok and type(h) == 'table' and h.until_ms and tonumber(h.until_ms) > tonumber(ARGV[3]) then
    return 0
  end
end
local h = cjson.decode(ARGV[2])
h.until_ms = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(h))
return 1
`)

// HeldUntil returns the hold on domain or on addr that ends last and is
// still running at now; ok is false when neither is held. It reads a copy
// of the holds at most holdsRefresh old; expired holds are dropped from
// Redis as they are seen.
func (l *Loop) HeldUntil(ctx context.Context, domain, addr string) (h Hold, ok bool, err error) {
	holds, err := l.currentHolds(ctx)
	if err != nil {
		return Hold{}, false, err
	}
	now := l.now()
	for _, f := range [2]string{HoldDomain(domain), HoldRecipient(addr)} {
		if x, found := holds[f]; found && x.Until.After(now) && (!ok || x.Until.After(h.Until)) {
			h, ok = x, true
		}
	}
	return h, ok, nil
}

// Holds returns the holds running at now: field -> Hold.
func (l *Loop) Holds(ctx context.Context) (map[string]Hold, error) {
	all, err := l.readHolds(ctx)
	if err != nil {
		return nil, err
	}
	now := l.now()
	for f, h := range all {
		if !h.Until.After(now) {
			delete(all, f)
		}
	}
	return all, nil
}

// currentHolds returns the process' copy, read again when older than
// holdsRefresh.
func (l *Loop) currentHolds(ctx context.Context) (map[string]Hold, error) {
	c := &l.holds
	c.mu.Lock()
	defer c.mu.Unlock()
	now := l.now()
	if c.holds != nil && now.Sub(c.at) < holdsRefresh {
		return c.holds, nil
	}
	all, err := l.readHolds(ctx)
	if err != nil {
		if c.holds != nil {
			return c.holds, nil // Redis is away: the last copy holds
		}
		return nil, err
	}
	var expired []string
	for f, h := range all {
		if !h.Until.After(now) {
			expired = append(expired, f)
			delete(all, f)
		}
	}
	if len(expired) > 0 {
		_ = l.rdb.HDel(ctx, l.keys.Holds(), expired...).Err() // best effort: a later read drops them again
	}
	c.holds, c.at = all, now
	return all, nil
}

// readHolds reads every hold from Redis; an unreadable one is skipped.
func (l *Loop) readHolds(ctx context.Context) (map[string]Hold, error) {
	raw, err := l.rdb.HGetAll(ctx, l.keys.Holds()).Result()
	if err != nil {
		return nil, fmt.Errorf("feedback: holds: %w", err)
	}
	out := make(map[string]Hold, len(raw))
	for f, v := range raw {
		var h Hold
		if json.Unmarshal([]byte(v), &h) == nil && !h.Until.IsZero() {
			out[f] = h
		}
	}
	return out, nil
}
