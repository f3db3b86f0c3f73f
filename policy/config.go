package policy

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
)

// Built-in defaults, used where no level of the configuration sets a field.
const (
	DefaultMaxConnections           = 4   // SMTP connections per key and process
	DefaultMaxMessagesPerConnection = 100 // messages before a connection is closed
	DefaultPriority                 = 1   // asynq queue weight
)

// DefaultRate is the built-in rate of a key when no level sets one: 10/s.
var DefaultRate = Rate{N: 10, Per: time.Second}

// Built-in defaults of the feedback loop's settings (see Settings). The
// adaptive rate may go a factor of 10 either way of the configured rate,
// so a rate configured 4× too high or too low still finds the receiver's
// capacity; docs/loop.md measures these defaults against such a receiver.
const (
	DefaultMinRateDivisor      = 10             // min_rate: rate / 10
	DefaultMaxRateFactor       = 10             // max_rate: rate × 10
	DefaultThrottleCut         = 0.8            // throttle_cut
	DefaultRecoveryStep        = 0.1            // recovery_step
	DefaultRecoveryInterval    = time.Second    // recovery_interval
	DefaultMaxAge              = 48 * time.Hour // max_age
	DefaultMailboxFullAttempts = 3              // mailbox_full_attempts
	DefaultReviewThreshold     = 0.05           // review_threshold
	DefaultReviewWindow        = 500            // review_window

	// MinRecoveryInterval is the shortest recovery_interval accepted: the
	// loop's state reaches every process within a second.
	MinRecoveryInterval = time.Second
	// MaxReviewWindow is the largest review_window accepted (the window is
	// a list in Redis).
	MaxReviewWindow = 100000
)

// defaultRetrySchedule is the built-in retry_schedule, shared read-only by
// every resolved Settings that does not set one.
var defaultRetrySchedule = []Duration{
	Duration(5 * time.Minute), Duration(15 * time.Minute), Duration(time.Hour), Duration(4 * time.Hour),
}

// DefaultRetrySchedule returns the built-in retry_schedule, ["5m", "15m",
// "1h", "4h"], as a new slice.
func DefaultRetrySchedule() []Duration { return slices.Clone(defaultRetrySchedule) }

// Queue names with a fixed meaning.
const (
	DefaultQueue = "default" // domains of no provider group
	ReviewQueue  = "review"  // reserved: messages flagged for an operator (feedback issue)
)

