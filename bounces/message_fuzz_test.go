package bounces

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzSeeds returns the fixtures and a selection of corpus messages (one or
// two of each family) as seeds.
func fuzzSeeds(f *testing.F) [][]byte {
	f.Helper()
	var seeds [][]byte
	files, _ := filepath.Glob(filepath.Join("testdata", "messages", "*.eml"))
	corpus, _ := filepath.Glob(filepath.Join("testdata", "corpus", "eml", "*.eml"))
	seen := map[string]int{}
	for _, c := range corpus {
		fam := filepath.Base(c)
		if i := strings.LastIndexByte(fam, '-'); i > 0 {
			fam = fam[:i]
		}
		if seen[fam] < 2 {
			seen[fam]++
			files = append(files, c)
		}
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzParseMessage checks that ParseMessage never panics, never returns
// reports together with an error, and that every report diagnoses to a
// valid class.
func FuzzParseMessage(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	c, err := NewClassifier()
	if err != nil {
		f.Fatalf("NewClassifier() error = %v", err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		reps, err := ParseMessage(bytes.NewReader(data))
		if err != nil {
			if reps != nil {
				t.Fatalf("ParseMessage() = %d reports and error %v", len(reps), err)
			}
			return
		}
		if len(reps) == 0 {
			t.Fatalf("ParseMessage() = no reports and no error")
		}
		for _, r := range reps {
			if d := r.Diagnose(c); !d.Class.Valid() || d.Rule == "" {
				t.Fatalf("Diagnose(%+v) = %+v, want a valid class and a rule", r, d)
			}
			if r.Action >= numActions {
				t.Fatalf("report %+v has an invalid action", r)
			}
			_ = r.Event()
		}
	})
}

// FuzzReadMessages checks that the message splitter of ReadMessages (one
// message, or an mbox) never panics, calls back in order with growing
// offsets and never gives more bytes than it read.
func FuzzReadMessages(f *testing.F) {
	f.Add([]byte(mboxSample))
	f.Add([]byte("From a\n\nFrom b Thu Jul  2 12:05:05 2020\nx\n>From y\n"))
	f.Add([]byte("From "))
	f.Add([]byte("Subject: x\n\nbody\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		last := int64(-2)
		total := 0
		n, err := readStream("fuzz", bytes.NewReader(data), func(m mboxMessage) error {
			if m.offset <= last && m.offset != -1 {
				t.Fatalf("message %s at offset %d after %d", m.name, m.offset, last)
			}
			last = m.offset
			total += len(m.data)
			return nil
		})
		if err != nil {
			t.Fatalf("readStream() error = %v", err)
		}
		if total > len(data) {
			t.Fatalf("readStream() gave %d bytes of %d", total, len(data))
		}
		if !bytes.HasPrefix(data, []byte("From ")) && n != 1 {
			t.Fatalf("readStream() gave %d messages for a single message", n)
		}
	})
}
