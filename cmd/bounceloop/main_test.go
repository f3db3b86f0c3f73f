package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCmd runs the command line in-process and returns stdout, stderr and
// the exit status.
func runCmd(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return runCmdCtx(context.Background(), stdin, args...)
}

// runCmdCtx is runCmd with a context (cancel it to "send SIGTERM").
func runCmdCtx(ctx context.Context, stdin string, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"no command", nil, exitUsage, "Commands:", ""},
		{"help", []string{"help"}, exitOK, "classify", ""},
		{"unknown command", []string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{"command help", []string{"classify", "--help"}, exitOK, "", "Usage: bounceloop classify"},
		{"help command", []string{"help", "dsn"}, exitOK, "", "Usage: bounceloop dsn"},
		{"bad flag", []string{"classify", "--nope"}, exitUsage, "", "flag provided but not defined"},
		{"bad log level", []string{"classify", "--log-level", "loud", "250 ok"}, exitUsage, "", "--log-level"},
		{"dsn without path", []string{"dsn"}, exitUsage, "", "no PATH"},
		{"missing config", []string{"classify", "--config", "/nonexistent/config.toml", "250 ok"}, exitUsage, "", "nonexistent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs, code := runCmd(t, "", tt.args...)
			if code != tt.wantCode {
				t.Errorf("run(%q) = %d, want %d (stderr %q)", tt.args, code, tt.wantCode, errs)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("run(%q) stdout = %q, want it to contain %q", tt.args, out, tt.wantOut)
			}
			if !strings.Contains(errs, tt.wantErr) {
				t.Errorf("run(%q) stderr = %q, want it to contain %q", tt.args, errs, tt.wantErr)
			}
		})
	}
}

func TestClassifyJSON(t *testing.T) {
	in := "550 5.1.1 <jan@azet.sk>: Recipient address rejected: User unknown\n\n554 5.7.1 Message rejected as spam\r\n250 2.0.0 OK\n605\n"
	out, errs, code := runCmd(t, in, "classify", "--json")
	if code != exitOK {
		t.Fatalf("classify --json = %d, want 0; stderr %q", code, errs)
	}
	want := []struct {
		input, class string
		code         int
		enhanced     string
		hard         bool
	}{
		{"550 5.1.1 <jan@azet.sk>: Recipient address rejected: User unknown", "invalid_recipient", 550, "5.1.1", true},
		{"554 5.7.1 Message rejected as spam", "spam_blocked", 554, "5.7.1", false},
		{"250 2.0.0 OK", "delivered", 250, "2.0.0", false},
		{"605", "suppressed", 0, "", true},
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want) {
		t.Fatalf("classify --json printed %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d %q: %v", i+1, line, err)
		}
		for _, k := range []string{"input", "code", "enhanced", "class", "hard", "rule", "explanation"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("line %d lacks %q: %s", i+1, k, line)
			}
		}
		w := want[i]
		if rec["input"] != w.input || rec["class"] != w.class || rec["enhanced"] != w.enhanced || rec["hard"] != w.hard {
			t.Errorf("line %d = %s, want input %q class %q enhanced %q hard %v", i+1, line, w.input, w.class, w.enhanced, w.hard)
		}
		if w.code != 0 && rec["code"] != float64(w.code) {
			t.Errorf("line %d code = %v, want %d", i+1, rec["code"], w.code)
		}
		if rec["rule"] == "" || rec["explanation"] == "" {
			t.Errorf("line %d has an empty rule or explanation: %s", i+1, line)
		}
	}
}

func TestClassifyArgsText(t *testing.T) {
	out, _, code := runCmd(t, "", "classify", "--domain", "Gmail.com", "452 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.")
	if code != exitOK {
		t.Fatalf("classify = %d, want 0", code)
	}
	if f := strings.Split(out, "\t"); len(f) != 4 || f[0] != "rate_limited" || f[1] != "soft" {
		t.Errorf("classify text output = %q, want rate_limited, soft, rule, input", out)
	}
}

func TestClassifyLongLineSkipped(t *testing.T) {
	in := "550 5.1.1 user unknown\n" + strings.Repeat("x", maxAnswerLine+10) + "\n250 ok\n"
	out, errs, code := runCmd(t, in, "classify")
	if code != exitSkipped {
		t.Errorf("classify with a long line = %d, want %d", code, exitSkipped)
	}
	if n := strings.Count(out, "\n"); n != 2 {
		t.Errorf("classify printed %d lines, want the 2 good ones:\n%s", n, out)
	}
	if !strings.Contains(errs, "-:2") {
		t.Errorf("stderr %q does not name line 2", errs)
	}
	_, _, code = runCmd(t, in, "classify", "--strict")
	if code != exitSkipped {
		t.Errorf("classify --strict with a long line = %d, want %d", code, exitSkipped)
	}
}

