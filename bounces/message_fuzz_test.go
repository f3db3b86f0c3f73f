package bounces

import (
	"bytes"
	"errors"
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

// mboxSeeds returns the mboxes of testdata: testdata/mbox/*.mbox and the
// corpus samples stored in mbox form (first line a "From " separator).
func mboxSeeds(f *testing.F) [][]byte {
	f.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "mbox", "*.mbox"))
	corpus, _ := filepath.Glob(filepath.Join("testdata", "corpus", "eml", "*.eml"))
	var seeds [][]byte
	for _, p := range append(files, corpus...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if bytes.HasPrefix(b, []byte("From ")) || strings.HasSuffix(p, ".mbox") {
			seeds = append(seeds, b)
		}
	}
	if len(seeds) < 10 {
		f.Fatalf("mboxSeeds: %d mboxes in testdata, want at least 10", len(seeds))
	}
	return seeds
}

// FuzzReadMessages checks that the message splitter of ReadMessages (one
// message, or an mbox) never panics, calls back in order with growing
// offsets, never gives more bytes than it read, gives a single message
// back unchanged, and reports each message it does not give as a
// *RecordError (here the ones over a limit lowered to 8 KiB, so that the
// larger seeds take that path). Seeds: the mboxes of testdata (the mbox
// samples of the corpus and testdata/mbox), the single messages of
// testdata/messages and a few corner cases.
func FuzzReadMessages(f *testing.F) {
	for _, s := range mboxSeeds(f) {
		f.Add(s)
	}
	msgs, _ := filepath.Glob(filepath.Join("testdata", "messages", "*.eml"))
	for _, p := range msgs {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(mboxSample))
	f.Add([]byte("From a\n\nFrom b Thu Jul  2 12:05:05 2020\nx\n>From y\n"))
	f.Add([]byte("From "))
	f.Add([]byte("Subject: x\n\nbody\n"))
	f.Add([]byte("From a Thu Jul  2 12:05:05 2020\n" + strings.Repeat("x", 70<<10) + "\nFrom b Thu Jul  2 12:05:06 2020\nSubject: y\n\nz\n"))
	saved := maxMessageSize
	maxMessageSize = 8 << 10
	f.Cleanup(func() { maxMessageSize = saved })
	f.Fuzz(func(t *testing.T, data []byte) {
		last := int64(-2)
		total, got, skipped := 0, 0, 0
		var single []byte
		n, err := readStream("fuzz", bytes.NewReader(data), func(m mboxMessage) error {
			if m.offset <= last && m.offset != -1 {
				t.Fatalf("message %s at offset %d after %d", m.name, m.offset, last)
			}
			last = m.offset
			total += len(m.data)
			if len(m.data) > maxMessageSize {
				t.Fatalf("message %s of %d bytes, over the limit %d", m.name, len(m.data), maxMessageSize)
			}
			single = append(single[:0], m.data...)
			got++
			return nil
		}, func(re *RecordError) error {
			if !strings.HasPrefix(re.File, "fuzz") || re.Reason == "" || !errors.Is(re, ErrSkipped) {
				t.Fatalf("record %+v: want a location in fuzz, a reason and ErrSkipped", re)
			}
			skipped++
			return nil
		})
		if err != nil {
			t.Fatalf("readStream() error = %v", err)
		}
		if total > len(data) {
			t.Fatalf("readStream() gave %d bytes of %d", total, len(data))
		}
		if got+skipped != n {
			t.Fatalf("readStream() = %d, after %d messages and %d records", n, got, skipped)
		}
		if !bytes.HasPrefix(data, []byte("From ")) {
			switch {
			case n != 1:
				t.Fatalf("readStream() gave %d messages for a single message", n)
			case len(data) <= maxMessageSize && (got != 1 || !bytes.Equal(single, data)):
				t.Fatalf("readStream() changed a single message of %d bytes (%d messages)", len(data), got)
			case len(data) > maxMessageSize && skipped != 1:
				t.Fatalf("readStream() did not report a message of %d bytes over the limit", len(data))
			}
		}
	})
}
