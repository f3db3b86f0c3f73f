package bounces

import (
	"errors"
	"fmt"
	"math/bits"
	"regexp"
	"sort"
	"strings"
)

// Rule says which class an answer gets. All its given conditions must hold;
// an empty condition matches anything, and at least one of Codes, Enhanced,
// Text, Pattern and Domains is required.
//
// Which rule decides when several match (see Classifier): operator rules
// (the extra rules of NewClassifier) first, then provider rules (rules with
// Domains or Provider), then rules on the wording (Text or Pattern) or the
// enhanced status code, then rules on the basic code alone. An extra rule
// that replaces a built-in rule (same ID) is not an operator rule here: it
// takes the tier and the table place of the rule it replaces. Within a tier
// the rule with more conditions wins (text+enhanced > text > enhanced, a
// longer enhanced code > a shorter prefix, with a code > without), and ties
// go to the rule listed first.
type Rule struct {
	ID       string   // unique, e.g. "google.rate.4.2.1"
	Codes    []int    // basic reply codes (any of), 100..999
	Enhanced []string // "5.7.1" exact, or "5.7" / "5" prefixes by component (any of)
	Text     []string // case-insensitive literal substrings (any of); white space runs match one space
	Pattern  string   // a Go regular expression on the text, compiled case-insensitive
	Domains  []string // recipient domains: "yahoo.com" matches yahoo.com and its subdomains (not notyahoo.com); ".yahoo.com" only the subdomains
	Class    Class
	// Hard overrides whether the diagnosis is hard; nil derives it: the
	// class is hard (Class.Hard) and the answer is not temporary (neither a
	// 4xx code nor a 4.x.x enhanced code).
	Hard *bool
	// NotPermanent keeps the rule off a permanent answer: a 5xx basic code
	// together with a 5.x.x enhanced code (RFC 5321 §4.2.1 and RFC 3463:
	// both say permanent failure). Wording that sounds temporary ("service
	// unavailable", "try again later") does not make such an answer
	// transient. false (the zero value): the rule applies to any answer.
	NotPermanent bool
	Explanation  string // one line for operators
	Provider     string // the provider whose documented answer this is ("" for generic rules); a built-in rule with a Provider ranks as provider-specific
	Source       string // where the answer is documented (URL or RFC), for docs/rules.md
}

// The precedence tiers, best first.
const (
	tierOperator = iota
	tierProvider
	tierWording
	tierCode
)

// compiled is a Rule ready for matching.
type compiled struct {
	rule     *Rule
	rank     int32 // position in precedence order; lower wins
	tier     int
	codes    []int
	enh      []enhCode
	hasText  bool
	re       *regexp.Regexp
	domains  []string // normalised, as given (leading "." kept)
	hardSet  bool
	hardVal  bool
	notPerm  bool // Rule.NotPermanent
	tableIdx int
}

// enhCode is a parsed enhanced status code or prefix: n components given.
type enhCode struct {
	n                      int
	class, subject, detail int
}

// key returns the index key of e (components past n are "any").
func (e enhCode) key() uint32 {
	k := uint32(e.n)<<28 | uint32(e.class)<<24
	if e.n >= 2 {
		k |= uint32(e.subject) << 12
	}
	if e.n >= 3 {
		k |= uint32(e.detail)
	}
	return k
}

// parseEnhanced parses "5", "5.7" or "5.7.1" (class 2, 4 or 5; subject and
// detail of one to three digits).
func parseEnhanced(s string) (enhCode, bool) {
	var e enhCode
	if s == "" {
		return e, false
	}
	parts := 0
	i := 0
	for {
		j := i
		v := 0
		for j < len(s) && j-i < 3 && s[j] >= '0' && s[j] <= '9' {
			v = v*10 + int(s[j]-'0')
			j++
		}
		if j == i || (parts == 0 && j-i != 1) {
			return e, false
		}
		switch parts {
		case 0:
			if v != 2 && v != 4 && v != 5 {
				return e, false
			}
			e.class = v
		case 1:
			e.subject = v
		case 2:
			e.detail = v
		}
		parts++
		if j == len(s) {
			break
		}
		if s[j] != '.' || parts == 3 {
			return e, false
		}
		i = j + 1
	}
	e.n = parts
	return e, true
}

// Classifier diagnoses answers with a fixed set of rules. Build it with
// NewClassifier; it is immutable and safe for concurrent use. The zero value
// is not usable.
type Classifier struct {
	rules    []compiled // in precedence order (rank)
	m        *matcher
	kwRules  [][]int32          // keyword id -> ranks of rules with that keyword
	byCode   [1000][]int32      // code -> ranks of rules without Text whose Codes list it
	byEnh    map[uint32][]int32 // enhanced key -> ranks of rules without Text and Codes
	rest     []int32            // rules with neither Text, Codes nor Enhanced
	setWords int
}