// Settings are the sending and feedback settings of the defaults, a provider
// group or a domain. A zero field (a nil RetrySchedule) is not set and
// inherits, field by field: domain -> provider -> default -> built-in
// default. Burst goes with Rate: a level that sets Rate but not Burst gets
// the computed default burst, not the burst of a less specific level. The
// built-in MinRate and MaxRate are computed from the resolved Rate.
//
// Settings hold a slice (RetrySchedule), so they are not comparable with
// ==; a resolved RetrySchedule may share its array with the Config or the
// built-in default and must not be modified.
type Settings struct {
	// Rate is the pace of the key, shared by every process. Built-in
	// default "10/s" (DefaultRate).
	Rate Rate `toml:"rate"`
	// Burst is how many messages may go at once after an idle period.
	// Default: max(1, Rate per second rounded up).
	Burst int `toml:"burst"`
	// MaxConnections caps open SMTP connections per key in each process.
	// Default 4.
	MaxConnections int `toml:"max_connections"`
	// MaxMessagesPerConnection is how many messages one SMTP connection
	// carries before it is closed. Default 100.
	MaxMessagesPerConnection int `toml:"max_messages_per_connection"`
	// Priority is the asynq weight of the queue (providers and the default
	// only; an error in a domain entry). Default 1.
	Priority int `toml:"priority"`

	// MinRate is the floor of the adaptive rate: the feedback loop never
	// cuts the key's rate below it. Default: Rate / 10 (at least one
	// message every MaxRateInterval). Must be <= Rate.
	MinRate Rate `toml:"min_rate"`
	// MaxRate is the ceiling of the adaptive rate: successes raise the rate
	// up to it. Default: Rate × 10 (at most MaxRatePerSecond). Must be >=
	// Rate.
	MaxRate Rate `toml:"max_rate"`
	// ThrottleCut multiplies the effective rate on a rate_limited answer,
	// at most once per RecoveryInterval. Default 0.8; must be > 0 and < 1.
	ThrottleCut float64 `toml:"throttle_cut"`
	// RecoveryStep is the raise of the effective rate after a
	// RecoveryInterval without throttling in which the key delivered at
	// least half of what its rate allows: this share of the rate of the
	// last cut (the rate at which the receiver deferred), a constant step
	// back up to it; above it, or before any cut, this share of the current
	// rate. It is not a share of Rate, so one value fits a Rate configured
	// too high or too low. Default 0.1; must be > 0 and <= 1.
	RecoveryStep float64 `toml:"recovery_step"`
	// RecoveryInterval is the pace of the rate controller: at most one cut
	// and one raise per interval. Default 1s; at least 1s.
	RecoveryInterval Duration `toml:"recovery_interval"`
	// RetrySchedule is the delays between retries of transient answers;
	// the last delay repeats. Default ["5m", "15m", "1h", "4h"]. Absent
	// inherits; an empty list is an error; every delay must be > 0.
	RetrySchedule []Duration `toml:"retry_schedule"`
	// MaxAge is how long after the first attempt transient retries give up
	// (the message is archived as expired). Default 48h.
	MaxAge Duration `toml:"max_age"`
	// MailboxFullAttempts is how many mailbox_full answers an address gets
	// (within 30 days) before it is suppressed. Default 3.
	MailboxFullAttempts int `toml:"mailbox_full_attempts"`
	// ReviewThreshold pauses the provider's queue when this share of the
	// last ReviewWindow attempts were flagged for review (spam_blocked,
	// policy_blocked, auth_failure). Default 0.05; must be > 0 and <= 1.
	// Providers and the default only, like Priority.
	ReviewThreshold float64 `toml:"review_threshold"`
	// ReviewWindow is the number of the queue's last attempts that
	// ReviewThreshold looks at. Default 500; at most MaxReviewWindow.
	// Providers and the default only, like Priority.
	ReviewWindow int `toml:"review_window"`
}

// Provider is a provider group: a set of domains that share one asynq queue
// (named after the group) and, unless a domain has its own entry, one rate
// limit key and connection pool ("provider:<name>"). The Settings keys sit
// directly in the provider's table:
//
//	[policy.providers.google]
//	domains = ["gmail.com", "googlemail.com"]
//	rate = "20/s"
type Provider struct {
	Settings
	// Domains are the group's domains, lower-case ASCII (punycode). A
	// recipient domain matches a listed domain or any subdomain of it.
	Domains []string `toml:"domains"`
}

// Config is the [policy] section of config.toml. The zero Config routes
// every domain to the default queue at the built-in settings; the server
// uses Config.WithDefaults, the built-in provider table with the file's
// section applied over it.
//
// A Config is a plain value; its methods do not modify it and are safe for
// concurrent use as long as no one modifies its maps.
type Config struct {
	Default   Settings            `toml:"default"`   // [policy.default]
	Providers map[string]Provider `toml:"providers"` // [policy.providers.<name>]
	Domains   map[string]Settings `toml:"domains"`   // [policy.domains."<domain>"]
	Rules     []Rule              `toml:"rules"`     // [[policy.rules]]: answers that suspend sending
}

// Route says where messages to a recipient domain go and at what pace.
type Route struct {
	Domain   string   // normalised recipient domain
	Queue    string   // asynq queue: the provider's name, or "default"
	Key      string   // rate-limit and pool key: "domain:<d>" or "provider:<name>"
	Settings Settings // fully resolved: no zero field
}

