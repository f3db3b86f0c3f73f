package smtpsim

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
)

// Fault is a way a domain's server misbehaves. The zero value is FaultNone.
type Fault int

// The faults; see the package documentation.
const (
	FaultNone    Fault = iota
	FaultRefuse        // connections refused (the provider's listener is closed)
	FaultTLS           // the STARTTLS handshake fails
	FaultGarbage       // RCPT is answered with a line that is not SMTP
	FaultDrop          // the connection is closed in the middle of DATA
	FaultStall         // the end of DATA is never answered (until the world closes)
	FaultTarpit        // connections are accepted but never greeted (until the world closes)
)

var faultNames = [...]string{"none", "refuse", "tls", "garbage", "drop", "stall", "tarpit"}

// String returns the fault's name ("none", "refuse", "tls", "garbage", "drop", "stall", "tarpit").
func (f Fault) String() string {
	if f < 0 || int(f) >= len(faultNames) {
		return fmt.Sprintf("Fault(%d)", int(f))
	}
	return faultNames[f]
}

// Domain is the behaviour of one simulated domain. Shares are fractions in
// [0,1] of the recipients (TempFailShare: of the attempts); their sum must not
// exceed 1. An empty reply takes the generic wording given in its comment.
type Domain struct {
	// RatePerSec is the capacity: messages per second accepted before the
	// domain answers RateReply (multiplied by Config.Scale); 0 = unlimited.
	RatePerSec float64
	// Burst is the token bucket's size; 0 = max(1, RatePerSec*Scale rounded up).
	Burst     int
	RateReply string // "450 4.2.1 Too many messages, slow down"

	UnknownShare float64
	UnknownReply string // "550 5.1.1 Recipient address rejected: User unknown"

	SpamShare float64
	SpamReply string // "554 5.7.1 Message rejected as spam"

	FullShare float64
	FullReply string // "452 4.2.2 Mailbox full"

	// SizeShare of the recipients refuse messages larger than SizeLimit
	// bytes (0 = 10000) with SizeReply.
	SizeShare float64
	SizeLimit int
	SizeReply string // "552 5.3.4 Message size exceeds fixed maximum message size"

	TempFailShare float64
	TempFailReply string // "451 4.3.0 Temporary local problem, please try again later"

	// Delay is added before each answer (greeting, EHLO, MAIL, RCPT, end of
	// DATA); before the recipient is known the provider's largest Delay applies.
	Delay time.Duration
	Fault Fault
}

// Provider is one simulated server serving Domains. A domain belongs to one
// provider.
type Provider struct {
	Name    string
	Domains []string
}

// Config describes a world. The zero value is a world where every domain,
// served by nobody, is unreachable; use DefaultConfig or list Providers.
type Config struct {
	// Seed makes the decisions (see the package documentation) reproducible.
	Seed int64
	// TLS offers STARTTLS with a self-signed certificate made at Start.
	TLS bool
	// Scale multiplies every RatePerSec (capacities); 0 means 1.
	Scale float64
	// Providers are the servers. A domain of Domains that no provider lists
	// gets a server of its own, named after it.
	Providers []Provider
	// Domains gives each domain's behaviour; a domain not listed behaves as
	// Default.
	Domains map[string]Domain
	// Default is the behaviour of domains not in Domains.
	Default Domain
	// CatchAll names the provider that Routes gives as "*" (optional).
	CatchAll string
}

// Generic wordings for empty replies.
const (
	defaultRateReply     = "450 4.2.1 Too many messages, slow down"
	defaultUnknownReply  = "550 5.1.1 Recipient address rejected: User unknown"
	defaultSpamReply     = "554 5.7.1 Message rejected as spam"
	defaultFullReply     = "452 4.2.2 Mailbox full"
	defaultSizeReply     = "552 5.3.4 Message size exceeds fixed maximum message size"
	defaultTempFailReply = "451 4.3.0 Temporary local problem, please try again later"
	defaultSizeLimit     = 10000
)

// withDefaults fills empty replies.
func (d Domain) withDefaults() Domain {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&d.RateReply, defaultRateReply)
	def(&d.UnknownReply, defaultUnknownReply)
	def(&d.SpamReply, defaultSpamReply)
	def(&d.FullReply, defaultFullReply)
	def(&d.SizeReply, defaultSizeReply)
	def(&d.TempFailReply, defaultTempFailReply)
	if d.SizeLimit == 0 {
		d.SizeLimit = defaultSizeLimit
	}
	return d
}

