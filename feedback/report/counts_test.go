package report

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
)

func TestCountsDays(t *testing.T) {
	bratislava := mustZone(t, "Europe/Bratislava")
	for _, tt := range []struct {
		name string
		loc  *time.Location
		at   time.Time
		want string
	}{
		{"UTC midnight", time.UTC, time.Date(2018, 5, 1, 0, 0, 0, 0, time.UTC), "2018-05-01"},
		{"UTC last second", time.UTC, time.Date(2018, 5, 1, 23, 59, 59, 0, time.UTC), "2018-05-01"},
		{"CEST next day", bratislava, time.Date(2018, 5, 1, 22, 0, 0, 0, time.UTC), "2018-05-02"},
		{"CEST same day", bratislava, time.Date(2018, 5, 1, 21, 59, 59, 0, time.UTC), "2018-05-01"},
		{"DST start day", bratislava, time.Date(2018, 3, 25, 21, 30, 0, 0, time.UTC), "2018-03-25"},
		{"DST end day", bratislava, time.Date(2018, 10, 28, 22, 30, 0, 0, time.UTC), "2018-10-28"},
		{"before 1970", time.UTC, time.Date(1969, 12, 31, 12, 0, 0, 0, time.UTC), "1969-12-31"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCounts(tt.loc)
			// warm the day cache with another day first
			c.Add(tt.at.Add(-72*time.Hour), "x.example", 250, 1)
			c.Add(tt.at, "a.example", 250, 1)
			var got []string
			for _, r := range c.sortedRows() {
				if r.get(int(c.domainIdx["a.example"]), 0) > 0 {
					got = append(got, dayLabel(r.day))
				}
			}
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("Add(%v) in %s counted on %v, want %s", tt.at, tt.loc, got, tt.want)
			}
		})
	}
}

func TestCountsBucketOffset(t *testing.T) {
	bratislava := mustZone(t, "Europe/Bratislava")
	may := Month{2018, time.May}
	for _, tt := range []struct {
		name     string
		loc      *time.Location
		start    time.Time
		width    time.Duration
		want     string
		wantNote string
	}{
		{"export in UTC", time.UTC, time.Date(2018, 5, 1, 22, 0, 0, 0, time.UTC), ExportBucket, "22:00", "local days of UTC+2"},
		{"export in its own zone", bratislava, time.Date(2018, 5, 1, 22, 0, 0, 0, time.UTC), ExportBucket, "00:00", ""},
		{"hours in UTC", time.UTC, time.Date(2018, 5, 1, 22, 0, 0, 0, time.UTC), time.Hour, "00:00", ""},
		{"midnight days", time.UTC, time.Date(2018, 5, 2, 0, 0, 0, 0, time.UTC), ExportBucket, "00:00", ""},
		{"days of UTC-5", time.UTC, time.Date(2018, 5, 2, 5, 0, 0, 0, time.UTC), ExportBucket, "05:00", "local days of UTC-5"},
		{"days of UTC+5:30", time.UTC, time.Date(2018, 5, 1, 18, 30, 0, 0, time.UTC), ExportBucket, "18:30", "local days of UTC+5:30"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCounts(tt.loc)
			for d := 0; d < 3; d++ {
				c.AddBucket(tt.start.Add(time.Duration(d)*24*time.Hour), tt.width, "a.example", 200, 5)
			}
			got, note := c.bucketOffset(may)
			if got != tt.want || !strings.Contains(note, tt.wantNote) || (tt.wantNote == "") != (note == "") {
				t.Errorf("bucketOffset() = %q, %q, want %q, note with %q", got, note, tt.want, tt.wantNote)
			}
		})
	}
}

