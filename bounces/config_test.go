package bounces

import (
	"strings"
	"testing"
)

func TestConfigRuleList(t *testing.T) {
	yes := true
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "empty", cfg: Config{}},
		{name: "ok", cfg: Config{RuleList: []RuleConfig{{ID: "my-rule", Codes: []int{552}, Text: `schr[aá]nka je pln[aá]`, Domains: []string{"centrum.sk"}, Class: "mailbox_full", Hard: &yes}}}},
		{name: "bad regexp", cfg: Config{RuleList: []RuleConfig{{ID: "a", Codes: []int{550}, Class: "spam_blocked"}, {ID: "b", Codes: []int{550}, Class: "spam_blocked"}, {ID: "my-rule", Text: "(", Class: "spam_blocked"}}},
			wantErr: `bounces: bounces.rules[2] ("my-rule").text: error parsing regexp: missing closing ): ` + "`(`"},
		{name: "unknown class", cfg: Config{RuleList: []RuleConfig{{ID: "x", Codes: []int{554}, Class: "spamm"}}},
			wantErr: `bounces: bounces.rules[0] ("x").class: unknown class "spamm"`},
		{name: "no class", cfg: Config{RuleList: []RuleConfig{{ID: "x", Codes: []int{554}}}},
			wantErr: `bounces: bounces.rules[0] ("x").class: must be set`},
		{name: "no condition", cfg: Config{RuleList: []RuleConfig{{ID: "a", Codes: []int{550}, Class: "spam_blocked"}, {ID: "b", Class: "spam_blocked"}}},
			wantErr: `bounces: bounces.rules[1] ("b"): needs at least one of codes, enhanced, text, domains`},
		{name: "no id", cfg: Config{RuleList: []RuleConfig{{Codes: []int{550}, Class: "spam_blocked"}}},
			wantErr: `bounces: bounces.rules[0].id: must not be empty`},
		{name: "duplicate id", cfg: Config{RuleList: []RuleConfig{{ID: "a", Codes: []int{550}, Class: "spam_blocked"}, {ID: "a", Codes: []int{551}, Class: "spam_blocked"}}},
			wantErr: `bounces: bounces.rules[1] ("a").id: duplicate of bounces.rules[0]`},
		{name: "bad code", cfg: Config{RuleList: []RuleConfig{{ID: "a", Codes: []int{5500}, Class: "spam_blocked"}}},
			wantErr: `bounces: bounces.rules[0] ("a").codes: 5500 is not a three-digit reply code`},
		{name: "bad enhanced", cfg: Config{RuleList: []RuleConfig{{ID: "a", Enhanced: []string{"5.7.x"}, Class: "spam_blocked"}}},
			wantErr: `bounces: bounces.rules[0] ("a").enhanced: "5.7.x" is not`},
		{name: "bad domain", cfg: Config{RuleList: []RuleConfig{{ID: "a", Domains: []string{"jan@azet.sk"}, Class: "spam_blocked"}}},
			wantErr: `bounces: bounces.rules[0] ("a").domains: "jan@azet.sk" is not a domain`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := tt.cfg.Rules()
			verr := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil || verr != nil || len(rules) != len(tt.cfg.RuleList) {
					t.Fatalf("Rules(%+v) = %d rules, %v (Validate %v), want %d rules and no error", tt.cfg, len(rules), err, verr, len(tt.cfg.RuleList))
				}
				if _, err := NewClassifier(rules...); err != nil {
					t.Fatalf("NewClassifier(Rules(%+v)) = %v", tt.cfg, err)
				}
				return
			}
			if err == nil || rules != nil {
				t.Fatalf("Rules(%+v) = %v, %v, want error %q", tt.cfg, rules, err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("Rules(%+v) error = %q, want prefix %q", tt.cfg, err, tt.wantErr)
			}
			if verr == nil || verr.Error() != err.Error() {
				t.Errorf("Validate(%+v) = %v, want %v", tt.cfg, verr, err)
			}
		})
	}
}

func TestConfigRulesApply(t *testing.T) {
	cfg := Config{RuleList: []RuleConfig{
		{ID: "centrum-quota", Codes: []int{552}, Text: `schr[aá]nka\s+je\s+pln[aá]`, Domains: []string{"centrum.sk"}, Class: "mailbox_full"},
		{ID: "code.554", Codes: []int{554}, Class: "spam_blocked", Explanation: "554 is spam here"},
	}}
	rules, err := cfg.Rules()
	if err != nil {
		t.Fatal(err)
	}
	c := newTestClassifier(t, rules...)
	tests := []struct {
		answer, domain string
		want           Class
		wantRule       string
	}{
		{"552 Schránka je plná", "centrum.sk", ClassMailboxFull, "centrum-quota"},
		{"552 Schránka je plná", "azet.sk", ClassMessageTooLarge, "code.552"},
		{"554 Transaction failed", "gmail.com", ClassSpamBlocked, "code.554"},
	}
	for _, tt := range tests {
		t.Run(tt.answer+"@"+tt.domain, func(t *testing.T) {
			d := c.Classify(ParseReply(tt.answer), tt.domain)
			if d.Class != tt.want || d.Rule != tt.wantRule {
				t.Errorf("Classify(%q, %q) = %v/%s, want %v/%s", tt.answer, tt.domain, d.Class, d.Rule, tt.want, tt.wantRule)
			}
		})
	}
}
