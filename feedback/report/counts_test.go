package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

// TestBucketOffsetPerMonth: the bucket-offset note speaks of the reported
// month's buckets only. An export with buckets at 22:00 UTC in January
// (23:00 in Bratislava, CET) and May (local midnight, CEST) has no note in
// May in Europe/Bratislava, and the UTC+1 note in January; in UTC both
// months have the 22:00 note. Also after Merge (the parallel reader).
func TestBucketOffsetPerMonth(t *testing.T) {
	bratislava := mustZone(t, "Europe/Bratislava")
	var csv strings.Builder
	csv.WriteString("timestamp,count(campaign) 200 (a.example),count(campaign) 550 (a.example)\n")
	for _, m := range []time.Month{time.January, time.May} {
		for d := 1; d <= 5; d++ {
			fmt.Fprintf(&csv, "%d,100,3\n", time.Date(2018, m, d, 22, 0, 0, 0, time.UTC).Unix())
		}
	}
	export := func(t *testing.T, loc *time.Location) *Counts {
		x, err := bounces.NewExportReader(strings.NewReader(csv.String()), "wide.csv")
		if err != nil {
			t.Fatal(err)
		}
		c := NewCounts(loc)
		if err := c.AddExport(x, "wide.csv"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// merged: January and May read into separate Counts, then merged
	merged := func(t *testing.T, loc *time.Location) *Counts {
		jan, may := NewCounts(loc), NewCounts(loc)
		for d := 1; d <= 5; d++ {
			jan.AddBucket(time.Date(2018, time.January, d, 22, 0, 0, 0, time.UTC), ExportBucket, "a.example", 200, 100)
			may.AddBucket(time.Date(2018, time.May, d, 22, 0, 0, 0, time.UTC), ExportBucket, "a.example", 200, 100)
		}
		c := NewCounts(loc)
		for _, o := range []*Counts{jan, may} {
			if err := c.Merge(o); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	for _, build := range []struct {
		name string
		f    func(*testing.T, *time.Location) *Counts
	}{{"export", export}, {"merged", merged}} {
		for _, tt := range []struct {
			name     string
			loc      *time.Location
			month    Month
			want     string
			wantNote string // "" for no note
		}{
			{"May in Bratislava", bratislava, Month{2018, time.May}, "00:00", ""},
			{"January in Bratislava", bratislava, Month{2018, time.January}, "23:00", "local days of UTC+2"},
			{"May in UTC", time.UTC, Month{2018, time.May}, "22:00", "local days of UTC+2"},
			{"January in UTC", time.UTC, Month{2018, time.January}, "22:00", "local days of UTC+2"},
		} {
			t.Run(build.name+"/"+tt.name, func(t *testing.T) {
				r, err := Analyze(build.f(t, tt.loc), Options{Month: tt.month, Now: fixedNow})
				if err != nil {
					t.Fatal(err)
				}
				if r.BucketOffset != tt.want || (tt.wantNote == "") != (r.BucketNote == "") || !strings.Contains(r.BucketNote, tt.wantNote) {
					t.Errorf("bucket_offset %q, note %q; want %q, note with %q", r.BucketOffset, r.BucketNote, tt.want, tt.wantNote)
				}
				if tt.wantNote != "" && !strings.Contains(r.BucketNote, tt.want) {
					t.Errorf("note %q does not name %s", r.BucketNote, tt.want)
				}
				var b bytes.Buffer
				if err := WriteJSON(&b, r); err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf(`"bucket_offset": %q`, tt.want); !strings.Contains(b.String(), want) {
					t.Errorf("JSON lacks %s", want)
				}
				b.Reset()
				if err := WriteMarkdown(&b, r); err != nil {
					t.Fatal(err)
				}
				if got := strings.Contains(b.String(), "Bucket starts are"); got != (tt.wantNote != "") {
					t.Errorf("Markdown has the bucket note: %v, want %v", got, tt.wantNote != "")
				}
			})
		}
	}
}

// TestSkippedTotalJSON: with more bad lines than are listed, the JSON lists
// MaxSkippedListed of them and says how many there were (skipped_total),
// and the Markdown says so too.
func TestSkippedTotalJSON(t *testing.T) {
	const bad = MaxSkippedListed + 234
	var in bytes.Buffer
	for i := 0; i < 3*bad; i++ {
		if i%3 == 0 {
			in.WriteString("{not json\n")
			continue
		}
		e := bounces.Event{
			Time: time.Date(2018, time.May, 1+i%28, 10, 0, 0, 0, time.UTC), Recipient: "x@a.example",
			Code: 250, Source: bounces.SourceSMTP,
		}
		if err := bounces.WriteNDJSON(&in, e); err != nil {
			t.Fatal(err)
		}
	}
	c := NewCounts(time.UTC)
	if err := c.AddEvents(bounces.NewNDJSONReader(&in, "events.ndjson").Next, "events.ndjson"); err != nil {
		t.Fatal(err)
	}
	r, err := Analyze(c, Options{Month: Month{2018, time.May}, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Skipped      []Skipped `json:"skipped"`
		SkippedTotal *int64    `json:"skipped_total"`
		Totals       Totals    `json:"totals"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.SkippedTotal == nil || *got.SkippedTotal != bad || len(got.Skipped) != MaxSkippedListed {
		t.Errorf("skipped_total %v, %d listed; want %d, %d listed", got.SkippedTotal, len(got.Skipped), bad, MaxSkippedListed)
	}
	if got.Totals.Attempts != 2*bad {
		t.Errorf("attempts = %d, want the %d good lines", got.Totals.Attempts, 2*bad)
	}
	if len(got.Skipped) > 0 && got.Skipped[0].Location != "events.ndjson:1" {
		t.Errorf("first skipped at %q, want events.ndjson:1", got.Skipped[0].Location)
	}
	b.Reset()
	if err := WriteMarkdown(&b, r); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%s records skipped; the first %d:", num(bad), MaxSkippedListed); !strings.Contains(b.String(), want) {
		t.Errorf("Markdown lacks %q", want)
	}
}
