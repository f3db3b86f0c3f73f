package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestMay2018Findings checks, on the JSON of the shared month, every point
// of the "What it must find".
func TestMay2018Findings(t *testing.T) {
	full := may2018(t)
	var b bytes.Buffer
	if err := WriteJSON(&b, full); err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(b.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	code := func(c int) *CodeStat {
		for i := range r.Codes {
			if r.Codes[i].Code == c {
				return &r.Codes[i]
			}
		}
		t.Fatalf("code %d missing from codes", c)
		return nil
	}
	find := func(kind Kind, c int, domain, day string) *Finding {
		for i, f := range r.Findings {
			if f.Kind == kind && f.Code == c && f.Domain == domain && (day == "" || f.Day == day) {
				return &r.Findings[i]
			}
		}
		return nil
	}
	want := func(kind Kind, c int, domain, day string) *Finding {
		t.Helper()
		f := find(kind, c, domain, day)
		if f == nil {
			t.Errorf("no finding %s for %d domain %q day %q", kind, c, domain, day)
		}
		return f
	}
	domainsOf := func(c int) map[string]bool {
		out := map[string]bool{}
		for _, d := range code(c).Domains {
			out[d.Domain] = true
		}
		return out
	}

	if r.Month != "2018-05" || r.Timezone != "UTC" || r.BucketOffset != "22:00" {
		t.Errorf("month, timezone, bucket_offset = %q, %q, %q, want 2018-05, UTC, 22:00", r.Month, r.Timezone, r.BucketOffset)
	}

	t.Run("554 first by a wide margin, then 452, 605, 550", func(t *testing.T) {
		var ranked []CodeStat
		for _, c := range r.Codes {
			if c.Code != 200 {
				ranked = append(ranked, c)
			}
		}
		if len(ranked) < 4 {
			t.Fatalf("failure codes = %v, want at least 4", ranked)
		}
		got := []int{ranked[0].Code, ranked[1].Code, ranked[2].Code, ranked[3].Code}
		if got[0] != 554 || got[1] != 452 || got[2] != 605 || got[3] != 550 {
			t.Errorf("top failure codes = %v, want [554 452 605 550]", got)
		}
		if ranked[0].Count < 5*ranked[1].Count {
			t.Errorf("554 count %d not a wide margin over %d (want ≥ 5×)", ranked[0].Count, ranked[1].Count)
		}
	})

	t.Run("554 concentrated at centrum.sk, onset 2018-05-08, 200s continue", func(t *testing.T) {
		want(KindConcentrated, 554, "centrum.sk", "")
		f := want(KindOnset, 554, "centrum.sk", "")
		if f == nil {
			return
		}
		if f.Day != "2018-05-08" {
			t.Errorf("554 onset at centrum.sk = %s, want 2018-05-08", f.Day)
		}
		if f.Evidence["delivered_since"] <= 0 || f.Evidence["delivered_on_day"] <= 0 {
			t.Errorf("onset evidence %v: want 200s on and after the onset day", f.Evidence)
		}
		// every day since the onset with ≥ 100 attempts at centrum.sk had 200s
		ds := full.Series.Domain["centrum.sk"]
		for i, day := range full.Series.Days {
			if day >= f.Day && ds.Attempts[i] >= 100 && ds.Code[200][i] == 0 {
				t.Errorf("no 200 at centrum.sk on %s (%d attempts)", day, ds.Attempts[i])
			}
		}
	})

	t.Run("452 concentrated at gmail.com, 684, volume correlated", func(t *testing.T) {
		want(KindConcentrated, 452, "gmail.com", "")
		if d := code(452).Domains[0]; d.Domain != "gmail.com" || d.Count != 684 {
			t.Errorf("452 top domain = %s %d, want gmail.com 684", d.Domain, d.Count)
		}
		want(KindVolumeCorrelated, 452, "gmail.com", "")
	})

	t.Run("gmail.com receives more than all others together", func(t *testing.T) {
		var gmail, others int64
		for _, d := range r.Domains {
			if d.Domain == "gmail.com" {
				gmail = d.Attempts
			} else {
				others += d.Attempts
			}
		}
		if gmail <= others {
			t.Errorf("gmail.com attempts %d, others %d: want gmail.com more", gmail, others)
		}
		if r.Domains[0].Domain != "gmail.com" {
			t.Errorf("first domain = %s, want gmail.com", r.Domains[0].Domain)
		}
	})

	t.Run("605 spikes on 2018-05-17 across domains", func(t *testing.T) {
		f := want(KindSpike, 605, "", "2018-05-17")
		if f != nil && f.Evidence["domains"] < 2 {
			t.Errorf("605 spike over %v domains, want several", f.Evidence["domains"])
		}
	})

	t.Run("552 at gmail.com at most 31 a day", func(t *testing.T) {
		// stated by the output: the concentrated finding's evidence and sentence
		f := want(KindConcentrated, 552, "gmail.com", "")
		if f == nil {
			return
		}
		maxDaily, ok := f.Evidence["max_daily"]
		if !ok || maxDaily != 31 {
			t.Errorf("552 concentrated at gmail.com: evidence max_daily = %v (present %v), want 31", maxDaily, ok)
		}
		day, ok := f.Evidence["max_daily_day"]
		if !ok || day < 1 || day > 31 {
			t.Fatalf("552 concentrated at gmail.com: evidence max_daily_day = %v (present %v), want a day of May", day, ok)
		}
		// the evidence agrees with the daily series, and the day is the first
		// with that count
		s := full.Series.Domain["gmail.com"].Code[552]
		var top int64
		first := -1
		for i, n := range s {
			if n > top {
				top, first = n, i
			}
		}
		if float64(top) != maxDaily || float64(first+1) != day {
			t.Errorf("series: highest day %d (May %d), evidence %v (May %v)", top, first+1, maxDaily, day)
		}
		var summary string
		for _, g := range full.Findings {
			if g.Kind == KindConcentrated && g.Code == 552 && g.Domain == "gmail.com" {
				summary = g.Summary
			}
		}
		if want := fmt.Sprintf("At most 31 a day there (2018-05-%02d)", int(day)); !strings.Contains(summary, want) {
			t.Errorf("summary %q lacks %q", summary, want)
		}
	})

	t.Run("451 concentrated at icloud.com", func(t *testing.T) {
		want(KindConcentrated, 451, "icloud.com", "")
	})

	t.Run("421 and 451 hit different domains", func(t *testing.T) {
		d421, d451 := domainsOf(421), domainsOf(451)
		for d := range d421 {
			if d451[d] {
				t.Errorf("421 and 451 both hit %s", d)
			}
		}
	})

	t.Run("499 only for (other), not volume correlated", func(t *testing.T) {
		if d := domainsOf(499); len(d) != 1 || !d["(other)"] {
			t.Errorf("499 domains = %v, want only (other)", d)
		}
		want(KindNotVolumeCorrelated, 499, "(other)", "")
	})

	t.Run("actions follow the class", func(t *testing.T) {
		if f := find(KindVolumeCorrelated, 452, "gmail.com", ""); f != nil {
			if f.Evidence["suggested_per_minute"] <= 0 || !bytes.Contains([]byte(f.Action), []byte(`rate = "46/m"`)) {
				t.Errorf("452 volume_correlated action %q evidence %v: want a suggested per_minute", f.Action, f.Evidence)
			}
		}
		if f := find(KindSpike, 605, "", "2018-05-17"); f != nil && !bytes.Contains([]byte(f.Action), []byte("2018-05-17")) {
			t.Errorf("605 spike action %q: want the day", f.Action)
		}
	})
}
