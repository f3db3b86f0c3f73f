package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Rate is a sending pace: N messages per second, minute or hour, written
// "N/s", "N/m" or "N/h" in config.toml (rate = "100/s"). N is a positive
// decimal number and may be fractional ("0.5/s" is one message every two
// seconds).
//
// The zero Rate means "not set" in configuration (the field inherits, see
// Settings) and "unlimited" when given to Limiter.Wait. A Rate is a plain
// value, safe to copy and compare with ==.
type Rate struct {
	N   float64       // messages per Per; > 0 unless the Rate is zero
	Per time.Duration // time.Second, time.Minute or time.Hour
}

// Bounds of a Rate: at most MaxRatePerSecond messages a second, at least
// one message every MaxRateInterval.
const (
	MaxRatePerSecond = 1e6
	MaxRateInterval  = 24 * time.Hour
)

// ParseRate parses "N/s", "N/m" or "N/h" (see Rate). The empty string is
// the zero Rate. N is digits with at most one decimal point: no sign, no
// exponent, no spaces. Errors name the input and the rule.
func ParseRate(s string) (Rate, error) {
	if s == "" {
		return Rate{}, nil
	}
	num, unit, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("policy: rate %q: want N/s, N/m or N/h", s)
	}
	var per time.Duration
	switch unit {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		return Rate{}, fmt.Errorf("policy: rate %q: unit %q: want s, m or h", s, unit)
	}
	if !isDecimal(num) {
		return Rate{}, fmt.Errorf("policy: rate %q: %q is not a decimal number like 100 or 0.5", s, num)
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return Rate{}, fmt.Errorf("policy: rate %q: %q is out of range", s, num)
	}
	r := Rate{N: n, Per: per}
	if err := r.check(); err != nil {
		return Rate{}, fmt.Errorf("policy: rate %q: %w", s, err)
	}
	return r, nil
}

// isDecimal reports whether s is digits with at most one '.' and at least
// one digit.
func isDecimal(s string) bool {
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// check reports why a non-zero Rate is out of bounds; nil for the zero Rate.
func (r Rate) check() error {
	if r.IsZero() {
		return nil
	}
	switch r.Per {
	case time.Second, time.Minute, time.Hour:
	default:
		return fmt.Errorf("period %v: want 1s, 1m or 1h", r.Per)
	}
	if math.IsNaN(r.N) || math.IsInf(r.N, 0) || r.N <= 0 {
		return fmt.Errorf("must be > 0 (leave rate out to inherit it)")
	}
	if r.PerSecond() > MaxRatePerSecond {
		return fmt.Errorf("more than %g/s", float64(MaxRatePerSecond))
	}
	if float64(r.Per)/r.N > float64(MaxRateInterval) {
		return fmt.Errorf("slower than one message every %v", MaxRateInterval)
	}
	return nil
}

// IsZero reports whether r is the zero Rate (not set; unlimited).
func (r Rate) IsZero() bool { return r == Rate{} }

// String formats r as ParseRate reads it ("100/s", "0.5/m"); the zero Rate
// is "". ParseRate(r.String()) == r for every Rate ParseRate returns.
func (r Rate) String() string {
	if r.IsZero() {
		return ""
	}
	unit := ""
	switch r.Per {
	case time.Second:
		unit = "s"
	case time.Minute:
		unit = "m"
	case time.Hour:
		unit = "h"
	default:
		return strconv.FormatFloat(r.N, 'f', -1, 64) + "/" + r.Per.String()
	}
	return strconv.FormatFloat(r.N, 'f', -1, 64) + "/" + unit
}

// PerSecond returns the rate in messages per second; 0 for the zero Rate.
func (r Rate) PerSecond() float64 {
	if r.Per <= 0 {
		return 0
	}
	return r.N / r.Per.Seconds()
}

// Interval returns the time between two messages at rate r (Per/N); 0 for
// the zero Rate.
func (r Rate) Interval() time.Duration {
	if r.N <= 0 || r.Per <= 0 {
		return 0
	}
	if d := float64(r.Per) / r.N; d < math.MaxInt64 {
		return time.Duration(d)
	}
	return math.MaxInt64
}

// DefaultBurst returns the burst used when none is configured:
// max(1, messages per second rounded up).
func (r Rate) DefaultBurst() int {
	b := math.Ceil(r.PerSecond())
	if b < 1 || math.IsNaN(b) {
		return 1
	}
	if b > MaxRatePerSecond {
		return MaxRatePerSecond
	}
	return int(b)
}

// MarshalText implements encoding.TextMarshaler: r.String().
func (r Rate) MarshalText() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("policy: rate %s: %w", r.String(), err)
	}
	return []byte(r.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseRate, so that
// rate = "100/s" decodes from TOML.
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
