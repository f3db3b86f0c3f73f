package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// sharedData is the shared data set, kept once in the bounces fixtures.
const (
	sharedData = "campaign-responses-2018Q2.csv"
	sharedPath = "../../bounces/testdata/export/" + sharedData
)

// fixedNow is the clock of the golden files.
var fixedNow = time.Date(2018, time.June, 1, 8, 0, 0, 0, time.UTC)

// loadShared reads the shared data set into Counts in loc.
func loadShared(tb testing.TB, loc *time.Location) *Counts {
	tb.Helper()
	f, err := os.Open(sharedPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	x, err := bounces.NewExportReader(f, sharedData)
	if err != nil {
		tb.Fatal(err)
	}
	c := NewCounts(loc)
	if err := c.AddExport(x, sharedData); err != nil {
		tb.Fatal(err)
	}
	return c
}

func may2018(tb testing.TB) *Report {
	tb.Helper()
	r, err := Analyze(loadShared(tb, time.UTC), Options{Month: Month{2018, time.May}, Now: fixedNow})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestGolden(t *testing.T) {
	r := may2018(t)
	for _, tt := range []struct {
		name  string
		file  string
		write func(*bytes.Buffer, *Report) error
	}{
		{"markdown", "may2018.md.golden", func(b *bytes.Buffer, r *Report) error { return WriteMarkdown(b, r) }},
		{"json", "may2018.json.golden", func(b *bytes.Buffer, r *Report) error { return WriteJSON(b, r) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.write(&b, r); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.file)
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s differs from %s; run go test ./feedback/report -update and review the diff", tt.name, path)
			}
		})
	}
}