// validate checks a domain's behaviour; name prefixes the errors.
func (d Domain) validate(name string) error {
	shares := []struct {
		key string
		v   float64
	}{{"unknown_share", d.UnknownShare}, {"spam_share", d.SpamShare}, {"full_share", d.FullShare}, {"size_share", d.SizeShare}, {"tempfail_share", d.TempFailShare}}
	sum := 0.0
	for _, s := range shares {
		if s.v < 0 || s.v > 1 || s.v != s.v {
			return fmt.Errorf("smtpsim: %s.%s: %v is not in [0,1]", name, s.key, s.v)
		}
		if s.key != "tempfail_share" {
			sum += s.v
		}
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("smtpsim: %s: shares add up to %v > 1", name, sum)
	}
	if d.RatePerSec < 0 || d.Burst < 0 || d.SizeLimit < 0 || d.Delay < 0 {
		return fmt.Errorf("smtpsim: %s: negative rate, burst, size limit or delay", name)
	}
	if d.Fault < FaultNone || d.Fault > FaultTarpit {
		return fmt.Errorf("smtpsim: %s: unknown fault %d", name, int(d.Fault))
	}
	for key, r := range map[string]string{"rate_reply": d.RateReply, "unknown_reply": d.UnknownReply, "spam_reply": d.SpamReply,
		"full_reply": d.FullReply, "size_reply": d.SizeReply, "tempfail_reply": d.TempFailReply} {
		if r == "" {
			continue
		}
		if rep := bounces.ParseReply(r); rep.Code < 400 || strings.ContainsAny(r, "\r\n") {
			return fmt.Errorf("smtpsim: %s.%s: %q is not a one-line 4xx/5xx answer", name, key, r)
		}
	}
	return nil
}

// Validate checks the config: shares in [0,1] adding up to at most 1,
// replies that are one-line 4xx or 5xx answers, every domain in one provider,
// a known CatchAll.
func (c Config) Validate() error {
	if c.Scale < 0 {
		return fmt.Errorf("smtpsim: scale: %v < 0", c.Scale)
	}
	if err := c.Default.validate("default"); err != nil {
		return err
	}
	names := make([]string, 0, len(c.Domains))
	for d := range c.Domains {
		names = append(names, d)
	}
	sort.Strings(names)
	for _, d := range names {
		if err := c.Domains[d].validate(fmt.Sprintf("domains.%q", d)); err != nil {
			return err
		}
	}
	owner := map[string]string{}
	seen := map[string]bool{}
	for i, p := range c.Providers {
		if p.Name == "" {
			return fmt.Errorf("smtpsim: providers[%d]: empty name", i)
		}
		if seen[p.Name] {
			return fmt.Errorf("smtpsim: providers[%d]: duplicate name %q", i, p.Name)
		}
		seen[p.Name] = true
		for _, d := range p.Domains {
			d = strings.ToLower(d)
			if o, ok := owner[d]; ok {
				return fmt.Errorf("smtpsim: domain %q is served by %q and %q", d, o, p.Name)
			}
			owner[d] = p.Name
		}
	}
	if c.CatchAll != "" && !seen[c.CatchAll] {
		return fmt.Errorf("smtpsim: catch_all: no provider %q", c.CatchAll)
	}
	return nil
}