// Route returns the route of domain (normalised first: trimmed, lower-case,
// punycode, no trailing dot).
//
// The provider is the group listing the domain or its nearest listed parent
// ("mx.gmail.com" goes with gmail.com); the domain entry is the
// [policy.domains] entry of the domain or its nearest listed parent. The
// queue is the provider's name, else "default". The key is
// "domain:<entry>" when a domain entry matched, else "provider:<name>",
// else "domain:<domain>" (each unlisted domain is limited on its own at the
// default settings). Settings inherit field by field: domain entry ->
// provider -> default -> built-in.
//
// Route does no I/O and allocates only the key; the cost grows with the
// number of listed provider domains (one string comparison each).
func (c Config) Route(domain string) Route {
	d := normalizeDomain(domain)
	rt := Route{Domain: d, Queue: DefaultQueue}

	var prov Provider
	var provName, provMatch string
	for name, p := range c.Providers {
		for _, pd := range p.Domains {
			if !domainMatches(d, pd) {
				continue
			}
			// Longest match wins; ties (an invalid config) go to the
			// smaller name so the answer is deterministic.
			if len(pd) > len(provMatch) || len(pd) == len(provMatch) && name < provName {
				prov, provName, provMatch = p, name, pd
			}
		}
	}

	var levels [3]Settings
	n := 0
	for s := d; s != ""; {
		if e, ok := c.Domains[s]; ok {
			levels[n] = e
			n++
			rt.Key = "domain:" + s
			break
		}
		i := strings.IndexByte(s, '.')
		if i < 0 {
			break
		}
		s = s[i+1:]
	}
	if provMatch != "" {
		rt.Queue = provName
		if rt.Key == "" {
			rt.Key = "provider:" + provName
		}
		levels[n] = prov.Settings
		n++
	}
	if rt.Key == "" {
		rt.Key = "domain:" + d
	}
	levels[n] = c.Default
	n++
	rt.Settings = resolve(levels[:n])
	return rt
}

// resolve applies the inheritance rules to levels, most specific first.
func resolve(levels []Settings) Settings {
	var out Settings
	burstSet := false
	for _, l := range levels {
		if out.Rate.IsZero() && !l.Rate.IsZero() {
			out.Rate = l.Rate
		}
		if !burstSet {
			if l.Burst != 0 {
				out.Burst, burstSet = l.Burst, true
			} else if !l.Rate.IsZero() {
				burstSet = true // the rate's own default burst
			}
		}
		if out.MaxConnections == 0 {
			out.MaxConnections = l.MaxConnections
		}
		if out.MaxMessagesPerConnection == 0 {
			out.MaxMessagesPerConnection = l.MaxMessagesPerConnection
		}
		if out.Priority == 0 {
			out.Priority = l.Priority
		}
		if out.MinRate.IsZero() {
			out.MinRate = l.MinRate
		}
		if out.MaxRate.IsZero() {
			out.MaxRate = l.MaxRate
		}
		if out.ThrottleCut == 0 {
			out.ThrottleCut = l.ThrottleCut
		}
		if out.RecoveryStep == 0 {
			out.RecoveryStep = l.RecoveryStep
		}
		if out.RecoveryInterval == 0 {
			out.RecoveryInterval = l.RecoveryInterval
		}
		if out.RetrySchedule == nil {
			out.RetrySchedule = l.RetrySchedule
		}
		if out.MaxAge == 0 {
			out.MaxAge = l.MaxAge
		}
		if out.MailboxFullAttempts == 0 {
			out.MailboxFullAttempts = l.MailboxFullAttempts
		}
		if out.ReviewThreshold == 0 {
			out.ReviewThreshold = l.ReviewThreshold
		}
		if out.ReviewWindow == 0 {
			out.ReviewWindow = l.ReviewWindow
		}
	}
	if out.Rate.IsZero() {
		out.Rate = DefaultRate
	}
	if out.Burst == 0 {
		out.Burst = out.Rate.DefaultBurst()
	}
	if out.MaxConnections == 0 {
		out.MaxConnections = DefaultMaxConnections
	}
	if out.MaxMessagesPerConnection == 0 {
		out.MaxMessagesPerConnection = DefaultMaxMessagesPerConnection
	}
	if out.Priority == 0 {
		out.Priority = DefaultPriority
	}
	if out.MinRate.IsZero() {
		out.MinRate = defaultMinRate(out.Rate)
	}
	if out.MaxRate.IsZero() {
		out.MaxRate = defaultMaxRate(out.Rate)
	}
	if out.ThrottleCut == 0 {
		out.ThrottleCut = DefaultThrottleCut
	}
	if out.RecoveryStep == 0 {
		out.RecoveryStep = DefaultRecoveryStep
	}
	if out.RecoveryInterval == 0 {
		out.RecoveryInterval = Duration(DefaultRecoveryInterval)
	}
	if len(out.RetrySchedule) == 0 {
		out.RetrySchedule = slices.Clip(defaultRetrySchedule)
	}
	if out.MaxAge == 0 {
		out.MaxAge = Duration(DefaultMaxAge)
	}
	if out.MailboxFullAttempts == 0 {
		out.MailboxFullAttempts = DefaultMailboxFullAttempts
	}
	if out.ReviewThreshold == 0 {
		out.ReviewThreshold = DefaultReviewThreshold
	}
	if out.ReviewWindow == 0 {
		out.ReviewWindow = DefaultReviewWindow
	}
	return out
}

