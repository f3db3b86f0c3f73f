package bounces

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Config is the [bounces] section of config.toml: the operator's rules,
// added to the built-in ones. The zero value (no rules) is valid and keeps
// the built-in table as it is.
//
//	[[bounces.rules]]
//	id = "centrum-quota"
//	codes = [552]
//	text = "schr[aá]nka je pln[aá]"
//	domains = ["centrum.sk"]
//	class = "mailbox_full"
//	explanation = "centrum.sk says the mailbox is full in Slovak"
//
// The entries are in RuleList (toml key "rules"); the method Rules turns
// them into Rule values.
type Config struct {
	RuleList []RuleConfig `toml:"rules"`
}

// RuleConfig is one [[bounces.rules]] entry. All given conditions must hold
// and at least one of Codes, Enhanced, Text and Domains is required. Text
// is a Go regular expression matched case-insensitively against the
// answer. Hard, when set, overrides whether the diagnosis is hard. Operator
// rules win over every built-in rule (see Rule), except an entry whose ID is
// a built-in rule's: it replaces that rule and takes its place in the
// precedence order, so that replacing "code.552" (a bare 552) leaves the
// wording and enhanced-code rules deciding first, as they did; see
// NewClassifier.
type RuleConfig struct {
	ID          string   `toml:"id"`
	Codes       []int    `toml:"codes"`
	Enhanced    []string `toml:"enhanced"`
	Text        string   `toml:"text"`
	Domains     []string `toml:"domains"`
	Class       string   `toml:"class"`
	Hard        *bool    `toml:"hard"`
	Explanation string   `toml:"explanation"`
}

// Validate reports the first problem of the section; its message names the
// key, as in `bounces.rules[2] ("my-rule").text: error parsing regexp: ...`.
func (c Config) Validate() error {
	_, err := c.Rules()
	return err
}

// Rules returns the operator rules for NewClassifier, or an error naming
// the key at fault.
func (c Config) Rules() ([]Rule, error) {
	out := make([]Rule, 0, len(c.RuleList))
	ids := make(map[string]int, len(c.RuleList))
	for i, rc := range c.RuleList {
		key := fmt.Sprintf("bounces.rules[%d]", i)
		if rc.ID != "" {
			key = fmt.Sprintf("bounces.rules[%d] (%q)", i, rc.ID)
		}
		bad := func(field, format string, args ...any) error {
			if field != "" {
				field = "." + field
			}
			return fmt.Errorf("bounces: %s%s: %s", key, field, fmt.Sprintf(format, args...))
		}
		if strings.TrimSpace(rc.ID) == "" {
			return nil, bad("id", "must not be empty")
		}
		if j, dup := ids[rc.ID]; dup {
			return nil, bad("id", "duplicate of bounces.rules[%d]", j)
		}
		ids[rc.ID] = i
		if len(rc.Codes) == 0 && len(rc.Enhanced) == 0 && rc.Text == "" && len(rc.Domains) == 0 {
			return nil, bad("", "%v", errNoCondition)
		}
		for _, code := range rc.Codes {
			if code < 100 || code > 999 {
				return nil, bad("codes", "%d is not a three-digit reply code", code)
			}
		}
		for _, e := range rc.Enhanced {
			if _, ok := parseEnhanced(e); !ok {
				return nil, bad("enhanced", "%q is not an enhanced status code or prefix (\"5\", \"5.7\", \"5.7.1\")", e)
			}
		}
		if rc.Text != "" {
			if _, err := regexp.Compile(rc.Text); err != nil {
				return nil, bad("text", "%v", err)
			}
		}
		for _, d := range rc.Domains {
			if _, err := NormalizeDomain(strings.TrimPrefix(d, ".")); err != nil || strings.TrimPrefix(d, ".") == "" || strings.ContainsAny(d, " @") {
				return nil, bad("domains", "%q is not a domain", d)
			}
		}
		if rc.Class == "" {
			return nil, bad("class", "must be set (one of %s)", classList())
		}
		class, err := ParseClass(rc.Class)
		if err != nil {
			return nil, bad("class", "unknown class %q (want one of %s)", rc.Class, classList())
		}
		expl := rc.Explanation
		if expl == "" {
			expl = "operator rule " + rc.ID
		}
		r := Rule{ID: rc.ID, Codes: rc.Codes, Enhanced: rc.Enhanced, Pattern: rc.Text, Domains: rc.Domains, Class: class, Hard: rc.Hard, Explanation: expl, Source: "config.toml"}
		if _, err := compileRule(&r); err != nil {
			// compileRule checks the same things; keep its reason.
			var msg string
			if e := errors.Unwrap(err); e != nil {
				msg = e.Error()
			} else {
				msg = strings.TrimPrefix(err.Error(), "bounces: ")
			}
			return nil, bad("", "%s", msg)
		}
		out = append(out, r)
	}
	return out, nil
}

func classList() string {
	names := make([]string, 0, numClasses)
	for _, c := range Classes() {
		names = append(names, c.String())
	}
	return strings.Join(names, ", ")
}
