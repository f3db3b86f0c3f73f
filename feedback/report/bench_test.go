package report

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
)

// benchEvents returns n synthetic events of May 2018 over 60 domains, in
// time order, with a realistic mix of codes.
func benchEvents(n int) []bounces.Event {
	rng := rand.New(rand.NewPCG(1, 2))
	domains := make([]string, 60)
	for i := range domains {
		domains[i] = fmt.Sprintf("domain%02d.example", i)
	}
	domains[0] = "gmail.com"
	codes := []int{250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 421, 451, 452, 550, 552, 554, 605}
	start := time.Date(2018, time.May, 1, 0, 0, 0, 0, time.UTC)
	step := 31 * 24 * time.Hour / time.Duration(n)
	out := make([]bounces.Event, n)
	for i := range out {
		d := domains[0]
		if rng.IntN(2) == 0 {
			d = domains[rng.IntN(len(domains))]
		}
		out[i] = bounces.Event{Time: start.Add(time.Duration(i) * step), Domain: d, Code: codes[rng.IntN(len(codes))]}
	}
	return out
}

func BenchmarkCountsAdd(b *testing.B) {
	const n = 1 << 20
	events := benchEvents(n)
	for _, tt := range []struct {
		name string
		loc  *time.Location
	}{
		{"UTC", time.UTC},
		{"Europe/Bratislava", mustZone(b, "Europe/Bratislava")},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			c := NewCounts(tt.loc)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e := &events[i%n]
				c.Add(e.Time, e.Domain, e.Code, 1)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkIngestNDJSON decodes NDJSON events and counts them: the report's
// per-event path end to end (without the disk).
func BenchmarkIngestNDJSON(b *testing.B) {
	const n = 200_000
	var buf bytes.Buffer
	for _, e := range benchEvents(n) {
		e.Recipient = "someone@" + e.Domain
		e.Domain = ""
		e.Source = bounces.SourceSMTP
		if err := bounces.WriteNDJSON(&buf, e); err != nil {
			b.Fatal(err)
		}
	}
	data := buf.Bytes()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := NewCounts(time.UTC)
		if err := c.AddEvents(bounces.NewNDJSONReader(bytes.NewReader(data), "bench").Next, "bench"); err != nil {
			b.Fatal(err)
		}
		if c.SkippedTotal() != 0 {
			b.Fatalf("skipped %d", c.SkippedTotal())
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkAnalyze(b *testing.B) {
	c := loadShared(b, time.UTC)
	opts := Options{Month: Month{2018, time.May}, Now: fixedNow}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Analyze(c, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReportSharedMonth is the shared month's report end to end: read
// the export, analyze, write the Markdown.
func BenchmarkReportSharedMonth(b *testing.B) {
	data, err := os.ReadFile(sharedPath)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		x, err := bounces.NewExportReader(bytes.NewReader(data), sharedData)
		if err != nil {
			b.Fatal(err)
		}
		c := NewCounts(time.UTC)
		if err := c.AddExport(x, sharedData); err != nil {
			b.Fatal(err)
		}
		r, err := Analyze(c, Options{Month: Month{2018, time.May}, Now: fixedNow})
		if err != nil {
			b.Fatal(err)
		}
		if err := WriteMarkdown(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/report")
}

func mustZone(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

// BenchmarkWriteHTML writes the shared month's HTML page (the report is
// analysed once, outside the loop).
func BenchmarkWriteHTML(b *testing.B) {
	r := may2018(b)
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		if err := WriteHTML(&buf, r); err != nil {
			b.Fatal(err)
		}
	}
}