// defaultMinRate is the built-in min_rate of r: r / 10, but at least one
// message every MaxRateInterval (r itself when r is slower).
func defaultMinRate(r Rate) Rate {
	m := Rate{N: r.N / DefaultMinRateDivisor, Per: r.Per}
	if m.check() == nil {
		return m
	}
	floor := Rate{N: float64(time.Hour) / float64(MaxRateInterval), Per: time.Hour}
	if r.PerSecond() < floor.PerSecond() {
		return r
	}
	return floor
}

// defaultMaxRate is the built-in max_rate of r: r × 10, but at most
// MaxRatePerSecond.
func defaultMaxRate(r Rate) Rate {
	m := Rate{N: r.N * DefaultMaxRateFactor, Per: r.Per}
	if m.check() == nil {
		return m
	}
	if r.PerSecond() > MaxRatePerSecond {
		return r
	}
	return Rate{N: MaxRatePerSecond, Per: time.Second}
}

// domainMatches reports whether d is listed or a subdomain of listed.
func domainMatches(d, listed string) bool {
	if len(d) == len(listed) {
		return d == listed
	}
	return len(d) > len(listed) && d[len(d)-len(listed)-1] == '.' && strings.HasSuffix(d, listed)
}

// normalizeDomain normalises a recipient domain without failing: an
// invalid name is only trimmed and lower-cased.
func normalizeDomain(domain string) string {
	d, err := bounces.NormalizeDomain(domain)
	if err != nil {
		return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	}
	return d
}

// Queues returns every queue name with its asynq priority: one per
// provider plus "default" (the default settings' priority), the map
// asynq.Config.Queues wants. The "review" queue of the feedback issue is not
// included.
func (c Config) Queues() map[string]int {
	q := make(map[string]int, len(c.Providers)+1)
	def := c.Default.Priority
	if def == 0 {
		def = DefaultPriority
	}
	q[DefaultQueue] = def
	for name, p := range c.Providers {
		pr := p.Priority
		if pr == 0 {
			pr = def
		}
		q[name] = pr
	}
	return q
}

// Merge returns c with over applied to it, for a file's [policy] section
// over the built-in table: over's default settings and domain entries
// replace c's field by field where set; a provider of over that c has
// replaces its settings field by field where set and its domain list when
// over's list is not empty; other providers and domain entries are added.
// Neither c nor over is modified.
func (c Config) Merge(over Config) Config {
	out := Config{
		Default:   c.Default.clone().merge(over.Default),
		Providers: make(map[string]Provider, len(c.Providers)+len(over.Providers)),
		Domains:   make(map[string]Settings, len(c.Domains)+len(over.Domains)),
	}
	for name, p := range c.Providers {
		p.Domains = slices.Clone(p.Domains)
		p.Settings = p.Settings.clone()
		out.Providers[name] = p
	}
	for name, p := range over.Providers {
		base, ok := out.Providers[name]
		if !ok {
			p.Domains = slices.Clone(p.Domains)
			p.Settings = p.Settings.clone()
			out.Providers[name] = p
			continue
		}
		base.Settings = base.Settings.merge(p.Settings)
		if len(p.Domains) > 0 {
			base.Domains = slices.Clone(p.Domains)
		}
		out.Providers[name] = base
	}
	for d, s := range c.Domains {
		out.Domains[d] = s.clone()
	}
	for d, s := range over.Domains {
		out.Domains[d] = out.Domains[d].merge(s)
	}
	out.Rules = mergeRules(c.Rules, over.Rules)
	return out
}

// WithDefaults returns DefaultConfig().Merge(c): the built-in provider
// table with c applied over it.
func (c Config) WithDefaults() Config { return DefaultConfig().Merge(c) }