// DefaultConfig returns the world of the original analysis (April–June
// 2018), with the given seed, STARTTLS offered and Scale 1. Shares are the
// data set's proportions of answers per domain; wordings are the answers the
// analysis recorded for unknown users, and the providers' documented answers
// for the rest. Capacities (RatePerSec at Scale 1) are sized so that a
// 20,000-message campaign in the data's proportions (gmail.com 71%, other
// domains 13%, azet.sk 7%, yahoo.com and hotmail.com 2.5% each, ...) ends
// within a minute when the sender paces each domain near its capacity, and
// Gmail's 450 4.2.1 appears when it does not.
//
// Providers: google (gmail.com, googlemail.com), azet (azet.sk), centrum
// (centrum.sk, centrum.cz), microsoft (hotmail.com, outlook.com, live.com),
// apple (icloud.com, me.com), seznam (seznam.cz, email.cz), stonline
// (stonline.sk), yahoo (yahoo.com), zoznam (zoznam.sk), and other
// (example.org, example.net, example.com; also the catch-all "*").
func DefaultConfig(seed int64) Config {
	const gsmtp = " - gsmtp"
	return Config{
		Seed:     seed,
		TLS:      true,
		Scale:    1,
		CatchAll: "other",
		Providers: []Provider{
			{Name: "google", Domains: []string{"gmail.com", "googlemail.com"}},
			{Name: "azet", Domains: []string{"azet.sk"}},
			{Name: "centrum", Domains: []string{"centrum.sk", "centrum.cz"}},
			{Name: "microsoft", Domains: []string{"hotmail.com", "outlook.com", "live.com"}},
			{Name: "apple", Domains: []string{"icloud.com", "me.com"}},
			{Name: "seznam", Domains: []string{"seznam.cz", "email.cz"}},
			{Name: "stonline", Domains: []string{"stonline.sk"}},
			{Name: "yahoo", Domains: []string{"yahoo.com"}},
			{Name: "zoznam", Domains: []string{"zoznam.sk"}},
			{Name: "other", Domains: []string{"example.org", "example.net", "example.com"}},
		},
		Default: Domain{
			RatePerSec:    100,
			UnknownShare:  0.0005,
			SpamShare:     0.002,
			TempFailShare: 0.00003,
		},
		Domains: map[string]Domain{
			"gmail.com": {
				RatePerSec:   300,
				Burst:        30,
				RateReply:    "450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered. Please resend your message at a later time. If the user is able to receive mail at that time, your message will be delivered. For more information, please visit https://support.google.com/mail/?p=ReceivingRate" + gsmtp,
				UnknownShare: 0.00012,
				UnknownReply: "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.com/mail/?p=NoSuchUser" + gsmtp,
				FullReply:    "552 5.2.2 The recipient's inbox is out of storage space and inactive. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaPerm" + gsmtp,
				SizeShare:    0.00022,
				SizeLimit:    4096, // the full "newsletter" (about 6 KB) is refused, its small variant (about 1 KB) passes
				SizeReply:    "552 5.3.4 Your message exceeded Google's message size limits. Please visit https://support.google.com/mail/?p=MaxSizeError to review our size guidelines." + gsmtp,
			},
			"azet.sk": {
				RatePerSec:   80,
				UnknownShare: 0.00043,
				UnknownReply: "550 5.1.1 Recipient address rejected",
				SpamShare:    0.00135,
				SpamReply:    "554 5.7.1 Message rejected: considered as spam",
			},
			"centrum.sk": {
				RatePerSec:    10,
				UnknownShare:  0.00031,
				UnknownReply:  "550 #5.1.0 Address rejected.",
				SpamShare:     0.441,
				SpamReply:     "554 5.7.1 Message rejected as spam",
				TempFailShare: 0.00394,
				TempFailReply: "421 4.7.0 Try again later, closing connection.",
			},
			"hotmail.com": {
				RatePerSec:    40,
				RateReply:     "452 4.2.1 Too many messages from your IP at this time; slow down and try again later",
				UnknownShare:  0.00062,
				UnknownReply:  "550 5.5.0 Requested action not taken: mailbox unavailable",
				TempFailShare: 0.00015,
				TempFailReply: "451 4.4.4 Temporary server error. Please try again later",
			},
			"icloud.com": {
				RatePerSec:    10,
				RateReply:     "421 4.7.0 Message deferred due to excessive volume. Please try again later",
				UnknownShare:  0.00075,
				UnknownReply:  "550 5.1.1 user does not exist",
				TempFailShare: 0.0154,
				TempFailReply: "451 4.3.0 Mailbox temporarily unavailable, please try again later",
			},
			"seznam.cz": {
				RatePerSec:    25,
				UnknownShare:  0.00041,
				UnknownReply:  "550 5.1.1 sorry, no such mailbox here",
				SpamShare:     0.00242,
				SpamReply:     "554 5.7.1 Message rejected, considered as spam",
				TempFailShare: 0.00003,
				TempFailReply: "421 4.4.2 Service temporarily unavailable, closing connection",
			},
			"stonline.sk": {
				RatePerSec:   10,
				UnknownShare: 0.00043,
				UnknownReply: "550 5.1.1 Recipient address rejected: User unknown in local recipient table",
			},
			"yahoo.com": {
				RatePerSec:   40,
				RateReply:    "452 4.2.1 [TSS04] Messages temporarily deferred due to unexpected volume or user complaints",
				UnknownShare: 0.00127,
				UnknownReply: "552 1 Requested mail action aborted, mailbox not found",
			},
			"zoznam.sk": {
				RatePerSec:   10,
				UnknownShare: 0.00024,
				UnknownReply: "550 5.1.1 Recipient address rejected: User unknown in virtual mailbox table",
			},
		},
	}
}
