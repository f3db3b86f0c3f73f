package feedback

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback/report"
)

// parallelInput returns n lines of NDJSON over May 2018 with a bad line
// every badEvery lines (of several kinds), blank lines, CRLF endings, a
// byte order mark at a line start and a line over bounces.MaxLineBytes.
func parallelInput(n, badEvery int) []byte {
	domains := []string{"gmail.com", "centrum.sk", "seznam.cz", "icloud.com", "yahoo.com"}
	codes := []int{250, 250, 250, 250, 452, 550, 554, 605}
	start := time.Date(2018, time.May, 1, 0, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		switch {
		case i%badEvery == 0:
			bad := []string{`{"time":"2018-05-32T00:00:00Z","code":250}`, `not json`, `{"time":1525132800,"code":99}`, `{"code":250}`, "\xef\xbb\xbf" + `{"time":1525132800,"code":250,"recipient":"a@b.cz"}`}
			b.WriteString(bad[i/badEvery%len(bad)])
		case i%97 == 0:
			// blank
		case i == n/3:
			b.WriteString(`{"time":1525132800,"code":250,"text":"` + strings.Repeat("x", bounces.MaxLineBytes) + `"}`)
		default:
			t := start.Add(time.Duration(i) * 31 * 24 * time.Hour / time.Duration(n))
			fmt.Fprintf(&b, `{"time":"%s","recipient":"user%d@%s","code":%d,"text":"x\"y"}`, t.Format(time.RFC3339), i, domains[i%len(domains)], codes[i*7%len(codes)])
		}
		if i%5 == 0 {
			b.WriteString("\r")
		}
		if i < n {
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

// reportJSON is the JSON report of May 2018 from c.
func reportJSON(t *testing.T, c *report.Counts) string {
	t.Helper()
	r, err := report.Analyze(c, report.Options{Month: report.Month{Year: 2018, Month: time.May}, Now: time.Date(2018, 6, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := report.WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestReadSourceAtParallel(t *testing.T) {
	old := minParallelSize
	minParallelSize = 0
	t.Cleanup(func() { minParallelSize = old })
	ctx := context.Background()
	for _, tt := range []struct {
		name        string
		n, badEvery int
	}{
		{"bad lines in every range", 3000, 101},
		{"more bad lines than are listed", 6000, 3},
		{"tiny", 7, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := parallelInput(tt.n, tt.badEvery)
			seq := report.NewCounts(time.UTC)
			if err := ReadSource(ctx, "events.ndjson", bytes.NewReader(data), FormatAuto, seq, dec2018); err != nil {
				t.Fatal(err)
			}
			if seq.SkippedTotal() == 0 {
				t.Fatal("the input has no bad lines")
			}
			want := reportJSON(t, seq)
			for _, c := range []struct {
				workers  int
				partSize int64 // 1: partsPerWorker ranges per worker
			}{{1, 16 << 20}, {2, 16 << 20}, {3, 16 << 20}, {4, 16 << 20}, {7, 16 << 20}, {16, 16 << 20}, {2, 1}, {3, 1}, {2, int64(len(data) / 5)}} {
				workers := c.workers
				oldPart := partSize
				partSize = c.partSize
				par := report.NewCounts(time.UTC)
				var read int64
				opts := ReadOptions{Workers: workers, ProgressFunc: func(n int64) { read += n }}
				if workers > 1 {
					opts.ProgressFunc = nil // called concurrently
				}
				err := ReadSourceAt(ctx, "events.ndjson", bytes.NewReader(data), int64(len(data)), FormatAuto, par, dec2018, opts)
				partSize = oldPart
				if err != nil {
					t.Fatal(err)
				}
				if par.SkippedTotal() != seq.SkippedTotal() {
					t.Errorf("ReadSourceAt(workers %d, part size %d) skipped %d, want %d", workers, c.partSize, par.SkippedTotal(), seq.SkippedTotal())
				}
				if got := reportJSON(t, par); got != want {
					t.Errorf("ReadSourceAt(workers %d, part size %d) report differs from ReadSource's:\n%s", workers, c.partSize, firstDiff(got, want))
				}
				if workers == 1 && read != int64(len(data)) {
					t.Errorf("ReadSourceAt progress = %d bytes, want %d", read, len(data))
				}
			}
		})
	}
}

// firstDiff shows where two texts first differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) && i < len(w); i++ {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d: got %s\n         want %s", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("got %d lines, want %d", len(g), len(w))
}

func TestLineBounds(t *testing.T) {
	inputs := []string{"", "a", "a\n", "\n\n\n", "ab\ncd\nef\n", "\xef\xbb\xbfa\n\xef\xbb\xbfb\nc\n", strings.Repeat("x", 200) + "\ny\n"}
	for _, in := range inputs {
		for n := 1; n <= 8; n++ {
			b, err := lineBounds(strings.NewReader(in), int64(len(in)), n)
			if err != nil {
				t.Fatalf("lineBounds(%q, %d) = %v", in, n, err)
			}
			if len(b) != n+1 || b[0] != 0 || b[n] != int64(len(in)) {
				t.Fatalf("lineBounds(%q, %d) = %v, want %d bounds from 0 to %d", in, n, b, n+1, len(in))
			}
			for k := 1; k < n; k++ {
				at := b[k]
				if at < b[k-1] || at > 0 && at < int64(len(in)) && in[at-1] != '\n' || strings.HasPrefix(in[at:], "\xef\xbb\xbf") && at > 0 {
					t.Fatalf("lineBounds(%q, %d) = %v: bound %d is not at a line start without a BOM", in, n, b, k)
				}
			}
		}
	}
}

func TestReadSourceAtCanceled(t *testing.T) {
	old := minParallelSize
	minParallelSize = 0
	t.Cleanup(func() { minParallelSize = old })
	data := parallelInput(2000, 50)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := ReadSourceAt(ctx, "events.ndjson", bytes.NewReader(data), int64(len(data)), FormatNDJSON, report.NewCounts(time.UTC), dec2018, ReadOptions{Workers: 4})
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("ReadSourceAt(canceled) = %v, want context canceled", err)
	}
}