func TestConfigRules(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	writeFile(t, good, `
[[bounces.rules]]
id = "acme.quota"
codes = [552]
text = "(?i)acme storage exhausted"
class = "mailbox_full"
explanation = "ACME's wording for a full mailbox"
`)
	out, errs, code := runCmd(t, "", "classify", "--config", good, "552 acme storage exhausted")
	if code != exitOK || !strings.HasPrefix(out, "mailbox_full\tsoft\tacme.quota\t") {
		t.Errorf("classify with an operator rule = %d %q (stderr %q), want mailbox_full by acme.quota", code, out, errs)
	}

	tests := []struct {
		name, body, want string
	}{
		{"unknown key", "[bounces]\nrulez = []\n", "bounces.rulez"},
		{"bad regexp", "[[bounces.rules]]\nid = \"broken\"\ntext = \"(\"\nclass = \"spam_blocked\"\n", `"broken"`},
		{"bad class", "[[bounces.rules]]\nid = \"x\"\ncodes = [550]\nclass = \"spamm\"\n", "class"},
		{"syntax", "[[bounces.rules]\n", "bad.toml:2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "bad.toml")
			writeFile(t, path, tt.body)
			_, errs, code := runCmd(t, "", "classify", "--config", path, "250 ok")
			if code != exitUsage {
				t.Errorf("classify with %s = %d, want %d", tt.name, code, exitUsage)
			}
			if !strings.Contains(errs, tt.want) {
				t.Errorf("stderr = %q, want it to name %q", errs, tt.want)
			}
		})
	}
}

// TestShippedConfig loads the repository's config.toml: it must stay valid.
func TestShippedConfig(t *testing.T) {
	_, errs, code := runCmd(t, "", "classify", "--config", "../../config.toml", "250 ok")
	if code != exitOK {
		t.Errorf("config.toml does not load: %d %s", code, errs)
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDSNCommand(t *testing.T) {
	dir := "../../bounces/testdata/messages"
	out, errs, code := runCmd(t, "", "dsn", "--json", dir)
	if code != exitSkipped {
		t.Errorf("dsn over a folder with a non-bounce = %d, want %d", code, exitSkipped)
	}
	if !strings.Contains(errs, "not-bounce.eml") {
		t.Errorf("stderr %q does not name the skipped file", errs)
	}
	var got []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("bad JSON line %q: %v", line, err)
		}
		for _, k := range []string{"file", "recipient", "code", "enhanced", "text", "class", "hard", "rule", "action", "feedback_type"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line lacks %q: %s", k, line)
			}
		}
		got = append(got, m)
	}
	want := []struct{ file, recipient, class, action string }{
		{"arf-abuse.eml", "jana@centrum.sk", "complaint", "complained"},
		{"autoreply-ooo.eml", "petra@seznam.cz", "auto_reply", "auto_replied"},
		{"dsn-postfix-two.eml", "jan@azet.sk", "invalid_recipient", "failed"},
		{"dsn-postfix-two.eml", "eva@gmail.com", "mailbox_full", "delayed"},
		{"qmail-two.eml", "petr@example.cz", "invalid_recipient", "failed"},
		{"qmail-two.eml", "jana@example.cz", "mailbox_full", "failed"},
	}
	if len(got) != len(want) {
		t.Fatalf("dsn printed %d records, want %d:\n%s", len(got), len(want), out)
	}
	for i, w := range want {
		g := got[i]
		if !strings.HasSuffix(g["file"].(string), w.file) || g["recipient"] != w.recipient || g["class"] != w.class || g["action"] != w.action {
			t.Errorf("record %d = %v, want %s %s %s %s", i, g, w.file, w.recipient, w.class, w.action)
		}
	}

	_, _, code = runCmd(t, "", "dsn", "--strict", dir)
	if code != exitSkipped {
		t.Errorf("dsn --strict = %d, want %d", code, exitSkipped)
	}
	_, errs, code = runCmd(t, "", "dsn", "/nonexistent/box")
	if code != exitSkipped || !strings.Contains(errs, "/nonexistent/box") {
		t.Errorf("dsn on a missing path = %d %q, want %d naming the path", code, errs, exitSkipped)
	}
	out, _, code = runCmd(t, "", "dsn", dir+"/dsn-postfix-two.eml")
	if code != exitOK || strings.Count(out, "\n") != 2 {
		t.Errorf("dsn on one file = %d %q, want 0 and two lines", code, out)
	}
}

// TestReadmeClassifyExamples runs the classify examples of README.md
// ("$ go run ./cmd/bounceloop classify 'ANSWER'" and the line after it)
// and compares their output with the README's, so that the README cannot
// go stale.
func TestReadmeClassifyExamples(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	const prefix = "$ go run ./cmd/bounceloop classify '"
	n := 0
	for i, ln := range lines {
		if !strings.HasPrefix(ln, prefix) || !strings.HasSuffix(ln, "'") || i+1 >= len(lines) {
			continue
		}
		n++
		answer := strings.TrimSuffix(strings.TrimPrefix(ln, prefix), "'")
		out, errs, code := runCmd(t, "", "classify", answer)
		if code != exitOK {
			t.Fatalf("classify %q = %d: %s", answer, code, errs)
		}
		if got, want := strings.TrimSpace(out), lines[i+1]; got != want {
			t.Errorf("README.md:%d: classify %q prints\n%s\nREADME says\n%s", i+2, answer, got, want)
		}
	}
	if n == 0 {
		t.Fatal("README.md has no classify example")
	}
}