// NewClassifier returns a classifier with the built-in rules (DefaultRules)
// and the operator's extra rules. Extra rules win over built-in ones. An
// extra rule with the ID of a built-in rule replaces it and takes its place
// in the precedence order (its tier and its place in the table, see Rule):
// replacing "code.552" changes what a bare 552 means, and wording or an
// enhanced code still decides first; to win over every built-in rule, give
// the rule an ID of its own. An error names the rule's ID and the field at
// fault.
func NewClassifier(extra ...Rule) (*Classifier, error) {
	builtin := DefaultRules()
	seen := make(map[string]bool, len(extra))
	for i := range extra {
		id := extra[i].ID
		if id == "" {
			return nil, fmt.Errorf("bounces: extra rule %d: id: must not be empty", i)
		}
		if seen[id] {
			return nil, fmt.Errorf("bounces: rule %q: id: duplicate", id)
		}
		seen[id] = true
	}
	replacement := make(map[string]int, len(extra))
	builtinIDs := make(map[string]bool, len(builtin))
	for _, r := range builtin {
		builtinIDs[r.ID] = true
	}
	all := make([]Rule, 0, len(builtin)+len(extra))
	tiers := make([]int, 0, len(builtin)+len(extra))
	for i, r := range extra {
		if builtinIDs[r.ID] {
			replacement[r.ID] = i
			continue
		}
		all = append(all, r)
		tiers = append(tiers, tierOperator)
	}
	for i := range builtin {
		tier := ruleTier(&builtin[i])
		if j, ok := replacement[builtin[i].ID]; ok {
			all = append(all, extra[j])
		} else {
			all = append(all, builtin[i])
		}
		tiers = append(tiers, tier)
	}
	return newClassifier(all, tiers)
}

// newClassifier compiles rules; tiers[i] is the precedence tier of
// rules[i].
func newClassifier(rules []Rule, tiers []int) (*Classifier, error) {
	cs := make([]compiled, len(rules))
	ids := make(map[string]bool, len(rules))
	kwIndex := map[string]int32{}
	var words []string
	ruleWords := make([][]int32, len(rules))
	for i := range rules {
		r := &rules[i]
		if ids[r.ID] {
			return nil, fmt.Errorf("bounces: rule %q: id: duplicate", r.ID)
		}
		ids[r.ID] = true
		c, err := compileRule(r)
		if err != nil {
			return nil, err
		}
		c.tier = tiers[i]
		c.tableIdx = i
		for _, t := range r.Text {
			w := normalizeKeyword(t)
			k, ok := kwIndex[w]
			if !ok {
				k = int32(len(words))
				kwIndex[w] = k
				words = append(words, w)
			}
			ruleWords[i] = append(ruleWords[i], k)
		}
		cs[i] = c
	}
	order := make([]int, len(cs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return less(&cs[order[a]], &cs[order[b]])
	})
	c := &Classifier{
		rules:    make([]compiled, len(cs)),
		m:        newMatcher(words),
		kwRules:  make([][]int32, len(words)),
		byEnh:    map[uint32][]int32{},
		setWords: (len(words) + 63) / 64,
	}
	for rank, i := range order {
		cr := cs[i]
		cr.rank = int32(rank)
		c.rules[rank] = cr
		switch {
		case len(ruleWords[i]) > 0:
			for _, k := range ruleWords[i] {
				c.kwRules[k] = appendOnce(c.kwRules[k], int32(rank))
			}
		case len(cr.codes) > 0:
			for _, code := range cr.codes {
				c.byCode[code] = appendOnce(c.byCode[code], int32(rank))
			}
		case len(cr.enh) > 0:
			for _, e := range cr.enh {
				c.byEnh[e.key()] = appendOnce(c.byEnh[e.key()], int32(rank))
			}
		default:
			c.rest = append(c.rest, int32(rank))
		}
	}
	return c, nil
}

