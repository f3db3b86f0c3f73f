package feedback

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bounceloop/bounceloop/bounces"
)

// Suppressed returns the key of the suppression list: a hash of address →
// Suppression (JSON).
func (k Keys) Suppressed() string { return k.prefix() + ":suppressed" }

// Suppression is why an address is on the suppression list.
type Suppression struct {
	Class    bounces.Class `json:"class"`
	Code     int           `json:"code"`
	Answer   string        `json:"answer"`
	Campaign string        `json:"campaign,omitempty"`
	Time     time.Time     `json:"time"`
}

// Suppressions is the suppression list in Redis, shared by every process:
// an address on it is refused at enqueue and skipped before sending
// (counted as 605). Addresses are compared lower-cased. Safe for concurrent
// use.
type Suppressions struct {
	rdb  redis.Cmdable
	keys Keys
}

// NewSuppressions returns the list kept under keys in rdb.
func NewSuppressions(rdb redis.Cmdable, keys Keys) *Suppressions {
	return &Suppressions{rdb: rdb, keys: keys}
}

// normalizeAddress is how addresses are compared on the list.
func normalizeAddress(addr string) string {
	return strings.ToLower(strings.TrimSpace(addr))
}

// Add puts addr on the list with why; a later Add replaces the record.
func (s *Suppressions) Add(ctx context.Context, addr string, why Suppression) error {
	b, err := json.Marshal(why)
	if err != nil {
		return fmt.Errorf("feedback: suppress: %w", err)
	}
	if err := s.rdb.HSet(ctx, s.keys.Suppressed(), normalizeAddress(addr), b).Err(); err != nil {
		return fmt.Errorf("feedback: suppress: %w", err)
	}
	return nil
}

// Remove takes addr off the list and reports whether it was on it.
func (s *Suppressions) Remove(ctx context.Context, addr string) (bool, error) {
	n, err := s.rdb.HDel(ctx, s.keys.Suppressed(), normalizeAddress(addr)).Result()
	if err != nil {
		return false, fmt.Errorf("feedback: unsuppress: %w", err)
	}
	return n > 0, nil
}

// Check reports for each address whether it is on the list, in one round
// trip.
func (s *Suppressions) Check(ctx context.Context, addrs []string) ([]bool, error) {
	out := make([]bool, len(addrs))
	if len(addrs) == 0 {
		return out, nil
	}
	fields := make([]string, len(addrs))
	for i, a := range addrs {
		fields[i] = normalizeAddress(a)
	}
	vals, err := s.rdb.HMGet(ctx, s.keys.Suppressed(), fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("feedback: check suppressions: %w", err)
	}
	for i, v := range vals {
		out[i] = v != nil
	}
	return out, nil
}

// Get returns the record of addr and whether it is on the list.
func (s *Suppressions) Get(ctx context.Context, addr string) (Suppression, bool, error) {
	v, err := s.rdb.HGet(ctx, s.keys.Suppressed(), normalizeAddress(addr)).Result()
	if err == redis.Nil {
		return Suppression{}, false, nil
	}
	if err != nil {
		return Suppression{}, false, fmt.Errorf("feedback: get suppression: %w", err)
	}
	var why Suppression
	if err := json.Unmarshal([]byte(v), &why); err != nil {
		return Suppression{}, true, fmt.Errorf("feedback: suppression record of a listed address: %w", err)
	}
	return why, true, nil
}

// Len returns the number of suppressed addresses.
func (s *Suppressions) Len(ctx context.Context) (int64, error) {
	return s.rdb.HLen(ctx, s.keys.Suppressed()).Result()
}

// SuppressedAddress is one entry of the suppression list.
type SuppressedAddress struct {
	Address string
	Suppression
}

// List calls fn for every suppressed address (in Redis' scan order, each
// once unless the list changes meanwhile), stopping at fn's first error.
// A record that cannot be read is passed with only its address.
func (s *Suppressions) List(ctx context.Context, fn func(SuppressedAddress) error) error {
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, s.keys.Suppressed(), cursor, "", 500).Result()
		if err != nil {
			return fmt.Errorf("feedback: list suppressions: %w", err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			e := SuppressedAddress{Address: kv[i]}
			_ = json.Unmarshal([]byte(kv[i+1]), &e.Suppression)
			if err := fn(e); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// SuppressionCSVHeader is the header row of the suppression list's CSV
// export (the `suppressions export` command and the web page's export).
var SuppressionCSVHeader = []string{"address", "class", "code", "time", "campaign", "answer"}

// CSVRecord returns a's row of the CSV export: time in RFC 3339 UTC, an
// empty code or time when unknown. A field that a spreadsheet would take
// for a formula (starting with =, +, -, @, a tab or a CR: a remote
// server's answer is untrusted text) is prefixed with a single quote.
func (a SuppressedAddress) CSVRecord() []string {
	code, at := "", ""
	if a.Code != 0 {
		code = strconv.Itoa(a.Code)
	}
	if !a.Time.IsZero() {
		at = a.Time.UTC().Format(time.RFC3339)
	}
	return []string{csvSafe(a.Address), a.Class.String(), code, at, csvSafe(a.Campaign), csvSafe(a.Answer)}
}

// csvSafe defuses a text field a spreadsheet would evaluate (OWASP CSV
// injection).
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
