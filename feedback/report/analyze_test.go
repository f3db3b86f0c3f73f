package report

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// cell is one count of a synthetic month.
type cell struct {
	domain string
	code   int
	n      int64
}

// synth builds May 2018 in UTC from a function of the day (0-based) and
// analyzes it.
func synth(t *testing.T, days int, f func(day int) []cell) *Report {
	t.Helper()
	c := NewCounts(time.UTC)
	for d := 0; d < days; d++ {
		at := time.Date(2018, time.May, 1+d, 12, 0, 0, 0, time.UTC)
		for _, x := range f(d) {
			c.Add(at, x.domain, x.code, x.n)
		}
	}
	r, err := Analyze(c, Options{Month: Month{2018, time.May}, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func findings(r *Report, kind Kind, code int) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Kind == kind && f.Code == code {
			out = append(out, f)
		}
	}
	return out
}

func TestFindingsSynthetic(t *testing.T) {
	for _, tt := range []struct {
		name       string
		f          func(day int) []cell
		kind       Kind
		code       int
		wantDomain string // "" with wantN 0: no finding
		wantDay    string
		wantN      int
	}{
		{
			name: "concentrated by count",
			f: func(d int) []cell {
				return []cell{{"a.example", 250, 1000}, {"a.example", 550, 3}, {"b.example", 550, 1}}
			},
			kind: KindConcentrated, code: 550, wantDomain: "a.example", wantN: 1,
		},
		{
			name: "not concentrated: few events and a small share of failures",
			f: func(d int) []cell {
				c := []cell{{"a.example", 250, 1000}, {"b.example", 554, 1000}}
				if d < 10 {
					c = append(c, cell{"a.example", 550, 3})
				}
				return c
			},
			kind: KindConcentrated, code: 550, wantN: 0,
		},
		{
			name: "volume correlated",
			f: func(d int) []cell {
				att := int64(1000 * (1 + d%10))
				return []cell{{"a.example", 250, att}, {"a.example", 452, att * att / 1_000_000}}
			},
			kind: KindVolumeCorrelated, code: 452, wantDomain: "a.example", wantN: 1,
		},
		{
			name: "constant volume: r undefined, no finding",
			f: func(d int) []cell {
				n := int64(1 + d%4)
				return []cell{{"a.example", 250, 1000 - n}, {"a.example", 452, n}}
			},
			kind: KindVolumeCorrelated, code: 452, wantN: 0,
		},
		{
			name: "not volume correlated",
			f: func(d int) []cell {
				att := int64(100 + 5000*(d%2))
				return []cell{{"a.example", 250, att}, {"a.example", 499, int64(1 + d%3)}}
			},
			kind: KindNotVolumeCorrelated, code: 499, wantDomain: "a.example", wantN: 1,
		},
		{
			name: "constant count: r undefined, no finding",
			f: func(d int) []cell {
				return []cell{{"a.example", 250, int64(100 + 5000*(d%2))}, {"a.example", 499, 2}}
			},
			kind: KindNotVolumeCorrelated, code: 499, wantN: 0,
		},
		{
			name: "spike by share",
			f: func(d int) []cell {
				c := []cell{{"a.example", 250, 1000}, {"b.example", 250, 1000}}
				if d == 16 {
					c = append(c, cell{"a.example", 605, 30}, cell{"b.example", 605, 25})
				}
				return c
			},
			kind: KindSpike, code: 605, wantDay: "2018-05-17", wantN: 1,
		},
		{
			name: "spike by rate against the median",
			f: func(d int) []cell {
				c := []cell{{"a.example", 250, 10000}, {"a.example", 421, 2}}
				if d%5 == 0 {
					c[1].n = 25
				}
				return c
			},
			kind: KindSpike, code: 421, wantN: 7,
		},
		{
			name: "no spike below 20",
			f: func(d int) []cell {
				c := []cell{{"a.example", 250, 1000}}
				if d == 3 {
					c = append(c, cell{"a.example", 421, 19})
				}
				return c
			},
			kind: KindSpike, code: 421, wantN: 0,
		},
		{
			name: "onset",
			f: func(d int) []cell {
				n := int64(1)
				if d >= 7 {
					n = 100
				}
				return []cell{{"a.example", 250, 1000}, {"a.example", 554, n}}
			},
			kind: KindOnset, code: 554, wantDomain: "a.example", wantDay: "2018-05-08", wantN: 1,
		},
		{
			name: "onset from zero",
			f: func(d int) []cell {
				c := []cell{{"a.example", 250, 1000}}
				if d >= 10 {
					c = append(c, cell{"a.example", 554, 50})
				}
				return c
			},
			kind: KindOnset, code: 554, wantDomain: "a.example", wantDay: "2018-05-11", wantN: 1,
		},
		{
			name: "one day from zero is no onset",
			f: func(d int) []cell {
				c := []cell{{"a.example", 250, 1000}}
				if d == 10 {
					c = append(c, cell{"a.example", 605, 50})
				}
				return c
			},
			kind: KindOnset, code: 605, wantN: 0,
		},
		{
			name: "no onset on the first day",
			f: func(d int) []cell {
				return []cell{{"a.example", 250, 1000}, {"a.example", 554, 100}}
			},
			kind: KindOnset, code: 554, wantN: 0,
		},
		{
			name: "no onset when it does not last",
			f: func(d int) []cell {
				c := []cell{{"a.example", 250, 1000}, {"a.example", 554, 1}}
				if d == 7 || d == 8 || d == 10 {
					c[1].n = 100
				}
				return c
			},
			kind: KindOnset, code: 554, wantN: 0,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := synth(t, 31, tt.f)
			got := findings(r, tt.kind, tt.code)
			if len(got) != tt.wantN {
				t.Fatalf("%s findings for %d = %+v, want %d", tt.kind, tt.code, got, tt.wantN)
			}
			if len(got) == 0 {
				return
			}
			if got[0].Domain != tt.wantDomain || (tt.wantDay != "" && got[0].Day != tt.wantDay) {
				t.Errorf("finding = %s %q %q, want %q %q", tt.kind, got[0].Domain, got[0].Day, tt.wantDomain, tt.wantDay)
			}
			if got[0].Action == "" || got[0].Summary == "" || len(got[0].Evidence) == 0 {
				t.Errorf("finding %+v lacks action, summary or evidence", got[0])
			}
			var b bytes.Buffer
			if err := WriteJSON(&b, r); err != nil {
				t.Errorf("WriteJSON: %v", err)
			}
		})
	}
}

