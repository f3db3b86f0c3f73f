package feedback

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bounceloop/bounceloop/feedback/report"
)

// FuzzReadSourceAt reads arbitrary NDJSON in parallel (three workers, a
// range per few bytes) and sequentially: both give the same error or
// none, the same skipped records and the same report; and format
// detection of any input never panics and agrees with ReadSource.
func FuzzReadSourceAt(f *testing.F) {
	f.Add(parallelInput(12, 3))
	f.Add(parallelInput(5, 2))
	f.Add([]byte("{\"time\":\"2018-05-17T08:03:11Z\",\"code\":550,\"recipient\":\"a@b.cz\"}\r\n\r\n\xef\xbb\xbf{\"time\":1526544191,\"code\":250,\"domain\":\"gmail.com\"}\nnot json\n"))
	f.Add([]byte("timestamp,550 (gmail.com) count(campaign)\n1526515200,3\n"))
	f.Add([]byte("May 17 08:03:11 mx postfix/smtp[123]: 4A1B2C3D: to=<a@b.cz>, relay=x[1.2.3.4]:25, dsn=5.1.1, status=bounced (550 5.1.1 unknown)\n"))
	if b, err := os.ReadFile("../bounces/testdata/ndjson/events.ndjson"); err == nil {
		f.Add(b[:bytes.LastIndexByte(b[:min(len(b), 2048)], '\n')+1])
	}
	oldMin, oldPart := minParallelSize, partSize
	minParallelSize, partSize = 0, 1
	f.Cleanup(func() { minParallelSize, partSize = oldMin, oldPart })
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 8<<10 {
			return
		}
		fmt, _ := DetectFormat(data)
		seq := report.NewCounts(time.UTC)
		seqErr := ReadSource(ctx, "fuzz", bytes.NewReader(data), FormatAuto, seq, dec2018)
		par := report.NewCounts(time.UTC)
		parErr := ReadSourceAt(ctx, "fuzz", bytes.NewReader(data), int64(len(data)), FormatAuto, par, dec2018, ReadOptions{Workers: 3})
		if (seqErr == nil) != (parErr == nil) || seqErr != nil && seqErr.Error() != parErr.Error() {
			t.Fatalf("ReadSource() = %v, ReadSourceAt() = %v", seqErr, parErr)
		}
		if seqErr != nil {
			if !strings.HasPrefix(seqErr.Error(), "feedback: fuzz") {
				t.Fatalf("ReadSource() error %q does not name the source", seqErr)
			}
			return
		}
		if fmt == FormatAuto {
			t.Fatalf("ReadSource() read a source DetectFormat cannot tell")
		}
		if par.SkippedTotal() != seq.SkippedTotal() {
			t.Fatalf("ReadSourceAt() skipped %d, ReadSource() %d", par.SkippedTotal(), seq.SkippedTotal())
		}
		if got, want := mayReport(par), mayReport(seq); got != want {
			t.Fatalf("ReadSourceAt() report differs from ReadSource()'s:\n%s", firstDiff(got, want))
		}
	})
}

// mayReport is the JSON report of May 2018 from c, or its error.
func mayReport(c *report.Counts) string {
	r, err := report.Analyze(c, report.Options{Month: report.Month{Year: 2018, Month: time.May}, Now: time.Date(2018, 6, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		return "error: " + err.Error()
	}
	var b bytes.Buffer
	if err := report.WriteJSON(&b, r); err != nil {
		return "error: " + err.Error()
	}
	return b.String()
}