// clone returns s with its own copy of RetrySchedule.
func (s Settings) clone() Settings {
	if s.RetrySchedule != nil {
		s.RetrySchedule = slices.Clone(s.RetrySchedule)
	}
	return s
}

// merge returns s with the fields over sets; a Rate without a Burst resets
// the burst to the rate's default.
func (s Settings) merge(over Settings) Settings {
	if !over.Rate.IsZero() {
		s.Rate = over.Rate
		s.Burst = 0
	}
	if over.Burst != 0 {
		s.Burst = over.Burst
	}
	if over.MaxConnections != 0 {
		s.MaxConnections = over.MaxConnections
	}
	if over.MaxMessagesPerConnection != 0 {
		s.MaxMessagesPerConnection = over.MaxMessagesPerConnection
	}
	if over.Priority != 0 {
		s.Priority = over.Priority
	}
	if !over.MinRate.IsZero() {
		s.MinRate = over.MinRate
	}
	if !over.MaxRate.IsZero() {
		s.MaxRate = over.MaxRate
	}
	if over.ThrottleCut != 0 {
		s.ThrottleCut = over.ThrottleCut
	}
	if over.RecoveryStep != 0 {
		s.RecoveryStep = over.RecoveryStep
	}
	if over.RecoveryInterval != 0 {
		s.RecoveryInterval = over.RecoveryInterval
	}
	if over.RetrySchedule != nil {
		s.RetrySchedule = slices.Clone(over.RetrySchedule)
	}
	if over.MaxAge != 0 {
		s.MaxAge = over.MaxAge
	}
	if over.MailboxFullAttempts != 0 {
		s.MailboxFullAttempts = over.MailboxFullAttempts
	}
	if over.ReviewThreshold != 0 {
		s.ReviewThreshold = over.ReviewThreshold
	}
	if over.ReviewWindow != 0 {
		s.ReviewWindow = over.ReviewWindow
	}
	return s
}

// Validate checks the section. Errors name the key and the rule
// ("policy.providers.google.rate: ..."); all problems are reported, joined,
// in a stable order.
func (c Config) Validate() error {
	var errs []error
	errs = append(errs, c.Default.validate("policy.default", true)...)
	ids := map[string]bool{}
	for i, r := range c.Rules {
		key := fmt.Sprintf("policy.rules[%d]", i)
		if r.ID != "" {
			key = fmt.Sprintf("policy.rules[%d] (%q)", i, r.ID)
			if ids[r.ID] {
				errs = append(errs, fmt.Errorf("%s.id: used twice", key))
			}
			ids[r.ID] = true
		}
		if err := r.validate(key); err != nil {
			errs = append(errs, err)
		}
	}

	names := slices.Sorted(maps.Keys(c.Providers))
	owner := make(map[string]string) // domain -> provider
	for _, name := range names {
		p := c.Providers[name]
		key := "policy.providers." + tomlKey(name)
		if err := checkQueueName(name); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
		errs = append(errs, p.Settings.validate(key, true)...)
		if len(p.Domains) == 0 {
			errs = append(errs, fmt.Errorf("%s.domains: list at least one domain", key))
		}
		seen := make(map[string]bool, len(p.Domains))
		for i, d := range p.Domains {
			dk := fmt.Sprintf("%s.domains[%d]", key, i)
			if err := checkDomain(d); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", dk, err))
				continue
			}
			if seen[d] {
				errs = append(errs, fmt.Errorf("%s: %s is listed twice", dk, d))
				continue
			}
			seen[d] = true
			if other, ok := owner[d]; ok {
				errs = append(errs, fmt.Errorf("policy.providers.%s.domains and %s.domains: %s is in both; list it in one provider only (to move a built-in domain, set the built-in provider's domains without it)",
					tomlKey(other), key, d))
				continue
			}
			owner[d] = name
		}
	}

	for _, d := range slices.Sorted(maps.Keys(c.Domains)) {
		key := "policy.domains." + strconv.Quote(d)
		if err := checkDomain(d); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
		errs = append(errs, c.Domains[d].validate(key, false)...)
	}

	// The adaptive bounds hold in every resolved level: checked where a
	// level sets rate, min_rate or max_rate (a level that sets none of
	// them resolves them as its parent does).
	errs = append(errs, checkBounds("policy.default", c.Default, resolve([]Settings{c.Default}))...)
	for _, name := range names {
		p := c.Providers[name]
		errs = append(errs, checkBounds("policy.providers."+tomlKey(name), p.Settings, resolve([]Settings{p.Settings, c.Default}))...)
	}
	for _, d := range slices.Sorted(maps.Keys(c.Domains)) {
		if checkDomain(d) != nil {
			continue
		}
		errs = append(errs, checkBounds("policy.domains."+strconv.Quote(d), c.Domains[d], c.Route(d).Settings)...)
	}
	return errors.Join(errs...)
}

