package bounces

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzClassify checks that for any answer ParseReply then Classify never
// panics and always gives a valid class, a rule id and an explanation.
func FuzzClassify(f *testing.F) {
	for _, fx := range loadFixtures(f) {
		f.Add(fx.answer, fx.domain)
	}
	if fh, err := os.Open(filepath.Join("testdata", "corpus", "sisimai-labeled.jsonl")); err == nil {
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var row corpusRow
			if json.Unmarshal(sc.Bytes(), &row) == nil && row.Diagnostic != "" {
				f.Add(row.Diagnostic, "")
			}
		}
		fh.Close()
	}
	c, err := NewClassifier(Rule{ID: "fuzz.op", Codes: []int{550}, Pattern: `lock(ed)?\s`, Domains: []string{".example.org"}, Class: ClassTransient, Explanation: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s, domain string) {
		r := ParseReply(s)
		for _, d := range []Diagnosis{c.Classify(r, domain), c.Classify(Reply{Text: s}, domain), c.ClassifyEvent(Event{Text: s, Domain: domain, Enhanced: s})} {
			if !d.Class.Valid() || d.Rule == "" || d.Explanation == "" {
				t.Fatalf("Classify(%q, %q) = %+v, want a valid class, a rule and an explanation", s, domain, d)
			}
			if d.Hard && !d.Class.Hard() && d.Rule != "fuzz.op" {
				t.Fatalf("Classify(%q) = %+v: hard but the class is not", s, d)
			}
		}
	})
}