// TestJSONSchema pins the keys of the JSON schema.
func TestJSONSchema(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, may2018(t)); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	keys := func(v any) []string {
		var out []string
		for k := range v.(map[string]any) {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	first := func(v any) any { return v.([]any)[0] }
	for _, tt := range []struct {
		name string
		v    any
		want string
	}{
		{"top", m, "bucket_offset codes domains findings month skipped skipped_total timezone totals"},
		{"totals", m["totals"], "attempts delivered failed failure_rate previous"},
		{"codes", first(m["codes"]), "class code count domains meaning share"},
		{"codes.domains", first(first(m["codes"]).(map[string]any)["domains"]), "count domain rate share_of_code"},
		{"domains", first(m["domains"]), "attempts correlation delivered domain failure_rate"},
		{"correlation", first(m["domains"]).(map[string]any)["correlation"].(map[string]any)["452"], "count_r days rate_days rate_r"},
		{"findings", first(m["findings"]), "action code domain evidence kind value"},
		{"spike", m["findings"].([]any)[4], "action code day evidence kind value"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(keys(tt.v), " "); got != tt.want {
				t.Errorf("keys = %q, want %q", got, tt.want)
			}
		})
	}
	if bytes.Contains(b.Bytes(), []byte("NaN")) {
		t.Error("JSON holds NaN")
	}
	// every correlation has every key; an undefined r is null, not absent
	for _, d := range m["domains"].([]any) {
		dom := d.(map[string]any)
		for code, c := range dom["correlation"].(map[string]any) {
			c := c.(map[string]any)
			if got := strings.Join(keys(c), " "); got != "count_r days rate_days rate_r" {
				t.Errorf("%s correlation of %s: keys %q, want count_r days rate_days rate_r", dom["domain"], code, got)
			}
			for _, k := range []string{"rate_r", "count_r"} {
				switch v := c[k].(type) {
				case nil: // undefined
				case float64:
					if v < -1 || v > 1 {
						t.Errorf("%s correlation of %s: %s = %v", dom["domain"], code, k, v)
					}
				default:
					t.Errorf("%s correlation of %s: %s = %v (%T), want a number or null", dom["domain"], code, k, v, v)
				}
			}
			if rd, days := c["rate_days"].(float64), c["days"].(float64); rd < 0 || days < 1 {
				t.Errorf("%s correlation of %s: days %v, rate_days %v", dom["domain"], code, days, rd)
			}
		}
	}
	if n, ok := m["skipped_total"].(float64); !ok || n != 0 {
		t.Errorf("skipped_total = %v, want 0", m["skipped_total"])
	}
	// the JSON decodes back into the same report
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	var b2 bytes.Buffer
	if err := WriteJSON(&b2, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.Bytes(), b2.Bytes()) {
		t.Error("JSON does not round-trip")
	}
}

// TestJSONCorrelationNull: an undefined r is null in the JSON, not absent;
// rate_days counts the days with ≥ 100 attempts behind rate_r, days the
// days the code occurred.
func TestJSONCorrelationNull(t *testing.T) {
	r := synth(t, 31, func(d int) []cell {
		c := []cell{
			// a.example: ≥ 100 attempts on 10 days, 550 on the first 5 days
			{"a.example", 250, int64(50 + 100*(d%3))},
			// b.example: never 100 attempts (rate_r undefined), 550 a constant
			// 2 a day on constant attempts (count_r undefined)
			{"b.example", 250, 40}, {"b.example", 550, 2},
		}
		if d < 5 {
			c = append(c, cell{"a.example", 550, int64(1 + d)})
		}
		return c
	})
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Domains []struct {
			Domain      string
			Correlation map[string]map[string]any
		}
	}
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]any{}
	for _, d := range m.Domains {
		got[d.Domain] = d.Correlation["550"]
	}
	for _, tt := range []struct {
		domain string
		want   map[string]any
	}{
		// a.example: 250+550 = 50+100*(d%3) (+ 550s): days with ≥ 100 are
		// d%3 ∈ {1, 2}: 20 of 31; 550 on 5 days
		{"a.example", map[string]any{"days": 5.0, "rate_days": 20.0}},
		{"b.example", map[string]any{"rate_r": nil, "count_r": nil, "days": 31.0, "rate_days": 0.0}},
	} {
		c, ok := got[tt.domain]
		if !ok {
			t.Errorf("%s: no correlation for 550", tt.domain)
			continue
		}
		for k, want := range tt.want {
			v, present := c[k]
			if !present || v != want {
				t.Errorf("%s correlation %s = %v (present %v), want %v", tt.domain, k, v, present, want)
			}
		}
		for _, k := range []string{"rate_r", "count_r", "days", "rate_days"} {
			if _, present := c[k]; !present {
				t.Errorf("%s correlation lacks %q: %v", tt.domain, k, c)
			}
		}
	}
	if !strings.Contains(b.String(), `"rate_r": null`) || !strings.Contains(b.String(), `"count_r": null`) {
		t.Error("the JSON has no null r")
	}
}
