package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/bounceloop/bounceloop/policy"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string // "" for success
		rules   int
	}{
		{"empty", "", "", 0},
		{"comments only", "# nothing\n", "", 0},
		{"one rule", "[[bounces.rules]]\nid = \"a\"\ncodes = [550]\nclass = \"invalid_recipient\"\n", "", 1},
		{"unknown section", "[smtpp]\nhost = \"x\"\n", "unknown key smtpp", 0},
		{"unknown rule key", "[[bounces.rules]]\nid = \"a\"\ncodes = [550]\nclass = \"invalid_recipient\"\ncolour = \"red\"\n", "test.toml:5: unknown key bounces.rules[0].colour", 0},
		{"unknown key in the second rule", "[[bounces.rules]]\nid = \"a\"\ncodes = [550]\nclass = \"invalid_recipient\"\n\n[[bounces.rules]]\nid = \"b\"\ncodes = [552]\nclas = \"mailbox_full\"\n", "test.toml:9: unknown key bounces.rules[1].clas", 0},
		{"two unknown keys", "[policy]\nfoo = 1\n\n[web]\nbar = 2\n", "unknown key policy.foo (line 2), web.bar (line 5)", 0},
		{"unknown section line", "\n[smtpp]\nhost = \"x\"\n", "test.toml:2: unknown key smtpp", 0},
		{"wrong type", "[[bounces.rules]]\nid = \"a\"\ncodes = \"550\"\nclass = \"invalid_recipient\"\n", "codes", 0},
		{"invalid rule", "[[bounces.rules]]\nid = \"a\"\nclass = \"invalid_recipient\"\n", `bounces.rules[0] ("a")`, 0},
		{"syntax", "\n\nkey = = 1\n", "test.toml:3", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.toml", []byte(tt.body))
			if (err != nil) != (tt.wantErr != "") {
				t.Fatalf("Parse(%q) error = %v, want error %q", tt.body, err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "test.toml") {
					t.Errorf("Parse(%q) error = %q, want it to name the file and %q", tt.body, err, tt.wantErr)
				}
				return
			}
			if got := len(c.Bounces.RuleList); got != tt.rules {
				t.Errorf("Parse(%q) has %d rules, want %d", tt.body, got, tt.rules)
			}
		})
	}
}

func TestLoadEmptyPathIsDefault(t *testing.T) {
	c, err := Load("")
	if err != nil || len(c.Bounces.RuleList) != 0 {
		t.Errorf("Load(\"\") = %+v, %v, want the zero Config", c, err)
	}
}

// TestShippedConfig loads the repository's config.toml: it must stay valid
// and its policy must be the built-in one it documents.
func TestShippedConfig(t *testing.T) {
	c, err := Load("../../../../config.toml")
	if err != nil {
		t.Fatalf("config.toml: %v", err)
	}
	if got, want := c.Policy.WithDefaults(), policy.DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("config.toml's [policy] differs from policy.DefaultConfig():\n got %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(c.Policy.Providers, policy.DefaultConfig().Providers) {
		t.Errorf("config.toml lists providers other than the built-in ones")
	}
}
