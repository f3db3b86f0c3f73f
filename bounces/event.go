package bounces

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/net/idna"
)

// Source says where an Event came from. Its JSON form is its name.
type Source uint8

// The sources of the design's event format. The zero value SourceUnset is
// written as an empty string and omitted from JSON.
const (
	SourceUnset   Source = iota
	SourceSMTP           // the answer of our own SMTP transaction
	SourceDSN            // a delivery status notification or non-standard bounce
	SourceARF            // an ARF feedback report
	SourceWebhook        // an ESP webhook
	SourceLog            // an MTA log line
	SourceExport         // an ESP export (the wide CSV of the original analysis)
	numSources
)

var sourceNames = [numSources]string{"", "smtp", "dsn", "arf", "webhook", "log", "export"}

// String returns the source's name ("" for SourceUnset).
func (s Source) String() string {
	if s < numSources {
		return sourceNames[s]
	}
	return fmt.Sprintf("source(%d)", uint8(s))
}

// ParseSource returns the source named s; "" is SourceUnset.
func ParseSource(s string) (Source, error) {
	for i, n := range sourceNames {
		if n == s {
			return Source(i), nil
		}
	}
	return SourceUnset, fmt.Errorf("bounces: unknown source %q (want smtp, dsn, arf, webhook, log or export)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (s Source) MarshalText() ([]byte, error) {
	if s >= numSources {
		return nil, fmt.Errorf("bounces: invalid source %d", uint8(s))
	}
	return []byte(sourceNames[s]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Source) UnmarshalText(b []byte) error {
	v, err := ParseSource(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Event is one answer or bounce: the unit every input is turned into and
// every output speaks (see the NDJSON format in the README).
//
// Domain is the recipient's domain, lower-cased and in ASCII (IDNA
// punycode); use NormalizeDomain or Event.Normalize to fill it.
type Event struct {
	Time      time.Time `json:"time"`
	Campaign  string    `json:"campaign,omitempty"`
	MessageID string    `json:"message_id,omitempty"`
	Recipient string    `json:"recipient,omitempty"`
	Domain    string    `json:"domain,omitempty"`
	Code      int       `json:"code"`
	Enhanced  string    `json:"enhanced,omitempty"`
	Text      string    `json:"text,omitempty"`
	Source    Source    `json:"source,omitempty"`
}

// ErrBadDomain is returned (wrapped) by NormalizeDomain for a domain that
// cannot be converted to ASCII.
var ErrBadDomain = errors.New("bounces: bad domain")

// NormalizeDomain lower-cases d, strips a trailing dot and surrounding
// brackets or spaces, and converts an internationalised name to its ASCII
// (punycode) form. "(other)", the catch-all of exports, is kept as is.
func NormalizeDomain(d string) (string, error) {
	d = strings.TrimSpace(d)
	d = strings.TrimSuffix(d, ".")
	if d == "" || d == "(other)" {
		return d, nil
	}
	if strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return "", fmt.Errorf("%w %q: empty label", ErrBadDomain, d)
	}
	if isASCIILower(d) {
		return d, nil
	}
	a, err := idna.Lookup.ToASCII(strings.ToLower(d))
	if err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrBadDomain, d, err)
	}
	return a, nil
}

// isASCIILower reports whether s is already a lower-case ASCII host name
// that the IDNA lookup profile returns unchanged, so the common case skips
// the IDNA tables: letters, digits, hyphens and dots, no label beginning or
// ending with a hyphen, and no hyphens in a label's third and fourth place
// (an "xn--" label must be checked as punycode). Anything else, valid or
// not, goes through idna.Lookup.
func isASCIILower(s string) bool {
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if n := i - start; n > 0 && (s[start] == '-' || s[i-1] == '-' || n >= 4 && s[start+2] == '-' && s[start+3] == '-') {
				return false
			}
			start = i + 1
			continue
		}
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isControl reports whether r is a C0 control character (tab, CR and LF
// among them).
func isControl(r rune) bool { return r < 0x20 }

// DomainOf returns the normalised domain of an address ("jan@Azet.SK" →
// "azet.sk"), or an error when the address has no domain.
func DomainOf(addr string) (string, error) {
	addr = strings.Trim(strings.TrimSpace(addr), "<>")
	at := strings.LastIndexByte(addr, '@')
	if at < 0 || at == len(addr)-1 {
		return "", fmt.Errorf("%w: address %q has no domain", ErrBadDomain, addr)
	}
	return NormalizeDomain(addr[at+1:])
}

// ErrBadRecipient is returned (wrapped) by Event.Normalize for a recipient
// holding a control character (a line break among them): no address has
// one, and it must not reach a suppression list or a log line.
var ErrBadRecipient = errors.New("bounces: bad recipient")

// Normalize checks the recipient, fills Domain from Recipient when it is
// empty and normalises it.
func (e *Event) Normalize() error {
	if i := strings.IndexFunc(e.Recipient, isControl); i >= 0 {
		return fmt.Errorf("%w: control character %U at byte %d", ErrBadRecipient, e.Recipient[i], i)
	}
	if e.Domain == "" && e.Recipient != "" {
		d, err := DomainOf(e.Recipient)
		if err != nil {
			return err
		}
		e.Domain = d
		return nil
	}
	d, err := NormalizeDomain(e.Domain)
	if err != nil {
		return err
	}
	e.Domain = d
	return nil
}