func appendOnce(s []int32, v int32) []int32 {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// less orders rules by precedence: tier, then more conditions, then table
// order.
func less(a, b *compiled) bool {
	if a.tier != b.tier {
		return a.tier < b.tier
	}
	if a.hasText != b.hasText {
		return a.hasText
	}
	ae, be := enhDepth(a), enhDepth(b)
	if (ae > 0) != (be > 0) {
		return ae > 0
	}
	if ae != be {
		return ae > be
	}
	if (len(a.codes) > 0) != (len(b.codes) > 0) {
		return len(a.codes) > 0
	}
	if (len(a.domains) > 0) != (len(b.domains) > 0) {
		return len(a.domains) > 0
	}
	return a.tableIdx < b.tableIdx
}

// enhDepth is the fewest components among a rule's enhanced codes (0: none).
func enhDepth(c *compiled) int {
	d := 0
	for _, e := range c.enh {
		if d == 0 || e.n < d {
			d = e.n
		}
	}
	return d
}

// compileRule checks r and prepares it for matching.
func compileRule(r *Rule) (compiled, error) {
	c := compiled{rule: r}
	bad := func(field, format string, args ...any) (compiled, error) {
		return compiled{}, fmt.Errorf("bounces: rule %q: %s: %s", r.ID, field, fmt.Sprintf(format, args...))
	}
	if r.ID == "" {
		return bad("id", "must not be empty")
	}
	if !r.Class.Valid() {
		return bad("class", "invalid class %d", uint8(r.Class))
	}
	if len(r.Codes) == 0 && len(r.Enhanced) == 0 && len(r.Text) == 0 && r.Pattern == "" && len(r.Domains) == 0 {
		return bad("codes", "needs at least one of codes, enhanced, text, pattern, domains")
	}
	for _, code := range r.Codes {
		if code < 100 || code > 999 {
			return bad("codes", "%d is not a three-digit reply code", code)
		}
	}
	c.codes = r.Codes
	for _, s := range r.Enhanced {
		e, ok := parseEnhanced(s)
		if !ok {
			return bad("enhanced", "%q is not an enhanced status code or prefix (\"5\", \"5.7\", \"5.7.1\")", s)
		}
		c.enh = append(c.enh, e)
	}
	for _, t := range r.Text {
		if normalizeKeyword(t) == "" {
			return bad("text", "empty substring")
		}
	}
	c.hasText = len(r.Text) > 0
	if r.Pattern != "" {
		if _, err := regexp.Compile(r.Pattern); err != nil {
			return bad("pattern", "%v", err)
		}
		re, err := regexp.Compile("(?i)" + r.Pattern)
		if err != nil {
			return bad("pattern", "%v", err)
		}
		c.re = re
	}
	for _, d := range r.Domains {
		sub := strings.HasPrefix(d, ".")
		n, err := NormalizeDomain(strings.TrimPrefix(d, "."))
		if err != nil || n == "" || strings.ContainsAny(n, " @") {
			return bad("domains", "%q is not a domain", d)
		}
		if sub {
			n = "." + n
		}
		c.domains = append(c.domains, n)
	}
	if r.Hard != nil {
		c.hardSet, c.hardVal = true, *r.Hard
	}
	c.notPerm = r.NotPermanent
	// A pattern counts as wording for the ordering within a tier.
	c.hasText = c.hasText || c.re != nil
	return c, nil
}

// ruleTier is the precedence tier a built-in rule's conditions give it
// (an operator rule of its own id is in tierOperator).
func ruleTier(r *Rule) int {
	switch {
	case len(r.Domains) > 0 && len(r.Text) == 0 && r.Pattern == "" && len(r.Enhanced) == 0:
		// Domains and codes only: still a rule on the basic code, ranked
		// above the generic rule for the same code.
		return tierCode
	case len(r.Domains) > 0 || r.Provider != "":
		return tierProvider
	case len(r.Text) > 0 || r.Pattern != "" || len(r.Enhanced) > 0:
		return tierWording
	default:
		return tierCode
	}
}

// domainMatch reports whether domain d matches the rule domain p.
func domainMatch(p, d string) bool {
	if p[0] == '.' {
		return len(d) > len(p) && strings.HasSuffix(d, p)
	}
	if len(d) == len(p) {
		return d == p
	}
	return len(d) > len(p) && d[len(d)-len(p)-1] == '.' && strings.HasSuffix(d, p)
}

// answer is the parsed form of the reply Classify works on.
type answer struct {
	code   int
	enh    enhCode
	hasEnh bool
	text   string
	domain string
}

// permanent reports whether both codes of a say permanent failure: a 5xx
// basic code and a 5.x.x enhanced code.
func (a *answer) permanent() bool {
	return a.code >= 500 && a.code < 600 && a.hasEnh && a.enh.class == 5
}

// matches checks every condition of c against a, the regexp last.
func (c *compiled) matches(a *answer) bool {
	if c.notPerm && a.permanent() {
		return false
	}
	if len(c.codes) > 0 {
		ok := false
		for _, code := range c.codes {
			if code == a.code {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(c.enh) > 0 {
		if !a.hasEnh {
			return false
		}
		ok := false
		for _, e := range c.enh {
			if e.class == a.enh.class && (e.n < 2 || e.subject == a.enh.subject) && (e.n < 3 || e.detail == a.enh.detail) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(c.domains) > 0 {
		if a.domain == "" {
			return false
		}
		ok := false
		for _, p := range c.domains {
			if domainMatch(p, a.domain) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if c.re != nil && !c.re.MatchString(a.text) {
		return false
	}
	return true
}

// The diagnoses of answers no rule explains.
var (
	defaultDelivered = Rule{ID: "default.2xx", Class: ClassDelivered, Explanation: "a 2xx answer: the server accepted the message"}
	defaultTransient = Rule{ID: "default.4xx", Class: ClassTransient, Explanation: "a 4xx answer no rule explains: a temporary failure, retry on the domain's schedule"}
	defaultPermanent = Rule{ID: "default.5xx", Class: ClassUnknown, Explanation: "a 5xx answer no rule explains: permanent, but the reason is not known; retry on the default schedule and review"}
	defaultNone      = Rule{ID: "default.unknown", Class: ClassUnknown, Explanation: "no reply code, enhanced code or wording that a rule explains"}
)

// Classify diagnoses the answer r to a message for a recipient at domain
// (lower-case ASCII as NormalizeDomain gives, or "" when not known: then
// rules with Domains do not apply). It reads the code and the enhanced
// code of r as Effective gives them. The diagnosis always names a
// rule: the built-in "default.2xx", "default.4xx", "default.5xx" and
// "default.unknown" when no rule matches. Classify is safe for concurrent
// use and does not allocate.
func (c *Classifier) Classify(r Reply, domain string) Diagnosis {
	code, _, enh, hasEnh := r.effective()
	a := answer{code: code, enh: enh, hasEnh: hasEnh, text: r.Text, domain: domain}

	best := int32(len(c.rules))
	try := func(ranks []int32) {
		for _, rank := range ranks {
			if rank < best && c.rules[rank].matches(&a) {
				best = rank
			}
		}
	}
	if c.setWords > 0 && a.text != "" {
		var stack [16]uint64
		var set []uint64
		if c.setWords <= len(stack) {
			set = stack[:c.setWords]
		} else {
			set = make([]uint64, c.setWords)
		}
		c.m.scan(a.text, set)
		for w, word := range set {
			for word != 0 {
				b := bits.TrailingZeros64(word)
				word &^= 1 << b
				try(c.kwRules[w<<6|b])
			}
		}
	}
	if a.code > 0 {
		try(c.byCode[a.code])
	}
	if a.hasEnh {
		e := a.enh
		for n := 3; n >= 1; n-- {
			e.n = n
			if rs, ok := c.byEnh[e.key()]; ok {
				try(rs)
			}
		}
	}
	try(c.rest)

	var rule *Rule
	hardSet, hardVal := false, false
	if best < int32(len(c.rules)) {
		cr := &c.rules[best]
		rule, hardSet, hardVal = cr.rule, cr.hardSet, cr.hardVal
	} else {
		switch {
		case a.code >= 200 && a.code < 300 || a.code == 0 && a.hasEnh && a.enh.class == 2:
			rule = &defaultDelivered
		case a.code >= 400 && a.code < 500 || a.code == 0 && a.hasEnh && a.enh.class == 4:
			rule = &defaultTransient
		case a.code >= 500 && a.code < 600 || a.code == 0 && a.hasEnh && a.enh.class == 5:
			rule = &defaultPermanent
		default:
			rule = &defaultNone
		}
	}
	d := Diagnosis{Class: rule.Class, Rule: rule.ID, Explanation: rule.Explanation}
	if hardSet {
		d.Hard = hardVal
	} else {
		temporary := a.code >= 400 && a.code < 500 || a.hasEnh && a.enh.class == 4
		d.Hard = rule.Class.Hard() && !temporary
	}
	return d
}

// Effective returns r with the basic and the enhanced code Classify reads
// from it (Text unchanged), so that a caller can show what was classified:
//
//   - when Code is 0 or Enhanced is empty, they are read from Text as
//     ParseReply does; a Code still 0 is then a leading three-digit code of
//     any first digit, such as the ESP export's 605 (suppressed), which
//     ParseReply leaves out because it is not an SMTP reply code;
//   - Enhanced is the first complete enhanced status code in Enhanced
//     ("#5.1.0" gives "5.1.0"), or "" when there is none (a prefix such as
//     "5.7" is not used);
//   - an x.0.0 Enhanced, which says nothing, is replaced by a specific code
//     of the same class in Text ("550 5.0.0" + "... 550 5.1.1 ..." gives
//     5.1.1).
//
// Code is 0 when none is found or it is not 0..999.
func (r Reply) Effective() Reply {
	code, enh, _, _ := r.effective()
	return Reply{Code: code, Enhanced: enh, Text: r.Text}
}

// effective does the work of Effective and also returns the parsed
// enhanced code; it does not allocate.
func (r Reply) effective() (code int, enhanced string, e enhCode, ok bool) {
	code, enhanced = r.Code, r.Enhanced
	if (code == 0 || enhanced == "") && r.Text != "" {
		p := ParseReply(r.Text)
		if code == 0 {
			code = p.Code
		}
		if enhanced == "" {
			enhanced = p.Enhanced
		}
	}
	if enhanced != "" {
		e, ok = parseEnhanced(enhanced)
		if !ok || e.n != 3 {
			// "#5.1.0", "4.4.0 (network status)": find the code inside.
			enhanced, _ = FindEnhanced(enhanced)
			e, ok = parseEnhanced(enhanced)
			ok = ok && e.n == 3
		}
		if !ok {
			enhanced, e = "", enhCode{}
		}
	}
	if ok && e.subject == 0 && e.detail == 0 && r.Text != "" {
		// A DSN Status of x.0.0 says nothing; a specific code of the
		// same class in the diagnostic text says more.
		s := specificEnhanced(r.Text, code)
		if se, sok := parseEnhanced(s); sok && se.n == 3 && se.class == e.class {
			enhanced, e = s, se
		}
	}
	if code == 0 {
		code = leadingCode(r.Text)
	}
	if code < 0 || code > 999 {
		code = 0
	}
	return code, enhanced, e, ok
}

// specificEnhanced returns the enhanced code that follows the basic code
// in s ("... 552 5.2.2 ..." for code 552), else the first one in s, as long
// as it is not x.0.0; or "". A diagnostic that lists several recipients'
// answers holds several codes.
func specificEnhanced(s string, code int) string {
	if code >= 100 && code <= 999 {
		d0, d1, d2 := byte('0'+code/100), byte('0'+code/10%10), byte('0'+code%10)
		for i := 0; i+4 < len(s); i++ {
			if s[i] == d0 && s[i+1] == d1 && s[i+2] == d2 && (s[i+3] == ' ' || s[i+3] == '-') && (i == 0 || !isDigit(s[i-1]) && s[i-1] != '.') {
				if e := firstSpecificEnhanced(s[i+4:], 12); e != "" {
					return e
				}
			}
		}
	}
	return firstSpecificEnhanced(s, len(s))
}

// firstSpecificEnhanced returns the first enhanced code starting within the
// first max bytes of s that is not x.0.0, or "".
func firstSpecificEnhanced(s string, max int) string {
	off := 0
	for off < len(s) && off <= max {
		e, i := FindEnhanced(s[off:])
		if i < 0 || off+i > max {
			return ""
		}
		if !strings.HasSuffix(e, ".0.0") {
			return e
		}
		off += i + len(e)
	}
	return ""
}

// leadingCode reads a three-digit code of any first digit at the start of
// s ("605", "499 ..."), which ParseReply leaves to the export codes' callers
// (see Reply.Effective).
func leadingCode(s string) int {
	s = strings.TrimSpace(s)
	if len(s) < 3 || !isDigit(s[0]) || !isDigit(s[1]) || !isDigit(s[2]) || s[0] == '0' {
		return 0
	}
	if len(s) > 3 && (isDigit(s[3]) || isLetter(s[3]) || s[3] == '.') {
		return 0
	}
	return int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
}

// ClassifyEvent diagnoses an event: its code, enhanced code and text, for
// its domain (taken from the recipient when Domain is empty). An event from
// an ARF feedback report (SourceARF) is a complaint whatever its code.
func (c *Classifier) ClassifyEvent(e Event) Diagnosis {
	if e.Source == SourceARF {
		return Diagnosis{Class: ClassComplaint, Hard: true, Rule: arfRule.ID, Explanation: arfRule.Explanation}
	}
	domain := e.Domain
	if domain == "" && e.Recipient != "" {
		domain, _ = DomainOf(e.Recipient)
	}
	return c.Classify(Reply{Code: e.Code, Enhanced: e.Enhanced, Text: e.Text}, domain)
}

var arfRule = Rule{ID: "arf.feedback", Class: ClassComplaint, Explanation: "an ARF feedback report: the recipient marked the message as spam; suppress the address"}

// errNoCondition is wrapped by config validation for a rule without any
// condition.
var errNoCondition = errors.New("needs at least one of codes, enhanced, text, domains")
