package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/feedback/report"
)

// dec2018 reads every Postfix line in 2018 (no Postfix input here).
var dec2018 = report.Month{Year: 2018, Month: time.December}

// benchData returns the generator's NDJSON for n events of May 2018.
func benchData(tb testing.TB, n int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if err := writeEvents(context.Background(), w, genParams{month: report.Month{Year: 2018, Month: time.May}, events: n, seed: 1}); err != nil {
		tb.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkReadSourceNDJSON is the report's sequential ingest of the
// benchmark's events (from memory): decode and count.
func BenchmarkReadSourceNDJSON(b *testing.B) {
	const n = 200_000
	data := benchData(b, n)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := report.NewCounts(time.UTC)
		if err := feedback.ReadSource(context.Background(), "bench", bytes.NewReader(data), feedback.FormatNDJSON, c, dec2018); err != nil {
			b.Fatal(err)
		}
		if c.SkippedTotal() != 0 {
			b.Fatalf("skipped %d", c.SkippedTotal())
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

func TestWriteEventsDeterministic(t *testing.T) {
	a, b := benchData(t, 5000), benchData(t, 5000)
	if !bytes.Equal(a, b) {
		t.Fatal("writeEvents wrote different files for the same seed")
	}
	if got := bytes.Count(a, []byte("\n")); got != 5000 {
		t.Fatalf("writeEvents wrote %d lines, want 5000", got)
	}
}

// BenchmarkReadSourceAtFile is the report's ingest of the benchmark's
// events from a file, in parallel over GOMAXPROCS ranges.
func BenchmarkReadSourceAtFile(b *testing.B) {
	const n = 400_000
	path := filepath.Join(b.TempDir(), "events.ndjson")
	if err := os.WriteFile(path, benchData(b, n), 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(st.Size())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := report.NewCounts(time.UTC)
		if err := feedback.ReadSourceAt(context.Background(), path, f, st.Size(), feedback.FormatAuto, c, dec2018, feedback.ReadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}
