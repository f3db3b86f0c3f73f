package policy

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
)

// Scope is what a Rule's suspension holds back.
type Scope string

// The scopes of a Rule.
const (
	// ScopeProvider pauses the provider group's asynq queue (visible in the
	// web UI) for the suspension and resumes it automatically. A domain of
	// no provider group is held back as by ScopeDomain instead (the default
	// queue is never paused).
	ScopeProvider Scope = "provider"
	// ScopeDomain holds back every message to the recipient's domain for
	// the suspension, ScopeRecipient every message to the recipient (a
	// hold in Redis, seen by every process within half a second): a held
	// message is retried when the hold ends, without spending its retry
	// budget.
	ScopeDomain    Scope = "domain"
	ScopeRecipient Scope = "recipient"
)

// Rule is a [[policy.rules]] entry: an answer that suspends sending. All
// given conditions must hold; at least one of codes, enhanced and text is
// required.
//
//	[[policy.rules]]
//	id = "google.421.4.7.28"
//	codes = [421]
//	enhanced = ["4.7.28"]
//	scope = "provider"
//	suspend = "30m"
type Rule struct {
	ID       string   `toml:"id"`
	Codes    []int    `toml:"codes"`    // basic codes, any of
	Enhanced []string `toml:"enhanced"` // enhanced codes, exact or a prefix by component ("4.7"), any of
	Text     string   `toml:"text"`     // a Go regular expression on the answer, case-insensitive
	Domains  []string `toml:"domains"`  // recipient domains (and subdomains), any of; empty: all
	Scope    Scope    `toml:"scope"`    // provider (default), domain or recipient
	Suspend  Duration `toml:"suspend"`  // how long; required
}

// DefaultRules are the built-in suspension rules. Google documents
// "421 4.7.28 ... unusual rate of unsolicited mail" as a block to wait out;
// Yahoo's "[TSS04]" deferrals ask senders to slow down and try again later.
func DefaultRules() []Rule {
	return []Rule{
		{ID: "google.421.4.7.28", Codes: []int{421}, Enhanced: []string{"4.7.28"}, Scope: ScopeProvider, Suspend: Duration(30 * time.Minute)},
		{ID: "yahoo.tss04", Text: `\[TSS04\]`, Scope: ScopeProvider, Suspend: Duration(2 * time.Hour)},
	}
}

var ruleRegexps sync.Map // pattern -> *regexp.Regexp

func ruleRegexp(p string) (*regexp.Regexp, error) {
	if re, ok := ruleRegexps.Load(p); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile("(?i)" + p)
	if err != nil {
		return nil, err
	}
	ruleRegexps.Store(p, re)
	return re, nil
}

// validate checks one rule; key is its TOML path.
func (r Rule) validate(key string) error {
	switch {
	case strings.TrimSpace(r.ID) == "":
		return fmt.Errorf("%s.id: must not be empty", key)
	case len(r.Codes) == 0 && len(r.Enhanced) == 0 && r.Text == "":
		return fmt.Errorf("%s: needs at least one of codes, enhanced, text", key)
	case r.Suspend <= 0:
		return fmt.Errorf("%s.suspend: must be > 0", key)
	}
	switch r.Scope {
	case "", ScopeProvider, ScopeDomain, ScopeRecipient:
	default:
		return fmt.Errorf("%s.scope: %q is not provider, domain or recipient", key, r.Scope)
	}
	for i, c := range r.Codes {
		if c < 200 || c > 599 {
			return fmt.Errorf("%s.codes[%d]: %d is not a reply code", key, i, c)
		}
	}
	if r.Text != "" {
		if _, err := ruleRegexp(r.Text); err != nil {
			return fmt.Errorf("%s.text: %v", key, err)
		}
	}
	return nil
}

// matches reports whether the answer r to domain meets every condition.
func (r Rule) matches(a bounces.Reply, domain string) bool {
	if len(r.Codes) > 0 && !contains(r.Codes, a.Code) {
		return false
	}
	if len(r.Enhanced) > 0 {
		ok := false
		for _, e := range r.Enhanced {
			if a.Enhanced == e || strings.HasPrefix(a.Enhanced, e+".") {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.Domains) > 0 {
		ok := false
		for _, d := range r.Domains {
			if domainMatches(domain, d) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if r.Text != "" {
		re, err := ruleRegexp(r.Text)
		if err != nil || !re.MatchString(a.Text) {
			return false
		}
	}
	return true
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Suspension returns the first rule of c that the answer a to domain
// matches, if any.
func (c Config) Suspension(a bounces.Reply, domain string) (Rule, bool) {
	for _, r := range c.Rules {
		if r.matches(a, domain) {
			if r.Scope == "" {
				r.Scope = ScopeProvider
			}
			return r, true
		}
	}
	return Rule{}, false
}

// mergeRules returns base with over applied: a rule of over with the id of
// a rule of base replaces it, the others are added after.
func mergeRules(base, over []Rule) []Rule {
	out := make([]Rule, 0, len(base)+len(over))
	replaced := map[string]bool{}
	for _, r := range over {
		replaced[r.ID] = true
	}
	for _, r := range base {
		if !replaced[r.ID] {
			out = append(out, r)
		}
	}
	return append(out, over...)
}