// checkBounds checks min_rate <= rate <= max_rate in r, the resolved
// settings of the level s named key, when s sets one of the three and
// they are valid rates. The error names the key s sets.
func checkBounds(key string, s, r Settings) []error {
	if s.Rate.IsZero() && s.MinRate.IsZero() && s.MaxRate.IsZero() {
		return nil
	}
	if s.Rate.check() != nil || s.MinRate.check() != nil || s.MaxRate.check() != nil {
		return nil // reported by validate
	}
	from := func(set bool) string {
		if set {
			return ""
		}
		return " (inherited)"
	}
	var errs []error
	lo, rate, hi := r.MinRate.PerSecond(), r.Rate.PerSecond(), r.MaxRate.PerSecond()
	const eps = 1e-9
	if lo > rate*(1+eps) {
		if !s.MinRate.IsZero() {
			errs = append(errs, fmt.Errorf("%s.min_rate: %s is above the rate %s%s; want min_rate <= rate", key, r.MinRate, r.Rate, from(!s.Rate.IsZero())))
		} else {
			errs = append(errs, fmt.Errorf("%s.rate: %s is below min_rate %s%s; want min_rate <= rate", key, r.Rate, r.MinRate, from(false)))
		}
	}
	if hi < rate*(1-eps) {
		if !s.MaxRate.IsZero() {
			errs = append(errs, fmt.Errorf("%s.max_rate: %s is below the rate %s%s; want rate <= max_rate", key, r.MaxRate, r.Rate, from(!s.Rate.IsZero())))
		} else {
			errs = append(errs, fmt.Errorf("%s.rate: %s is above max_rate %s%s; want rate <= max_rate", key, r.Rate, r.MaxRate, from(false)))
		}
	}
	return errs
}

