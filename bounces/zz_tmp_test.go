package bounces

import (
	"bytes"
	"testing"
)

func BenchmarkTmpSet(b *testing.B) {
	var lines []string
	for _, l := range bytes.Split(bytes.TrimSpace(benchNDJSONLines(1000)), []byte("\n")) {
		lines = append(lines, string(l))
	}
	tot := 0
	for _, l := range lines {
		tot += len(l)
	}
	b.Logf("avg len %d", tot/len(lines))
	b.Run("set", func(b *testing.B) {
		for b.Loop() {
			for _, l := range lines {
				var q quoteBitmap
				if !q.set(l) {
					b.Fatal()
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(1000*b.N), "ns/line")
	})
	b.Run("plainascii", func(b *testing.B) {
		for b.Loop() {
			for _, l := range lines {
				if !plainASCII(l) {
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(1000*b.N), "ns/line")
	})
	b.Run("walk", func(b *testing.B) {
		qs := make([]quoteBitmap, len(lines))
		for i, l := range lines {
			qs[i].set(l)
		}
		for b.Loop() {
			for i, l := range lines {
				var f eventFields
				if !f.scanPlain(l, &qs[i]) {
					b.Fatal()
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(1000*b.N), "ns/line")
	})
}
