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

// Queue names with a fixed meaning.
const (
	DefaultQueue = "default" // domains of no provider group
	ReviewQueue  = "review"  // reserved: messages flagged for an operator (feedback issue)
)

// Settings are the sending settings of the defaults, a provider group or a
// domain. A zero field is not set and inherits, field by field:
// domain -> provider -> default -> built-in default. Burst goes with Rate: a
// level that sets Rate but not Burst gets the computed default burst, not the
// burst of a less specific level.
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
	return out
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
		Default:   c.Default.merge(over.Default),
		Providers: make(map[string]Provider, len(c.Providers)+len(over.Providers)),
		Domains:   make(map[string]Settings, len(c.Domains)+len(over.Domains)),
	}
	for name, p := range c.Providers {
		p.Domains = slices.Clone(p.Domains)
		out.Providers[name] = p
	}
	for name, p := range over.Providers {
		base, ok := out.Providers[name]
		if !ok {
			p.Domains = slices.Clone(p.Domains)
			out.Providers[name] = p
			continue
		}
		base.Settings = base.Settings.merge(p.Settings)
		if len(p.Domains) > 0 {
			base.Domains = slices.Clone(p.Domains)
		}
		out.Providers[name] = base
	}
	maps.Copy(out.Domains, c.Domains)
	for d, s := range over.Domains {
		out.Domains[d] = out.Domains[d].merge(s)
	}
	return out
}

// WithDefaults returns DefaultConfig().Merge(c): the built-in provider
// table with c applied over it.
func (c Config) WithDefaults() Config { return DefaultConfig().Merge(c) }

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
	return s
}

// Validate checks the section. Errors name the key and the rule
// ("policy.providers.google.rate: ..."); all problems are reported, joined,
// in a stable order.
func (c Config) Validate() error {
	var errs []error
	errs = append(errs, c.Default.validate("policy.default", true)...)

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
	return errors.Join(errs...)
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
// the feedback loop cuts it on deferrals. The comments say what each
// provider does publish.
func DefaultConfig() Config {
	r := func(n float64) Rate { return Rate{N: n, Per: time.Second} }
	return Config{
		// Domains of no provider: each domain is its own key at 10/s.
		Default: Settings{
			Rate:                     DefaultRate,
			MaxConnections:           DefaultMaxConnections,
			MaxMessagesPerConnection: DefaultMaxMessagesPerConnection,
			Priority:                 DefaultPriority,
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
	}
}
