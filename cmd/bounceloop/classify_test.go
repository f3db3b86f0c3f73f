package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestClassifyJSONCode checks that "code" and "enhanced" are the codes the
// diagnosis read: the export codes too (605 used to print 0 while the rule
// was code.605).
func TestClassifyJSONCode(t *testing.T) {
	tests := []struct {
		input    string
		code     int
		enhanced string
		rule     string
	}{
		{"605", 605, "", "code.605"},
		{"499", 499, "", "code.499"},
		{"200", 200, "", "code.200"},
		{"550 5.1.1 <jan@azet.sk>: User unknown", 550, "5.1.1", ""},
		{"550 5.0.0 <jan@azet.sk>... 550 5.2.2 Mailbox full", 550, "5.2.2", ""},
		{"smtp; 554 5.7.1 Message rejected as spam", 554, "5.7.1", ""},
		{"Mailbox full", 0, "", ""},
	}
	args := []string{"classify", "--json"}
	for _, tt := range tests {
		args = append(args, tt.input)
	}
	out, errs, code := runCmd(t, "", args...)
	if code != exitOK {
		t.Fatalf("classify --json = %d; stderr %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(tests) {
		t.Fatalf("classify --json printed %d lines, want %d:\n%s", len(lines), len(tests), out)
	}
	for i, tt := range tests {
		var rec classifyRecord
		if err := json.Unmarshal([]byte(lines[i]), &rec); err != nil {
			t.Fatalf("line %d %q: %v", i+1, lines[i], err)
		}
		if rec.Input != tt.input || rec.Code != tt.code || rec.Enhanced != tt.enhanced || tt.rule != "" && rec.Rule != tt.rule {
			t.Errorf("classify --json %q = code %d enhanced %q rule %s, want %d %q %s", tt.input, rec.Code, rec.Enhanced, rec.Rule, tt.code, tt.enhanced, tt.rule)
		}
	}
}
