package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Rate
		wantErr string
	}{
		{"empty is zero", "", Rate{}, ""},
		{"per second", "100/s", Rate{100, time.Second}, ""},
		{"per minute", "30/m", Rate{30, time.Minute}, ""},
		{"per hour", "500/h", Rate{500, time.Hour}, ""},
		{"fractional", "0.5/s", Rate{0.5, time.Second}, ""},
		{"leading dot", ".5/s", Rate{0.5, time.Second}, ""},
		{"trailing dot", "5./m", Rate{5, time.Minute}, ""},
		{"max", "1000000/s", Rate{1e6, time.Second}, ""},
		{"one a day", "0.041666666666666667/h", Rate{1.0 / 24, time.Hour}, ""},
		{"zero", "0/s", Rate{}, "must be > 0"},
		{"negative", "-1/s", Rate{}, "not a decimal"},
		{"plus sign", "+1/s", Rate{}, "not a decimal"},
		{"exponent", "1e3/s", Rate{}, "not a decimal"},
		{"hex", "0x10/s", Rate{}, "not a decimal"},
		{"inf", "inf/s", Rate{}, "not a decimal"},
		{"nan", "NaN/s", Rate{}, "not a decimal"},
		{"underscore", "1_000/s", Rate{}, "not a decimal"},
		{"two dots", "1.2.3/s", Rate{}, "not a decimal"},
		{"only dot", "./s", Rate{}, "not a decimal"},
		{"space", "100 /s", Rate{}, "not a decimal"},
		{"no unit", "100", Rate{}, "want N/s"},
		{"bad unit", "100/d", Rate{}, `unit "d"`},
		{"long unit", "100/sec", Rate{}, `unit "sec"`},
		{"upper unit", "100/S", Rate{}, `unit "S"`},
		{"two slashes", "1/s/s", Rate{}, `unit "s/s"`},
		{"too fast", "1000001/s", Rate{}, "more than"},
		{"too fast per minute", "60000001/m", Rate{}, "more than"},
		{"too slow", "0.01/h", Rate{}, "slower than"},
		{"far too slow", ".0000000001/s", Rate{}, "slower than"},
		{"huge", strings.Repeat("9", 400) + "/s", Rate{}, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRate(tt.in)
			if (err != nil) != (tt.wantErr != "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseRate(%q) error = %v, want error containing %q", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseRate(%q) = %v, want %v", tt.in, got, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.in) {
				t.Errorf("ParseRate(%q) error %q does not name the input", tt.in, err)
			}
		})
	}
}

func TestRateMethods(t *testing.T) {
	tests := []struct {
		name      string
		r         Rate
		str       string
		perSecond float64
		interval  time.Duration
		burst     int
	}{
		{"zero", Rate{}, "", 0, 0, 1},
		{"100/s", Rate{100, time.Second}, "100/s", 100, 10 * time.Millisecond, 100},
		{"0.5/s", Rate{0.5, time.Second}, "0.5/s", 0.5, 2 * time.Second, 1},
		{"30/m", Rate{30, time.Minute}, "30/m", 0.5, 2 * time.Second, 1},
		{"90/m", Rate{90, time.Minute}, "90/m", 1.5, time.Second * 2 / 3, 2},
		{"3600/h", Rate{3600, time.Hour}, "3600/h", 1, time.Second, 1},
		{"2.5/s", Rate{2.5, time.Second}, "2.5/s", 2.5, 400 * time.Millisecond, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.String(); got != tt.str {
				t.Errorf("%#v.String() = %q, want %q", tt.r, got, tt.str)
			}
			if got := tt.r.PerSecond(); got != tt.perSecond {
				t.Errorf("%q.PerSecond() = %v, want %v", tt.str, got, tt.perSecond)
			}
			if got := tt.r.Interval(); got != tt.interval {
				t.Errorf("%q.Interval() = %v, want %v", tt.str, got, tt.interval)
			}
			if got := tt.r.DefaultBurst(); got != tt.burst {
				t.Errorf("%q.DefaultBurst() = %v, want %v", tt.str, got, tt.burst)
			}
			back, err := ParseRate(tt.r.String())
			if err != nil || back != tt.r {
				t.Errorf("ParseRate(%q) = %v, %v, want %v", tt.r.String(), back, err, tt.r)
			}
		})
	}
}

func TestRateTOML(t *testing.T) {
	type doc struct {
		Rate Rate `toml:"rate"`
	}
	tests := []struct {
		name    string
		in      string
		want    Rate
		wantErr string
	}{
		{"string", `rate = "100/s"`, Rate{100, time.Second}, ""},
		{"fraction", `rate = "0.5/m"`, Rate{0.5, time.Minute}, ""},
		{"absent", ``, Rate{}, ""},
		{"bad", `rate = "fast"`, Rate{}, `rate "fast"`},
		{"number", `rate = 100`, Rate{}, "rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d doc
			_, err := toml.Decode(tt.in, &d)
			if (err != nil) != (tt.wantErr != "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("toml.Decode(%q) error = %v, want error containing %q", tt.in, err, tt.wantErr)
			}
			if d.Rate != tt.want {
				t.Errorf("toml.Decode(%q) rate = %v, want %v", tt.in, d.Rate, tt.want)
			}
		})
	}

	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(doc{Rate{0.5, time.Second}}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(b.String()), `rate = "0.5/s"`; got != want {
		t.Errorf("toml.Encode(0.5/s) = %q, want %q", got, want)
	}
	if _, err := (Rate{N: -1, Per: time.Second}).MarshalText(); err == nil {
		t.Errorf("MarshalText(-1/s) = nil error, want one")
	}
}

// FuzzParseRate: no panic; never a value plus an error; every accepted
// rate is within bounds and round-trips through String.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"", "100/s", "0.5/s", "30/m", "500/h", ".5/h", "1000000/s", "0/s", "1e3/s",
		"-1/s", "inf/s", "1/d", "100", "/", "1.0000000000000001/s", "0.0416666666666666666666/h", "9999999999/h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			if r != (Rate{}) {
				t.Fatalf("ParseRate(%q) = %v and error %v", s, r, err)
			}
			return
		}
		if r.IsZero() {
			if s != "" {
				t.Fatalf("ParseRate(%q) = zero Rate without error", s)
			}
			return
		}
		if err := r.check(); err != nil {
			t.Fatalf("ParseRate(%q) = %v, out of bounds: %v", s, r, err)
		}
		back, err := ParseRate(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRate(%q) = %#v; ParseRate(String() = %q) = %#v, %v", s, r, r.String(), back, err)
		}
		if b := r.DefaultBurst(); b < 1 {
			t.Fatalf("ParseRate(%q).DefaultBurst() = %d, want >= 1", s, b)
		}
		if l := gcraLimit(r, 1); l.Rate < 1 || l.Period <= 0 {
			t.Fatalf("gcraLimit(%v) = %+v, want a positive rate and period", r, l)
		}
	})
}
