package bounces

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// addSeeds adds every file under testdata/dir, and each of its lines, to
// the fuzz corpus.
func addSeeds(f *testing.F, dir string) {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds in testdata/%s: %v", dir, err)
	}
	for _, p := range paths {
		if strings.HasSuffix(p, ".md") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) > 4096 {
			// Large files: their head, and their lines one by one.
			f.Add(b[:bytes.LastIndexByte(b[:4096], '\n')+1])
		} else {
			f.Add(b)
		}
		for _, line := range bytes.SplitAfter(b, []byte("\n")) {
			if len(line) <= 4096 {
				f.Add(line)
			}
		}
	}
}

// checkRecords runs the caller pattern over next and checks the readers'
// promises: no value together with an error, only *RecordError or io.EOF
// (the input is in memory, so there are no read errors), termination.
func checkRecords[T comparable](t *testing.T, input []byte, next func() (T, error), check func(T)) {
	t.Helper()
	var zero T
	for n := 0; ; n++ {
		if n > len(input)+2 {
			t.Fatalf("more records than input bytes: Next does not stop")
		}
		v, err := next()
		if err == io.EOF {
			if v != zero {
				t.Fatalf("Next() = %+v with io.EOF", v)
			}
			return
		}
		if err != nil {
			var re *RecordError
			if !errors.As(err, &re) || !errors.Is(err, ErrSkipped) {
				t.Fatalf("Next() = %v, want a *RecordError or io.EOF", err)
			}
			if v != zero {
				t.Fatalf("Next() = %+v with error %v", v, err)
			}
			if re.Line < 1 || re.Reason == "" || re.File != "fuzz" {
				t.Fatalf("RecordError %+v: want file, line and reason", re)
			}
			continue
		}
		check(v)
	}
}

func checkEvent(t *testing.T, ev Event) {
	t.Helper()
	if ev.Time.IsZero() || ev.Time.Location() != time.UTC {
		t.Fatalf("event %+v: want a non-zero time in UTC", ev)
	}
	if ev.Source >= numSources {
		t.Fatalf("event %+v: invalid source", ev)
	}
	if ev.Code < 100 || ev.Code > 999 {
		t.Fatalf("event %+v: code out of range", ev)
	}
	if d, err := NormalizeDomain(ev.Domain); err != nil || d != ev.Domain {
		t.Fatalf("event %+v: domain not normalised (%q, %v)", ev, d, err)
	}
}

func FuzzNDJSON(f *testing.F) {
	addSeeds(f, "ndjson")
	f.Add([]byte(`{"time":"2018-05-17T08:03:11Z","code":250,"x":[{"y":"\u00e9"}]}`))
	f.Add([]byte(`{"time":1526544191.5,"code":"250","text":"a\"b"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewNDJSONReader(bytes.NewReader(data), "fuzz")
		checkRecords(t, data, r.Next, func(ev Event) {
			checkEvent(t, ev)
			// What the writer writes, the reader reads back.
			back, err := DecodeEvent(AppendNDJSON(nil, ev))
			if err != nil {
				t.Fatalf("DecodeEvent(AppendNDJSON(%+v)) = %v", ev, err)
			}
			if ev.Text == strings.ToValidUTF8(ev.Text, "\ufffd") && ev.Recipient == strings.ToValidUTF8(ev.Recipient, "\ufffd") &&
				ev.Campaign == strings.ToValidUTF8(ev.Campaign, "\ufffd") && ev.MessageID == strings.ToValidUTF8(ev.MessageID, "\ufffd") &&
				ev.Enhanced == strings.ToValidUTF8(ev.Enhanced, "\ufffd") && back != ev {
				t.Fatalf("round trip of %+v = %+v", ev, back)
			}
		})
		// The fast scanner agrees with encoding/json on every line.
		for _, line := range bytes.Split(data, []byte("\n")) {
			checkFastMatchesSlow(t, line)
		}
		// NextBorrowed reads what Next reads.
		borrowedEquals(t, data)
	})
}

func FuzzPostfix(f *testing.F) {
	addSeeds(f, "postfix")
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewPostfixReader(bytes.NewReader(data), "fuzz", 2018, time.FixedZone("CEST", 7200))
		checkRecords(t, data, r.Next, func(ev Event) {
			checkEvent(t, ev)
			if ev.Source != SourceLog || ev.Recipient == "" || r.QueueID() == "" || r.Status() == "" {
				t.Fatalf("event %+v (queue id %q, status %q): want source log, a recipient, a queue id and a status", ev, r.QueueID(), r.Status())
			}
		})
	})
}

func FuzzExport(f *testing.F) {
	addSeeds(f, "export")
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := NewExportReader(bytes.NewReader(data), "fuzz")
		if err != nil {
			if x != nil {
				t.Fatalf("NewExportReader = %v with error %v", x, err)
			}
			if !strings.HasPrefix(err.Error(), "bounces: fuzz") {
				t.Fatalf("NewExportReader error %q: want the bounces: prefix and the name", err)
			}
			return
		}
		checkRecords(t, data, x.Next, func(c DailyCount) {
			if c.Start.IsZero() || c.Start.Location() != time.UTC || c.Count <= 0 || c.Code < 100 || c.Code > 999 || c.Domain == "" {
				t.Fatalf("count %+v: want a UTC start, a positive count, a code and a domain", c)
			}
			if d, err := NormalizeDomain(c.Domain); err != nil || d != c.Domain {
				t.Fatalf("count %+v: domain not normalised (%q, %v)", c, d, err)
			}
		})
	})
}