func TestCountsMergeAndSkip(t *testing.T) {
	day := time.Date(2018, 5, 3, 10, 0, 0, 0, time.UTC)
	a, b := NewCounts(time.UTC), NewCounts(time.UTC)
	a.Add(day, "a.example", 250, 2)
	b.Add(day, "b.example", 550, 3)
	b.Add(day, "a.example", 250, 1)
	b.AddBucket(time.Date(2018, 5, 4, 22, 0, 0, 0, time.UTC), ExportBucket, "a.example", 200, 1)
	b.Skip("in.ndjson", &bounces.RecordError{File: "in.ndjson", Line: 7, Offset: -1, Reason: "no time"})
	b.Skip("redis", errors.New("bad key"))
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	r, err := Analyze(a, Options{Month: Month{2018, time.May}, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if r.Totals.Attempts != 7 || r.Totals.Delivered != 4 || r.Totals.Failed != 3 {
		t.Errorf("Totals = %+v, want 7 attempts, 4 delivered, 3 failed", r.Totals)
	}
	want := []Skipped{
		{Source: "in.ndjson", Location: "in.ndjson:7", Reason: "no time"},
		{Source: "redis", Location: "redis", Reason: "bad key"},
	}
	if !reflect.DeepEqual(r.Skipped, want) || r.SkippedTotal != 2 {
		t.Errorf("Skipped = %v (%d), want %v", r.Skipped, r.SkippedTotal, want)
	}
	if r.BucketOffset != "22:00" {
		t.Errorf("BucketOffset = %q, want 22:00 (merged)", r.BucketOffset)
	}
	if err := a.Merge(NewCounts(mustZone(t, "Europe/Bratislava"))); err == nil {
		t.Error("Merge of another zone: no error")
	}
}

func TestAnalyzeErrors(t *testing.T) {
	c := NewCounts(time.UTC)
	c.Add(time.Date(2018, 5, 3, 10, 0, 0, 0, time.UTC), "a.example", 250, 2)
	for _, tt := range []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"month without data", Options{Month: Month{2018, time.July}, Now: fixedNow}, "2018-07"},
		{"other zone", Options{Month: Month{2018, time.May}, Location: mustZone(t, "Europe/Bratislava"), Now: fixedNow}, "zone"},
		{"invalid month", Options{Now: fixedNow}, "invalid month"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Analyze(c, tt.opts)
			if err == nil || r != nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Analyze() = %v, %v, want an error with %q", r, err, tt.wantErr)
			}
		})
	}
	_, err := Analyze(c, Options{Month: Month{2018, time.July}, Now: fixedNow})
	if !errors.Is(err, ErrNoData) {
		t.Errorf("Analyze(no data) = %v, want ErrNoData", err)
	}
}

func TestParseMonth(t *testing.T) {
	for _, tt := range []struct {
		name    string
		in      string
		want    Month
		wantErr bool
	}{
		{"ok", "2018-05", Month{2018, time.May}, false},
		{"december", "2018-12", Month{2018, time.December}, false},
		{"month 13", "2018-13", Month{}, true},
		{"no dash", "201805", Month{}, true},
		{"short", "2018-5", Month{}, true},
		{"empty", "", Month{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMonth(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseMonth(%q) = %v, %v, want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
			if err == nil && got.String() != tt.in {
				t.Errorf("ParseMonth(%q).String() = %q", tt.in, got.String())
			}
		})
	}
	if p := (Month{2018, time.January}).Prev(); p != (Month{2017, time.December}) {
		t.Errorf("Prev(2018-01) = %v, want 2017-12", p)
	}
}

func TestPearson(t *testing.T) {
	for _, tt := range []struct {
		name   string
		x, y   []float64
		want   float64
		wantOK bool
	}{
		{"perfect", []float64{1, 2, 3}, []float64{2, 4, 6}, 1, true},
		{"inverse", []float64{1, 2, 3}, []float64{3, 2, 1}, -1, true},
		{"constant y", []float64{1, 2, 3}, []float64{5, 5, 5}, 0, false},
		{"constant x", []float64{4, 4, 4}, []float64{1, 2, 3}, 0, false},
		{"one point", []float64{1}, []float64{1}, 0, false},
		{"zero", []float64{1, 2, 3, 4}, []float64{1, -1, -1, 1}, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := pearson(tt.x, tt.y)
			if ok != tt.wantOK || math.Abs(got-tt.want) > 1e-12 || math.IsNaN(got) {
				t.Errorf("pearson(%v, %v) = %v, %v, want %v, %v", tt.x, tt.y, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