// validate checks one Settings table named key.
func (s Settings) validate(key string, queue bool) []error {
	var errs []error
	if err := s.Rate.check(); err != nil {
		errs = append(errs, fmt.Errorf("%s.rate: %w", key, err))
	}
	if s.Burst < 0 {
		errs = append(errs, fmt.Errorf("%s.burst: %d must be >= 1 (0 or absent: the default)", key, s.Burst))
	}
	if s.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("%s.max_connections: %d must be >= 1 (0 or absent: the default)", key, s.MaxConnections))
	}
	if s.MaxMessagesPerConnection < 0 {
		errs = append(errs, fmt.Errorf("%s.max_messages_per_connection: %d must be >= 1 (0 or absent: the default)", key, s.MaxMessagesPerConnection))
	}
	switch {
	case s.Priority < 0:
		errs = append(errs, fmt.Errorf("%s.priority: %d must be >= 1 (0 or absent: the default)", key, s.Priority))
	case s.Priority != 0 && !queue:
		errs = append(errs, fmt.Errorf("%s.priority: a domain has no queue of its own; set priority on its provider", key))
	}
	if err := s.MinRate.check(); err != nil {
		errs = append(errs, fmt.Errorf("%s.min_rate: %w", key, err))
	}
	if err := s.MaxRate.check(); err != nil {
		errs = append(errs, fmt.Errorf("%s.max_rate: %w", key, err))
	}
	if f := s.ThrottleCut; f != 0 && !(f > 0 && f < 1) {
		errs = append(errs, fmt.Errorf("%s.throttle_cut: %g must be > 0 and < 1 (0 or absent: the default %g)", key, f, float64(DefaultThrottleCut)))
	}
	if f := s.RecoveryStep; f != 0 && !(f > 0 && f <= 1) {
		errs = append(errs, fmt.Errorf("%s.recovery_step: %g must be > 0 and <= 1 (0 or absent: the default %g)", key, f, float64(DefaultRecoveryStep)))
	}
	if d := s.RecoveryInterval.D(); d != 0 && d < MinRecoveryInterval {
		errs = append(errs, fmt.Errorf("%s.recovery_interval: %v must be >= %v (0 or absent: the default %v)", key, d, MinRecoveryInterval, DefaultRecoveryInterval))
	}
	if s.RetrySchedule != nil && len(s.RetrySchedule) == 0 {
		errs = append(errs, fmt.Errorf("%s.retry_schedule: list at least one delay (absent: the default)", key))
	}
	for i, d := range s.RetrySchedule {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s.retry_schedule[%d]: %v must be > 0", key, i, d.D()))
		}
	}
	if d := s.MaxAge.D(); d < 0 {
		errs = append(errs, fmt.Errorf("%s.max_age: %v must be > 0 (0 or absent: the default %v)", key, d, DefaultMaxAge))
	}
	if n := s.MailboxFullAttempts; n < 0 {
		errs = append(errs, fmt.Errorf("%s.mailbox_full_attempts: %d must be >= 1 (0 or absent: the default %d)", key, n, DefaultMailboxFullAttempts))
	}
	switch f := s.ReviewThreshold; {
	case f != 0 && !(f > 0 && f <= 1):
		errs = append(errs, fmt.Errorf("%s.review_threshold: %g must be > 0 and <= 1 (0 or absent: the default %g)", key, f, float64(DefaultReviewThreshold)))
	case f != 0 && !queue:
		errs = append(errs, fmt.Errorf("%s.review_threshold: a domain has no queue of its own; set review_threshold on its provider", key))
	}
	switch n := s.ReviewWindow; {
	case n < 0 || n > MaxReviewWindow:
		errs = append(errs, fmt.Errorf("%s.review_window: %d must be >= 1 and <= %d (0 or absent: the default %d)", key, n, MaxReviewWindow, DefaultReviewWindow))
	case n != 0 && !queue:
		errs = append(errs, fmt.Errorf("%s.review_window: a domain has no queue of its own; set review_window on its provider", key))
	}
	return errs
}

// checkQueueName checks a provider name as an asynq queue name.
func checkQueueName(name string) error {
	if name == "" {
		return errors.New("empty provider name")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("provider name %q: want lower-case letters, digits, '_' and '-' (it names an asynq queue)", name)
		}
	}
	switch name {
	case DefaultQueue:
		return fmt.Errorf("provider name %q is reserved for domains of no provider", name)
	case ReviewQueue:
		return fmt.Errorf("provider name %q is reserved for messages flagged for review", name)
	}
	return nil
}

// checkDomain checks a listed domain: a normalised host name of two labels
// or more.
func checkDomain(d string) error {
	n, err := bounces.NormalizeDomain(d)
	if err != nil || n == "" {
		return fmt.Errorf("%q is not a domain name", d)
	}
	if n != d {
		return fmt.Errorf("%q: write it normalised, %q", d, n)
	}
	if len(d) > 253 {
		return fmt.Errorf("%q: longer than 253 characters", d)
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return fmt.Errorf("%q: want a domain of two labels or more, like example.com", d)
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("%q: label %q is not a host name label", d, l)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%q: label %q is not a host name label", d, l)
			}
		}
	}
	return nil
}

// tomlKey quotes a table key when TOML needs it.
func tomlKey(k string) string {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return strconv.Quote(k)
		}
	}
	if k == "" {
		return `""`
	}
	return k
}

