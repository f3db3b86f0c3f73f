package bounces

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Thresholds of TestCorpusAccuracy, set just under what the parsers and the
// built-in rules achieve (see docs/accuracy.md); the targets are 85%
// and 90%.
const (
	minClassAgreement = 0.93
	minGroupAgreement = 0.94
)

// TestSisimaiMapping checks that the mapping table covers every reason in
// the corpus and that the groups of the mapped classes are the README's.
func TestSisimaiMapping(t *testing.T) {
	groups := map[string]Group{
		"userunknown": GroupSuppress, "feedback": GroupSuppress, "mailboxfull": GroupRetry, "expired": GroupRetry,
		"onhold": GroupRetry, "mesgtoobig": GroupResendSmall, "toomanyconn": GroupThrottle, "blocked": GroupReview,
		"authfailure": GroupReview, "vacation": GroupNone, "delivered": GroupNone,
	}
	for reason, want := range groups {
		if got := reasonClass[reason].Group(); got != want {
			t.Errorf("reasonClass[%q].Group() = %v, want %v", reason, got, want)
		}
	}
	for _, r := range loadCorpus(t) {
		if _, ok := reasonClass[r.Reason]; !ok {
			t.Errorf("reason %q of %s has no class", r.Reason, r.EML)
		}
	}
}

// TestCorpusAccuracy parses every corpus message, classifies its reports and
// scores them against Sisimai's labels: class agreement and action-group
// agreement. Run with -v to see the confusion list of the misses.
func TestCorpusAccuracy(t *testing.T) {
	rows := loadCorpus(t)
	c, err := NewClassifier()
	if err != nil {
		t.Fatalf("NewClassifier() error = %v", err)
	}
	reports := map[string][]Report{}
	parseErrs := map[string]error{}
	for _, r := range rows {
		if _, ok := reports[r.EML]; ok || parseErrs[r.EML] != nil {
			continue
		}
		// Two samples hold two messages in mbox form; Sisimai reads them
		// as a mailbox too.
		var reps []Report
		var perr error
		err := ReadMessages(filepath.Join("testdata", "corpus", r.EML), func(name string, rd io.Reader) error {
			rs, err := ParseMessage(rd)
			if err != nil {
				perr = err
			}
			reps = append(reps, rs...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(reps) == 0 {
			parseErrs[r.EML] = perr
			continue
		}
		reports[r.EML] = reps
	}

	type miss struct{ want, got Class }
	misses := map[miss][]string{}
	classOK, groupOK, noReport := 0, 0, 0
	var detail, extract strings.Builder
	codeRows, codeOK, statusRows, statusOK, rcptRows, rcptOK := 0, 0, 0, 0, 0, 0
	for _, r := range rows {
		want := reasonClass[r.Reason]
		reps := reports[r.EML]
		if r.Index-1 >= len(reps) {
			noReport++
			k := miss{want, 255}
			misses[k] = append(misses[k], fmt.Sprintf("%s#%d", filepath.Base(r.EML), r.Index))
			fmt.Fprintf(&detail, "%s#%d %s: no report (%v)\n", filepath.Base(r.EML), r.Index, r.Reason, parseErrs[r.EML])
			continue
		}
		rep := reps[r.Index-1]
		if r.ReplyCode != "" {
			codeRows++
			if fmt.Sprint(rep.Reply.Code) == r.ReplyCode {
				codeOK++
			} else {
				fmt.Fprintf(&extract, "%s#%d code %d, sisimai %s (%q)\n", filepath.Base(r.EML), r.Index, rep.Reply.Code, r.ReplyCode, clipBytes(rep.Reply.Text, 120))
			}
		}
		if r.Status != "" && !r.Pseudo {
			statusRows++
			if rep.Reply.Enhanced == r.Status {
				statusOK++
			} else {
				fmt.Fprintf(&extract, "%s#%d status %q, sisimai %s (%q)\n", filepath.Base(r.EML), r.Index, rep.Reply.Enhanced, r.Status, clipBytes(rep.Reply.Text, 120))
			}
		}
		if r.Recipient != "" {
			rcptRows++
			if strings.EqualFold(rep.Recipient, r.Recipient) {
				rcptOK++
			}
		}
		d := rep.Diagnose(c)
		if !d.Class.Valid() {
			t.Errorf("%s#%d: Diagnose() class %d is invalid", r.EML, r.Index, d.Class)
		}
		if d.Class == want {
			classOK++
		}
		if d.Class.Group() == want.Group() {
			groupOK++
		}
		if d.Class != want {
			k := miss{want, d.Class}
			misses[k] = append(misses[k], fmt.Sprintf("%s#%d", filepath.Base(r.EML), r.Index))
			fmt.Fprintf(&detail, "%s#%d %s→%s rule=%s code=%d enh=%q rcpt=%q text=%q | sisimai: %s %s %q\n",
				filepath.Base(r.EML), r.Index, r.Reason, d.Class, d.Rule, rep.Reply.Code, rep.Reply.Enhanced, rep.Recipient,
				clipBytes(rep.Reply.Text, 200), r.ReplyCode, r.Status, clipBytes(r.Diagnostic, 160))
		}
	}
	n := float64(len(rows))
	classPct, groupPct := float64(classOK)/n, float64(groupOK)/n
	t.Logf("rows %d, messages %d, parse errors %d, rows without report %d", len(rows), len(reports)+len(parseErrs), len(parseErrs), noReport)
	t.Logf("extraction: reply code %d/%d, status %d/%d (non-pseudo), DSN recipient %d/%d agree with Sisimai",
		codeOK, codeRows, statusOK, statusRows, rcptOK, rcptRows)
	t.Logf("class agreement:        %d/%d = %.1f%%", classOK, len(rows), 100*classPct)
	t.Logf("action-group agreement: %d/%d = %.1f%%", groupOK, len(rows), 100*groupPct)

	keys := make([]miss, 0, len(misses))
	for k := range misses {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(misses[keys[i]]) != len(misses[keys[j]]) {
			return len(misses[keys[i]]) > len(misses[keys[j]])
		}
		return keys[i].want < keys[j].want || keys[i].want == keys[j].want && keys[i].got < keys[j].got
	})
	var conf strings.Builder
	for _, k := range keys {
		got := k.got.String()
		if k.got == 255 {
			got = "(no report)"
		}
		ex := misses[k]
		if len(ex) > 4 {
			ex = ex[:4]
		}
		same := ""
		if k.got != 255 && k.want.Group() == k.got.Group() {
			same = " (same group)"
		}
		fmt.Fprintf(&conf, "  %-18s → %-18s %3d%s  e.g. %s\n", k.want, got, len(misses[k]), same, strings.Join(ex, " "))
	}
	t.Logf("misses (expected → got, count, examples):\n%s", conf.String())
	if testing.Verbose() {
		t.Logf("every miss:\n%s", detail.String())
		t.Logf("extraction differences:\n%s", extract.String())
	}
	if classPct < minClassAgreement {
		t.Errorf("class agreement %.1f%%, want ≥ %.1f%%", 100*classPct, 100*minClassAgreement)
	}
	if groupPct < minGroupAgreement {
		t.Errorf("action-group agreement %.1f%%, want ≥ %.1f%%", 100*groupPct, 100*minGroupAgreement)
	}
}