// DefaultConfig returns the built-in provider table, the base that a
// file's [policy] section is merged over (Config.WithDefaults). Each call
// returns a new Config that the caller may modify.
//
// No provider publishes a sending rate, so every rate below is our
// conservative default: a warmed-up sender raises it in config.toml, and
// the feedback loop cuts it on deferrals and raises it (up to 10×) while
// the receiver accepts what is sent. The comments say what each provider
// does publish.
func DefaultConfig() Config {
	r := func(n float64) Rate { return Rate{N: n, Per: time.Second} }
	return Config{
		// Domains of no provider: each domain is its own key at 10/s.
		// The feedback loop's built-in defaults are spelled out here too;
		// min_rate and max_rate are left to follow each level's rate
		// (rate / 10 and rate × 10).
		Default: Settings{
			Rate:                     DefaultRate,
			MaxConnections:           DefaultMaxConnections,
			MaxMessagesPerConnection: DefaultMaxMessagesPerConnection,
			Priority:                 DefaultPriority,
			ThrottleCut:              DefaultThrottleCut,
			RecoveryStep:             DefaultRecoveryStep,
			RecoveryInterval:         Duration(DefaultRecoveryInterval),
			RetrySchedule:            DefaultRetrySchedule(),
			MaxAge:                   Duration(DefaultMaxAge),
			MailboxFullAttempts:      DefaultMailboxFullAttempts,
			ReviewThreshold:          DefaultReviewThreshold,
			ReviewWindow:             DefaultReviewWindow,
		},
		Providers: map[string]Provider{
			// Gmail's email sender guidelines (support.google.com/mail/answer/81126)
			// publish no rate: they ask senders of 5,000+ messages a day for
			// SPF, DKIM, DMARC and one-click unsubscribe, to send at a
			// consistent rate without bursts, to raise volume slowly and to
			// slow down on 4xx deferrals ("450/452 4.2.1", "421 4.7.28").
			// 10/s with a one-second burst is our conservative default.
			"google": {
				Settings: Settings{Rate: r(10), MaxConnections: 4, MaxMessagesPerConnection: 100},
				Domains:  []string{"gmail.com", "googlemail.com"},
			},
			// Outlook.com's postmaster pages (postmaster.live.com,
			// aka.ms/postmaster) publish no rate either; they throttle by IP
			// reputation ("451 4.7.650 ... temporarily rate limited due to IP
			// reputation") and ask high-volume senders (5,000+ a day) for
			// SPF, DKIM and DMARC. 5/s is our conservative default.
			"microsoft": {
				Settings: Settings{Rate: r(5), MaxConnections: 4, MaxMessagesPerConnection: 100},
				Domains:  []string{"hotmail.com", "outlook.com", "live.com", "msn.com"},
			},
			// Yahoo's Sender Hub (senders.yahooinc.com) publishes no rate; it
			// defers unexpected volume ("421 4.7.0 [TSS04]") and asks senders
			// to spread volume over time. Its best practices give 20
			// messages per connection as a starting point, used here; 5/s
			// is our conservative default.
			"yahoo": {
				Settings: Settings{Rate: r(5), MaxConnections: 4, MaxMessagesPerConnection: 20},
				Domains:  []string{"yahoo.com", "aol.com", "ymail.com"},
			},
			// Apple's "Postmaster information for iCloud Mail"
			// (support.apple.com/102322) publishes no rate, connection or
			// volume limit; it asks senders to track temporary and permanent
			// SMTP errors and act on them. 5/s is our conservative default.
			"apple": {
				Settings: Settings{Rate: r(5), MaxConnections: 4, MaxMessagesPerConnection: 100},
				Domains:  []string{"icloud.com", "me.com", "mac.com"},
			},
			// The Central European providers of the original analysis
			// (Seznam, Centrum, Azet, Zoznam) publish no sending limits we
			// know of; smaller receivers, so 2/s over 2 connections is our
			// conservative default. centrum.sk answered spam blocks
			// (554 5.7.1) in the analysis: the feedback loop flags them.
			"seznam": {
				Settings: Settings{Rate: r(2), MaxConnections: 2, MaxMessagesPerConnection: 50},
				Domains:  []string{"seznam.cz", "email.cz", "post.cz"},
			},
			"centrum": {
				Settings: Settings{Rate: r(2), MaxConnections: 2, MaxMessagesPerConnection: 50},
				Domains:  []string{"centrum.sk", "centrum.cz", "atlas.sk"},
			},
			"azet": {
				Settings: Settings{Rate: r(2), MaxConnections: 2, MaxMessagesPerConnection: 50},
				Domains:  []string{"azet.sk"},
			},
			"zoznam": {
				Settings: Settings{Rate: r(2), MaxConnections: 2, MaxMessagesPerConnection: 50},
				Domains:  []string{"zoznam.sk"},
			},
		},
		Domains: map[string]Settings{},
		Rules:   DefaultRules(),
	}
}
