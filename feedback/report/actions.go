package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/bounceloop/bounceloop/bounces"
)

// action returns the recommended action of f. It follows from the code's
// class (and the kind of finding), never from the domain's name.
func action(f *Finding) string {
	where := ""
	if f.Domain != "" {
		where = " at " + f.Domain
	}
	since := f.Day
	if since == "" {
		since = f.onsetDay
	}
	switch f.Class {
	case bounces.ClassRateLimited:
		if f.Kind == KindVolumeCorrelated {
			if v, ok := f.Evidence["suggested_per_minute"]; ok {
				return fmt.Sprintf("Lower %s's sending rate in config.toml: [policy.domains.%q] rate = \"%d/m\" (%s/hour). "+
					"That is the highest daily volume at which the %d rate stayed low (%s a day) spread over 24 hours; "+
					"if the campaign is sent in a shorter window, keep its hourly volume at %s at most.",
					f.Domain, f.Domain, int64(v), num(int64(f.Evidence["suggested_per_hour"])), f.Code,
					num(int64(f.Evidence["safe_daily_attempts"])), num(int64(f.Evidence["suggested_per_hour"])))
			}
			return fmt.Sprintf("Lower %s's sending rate in config.toml: the %d rate was high on every day of the month, so start at half the current rate and watch the rate of %d.", f.Domain, f.Code, f.Code)
		}
		return fmt.Sprintf("The provider defers when too much is sent%s: bounceloop slows the domain down and retries after a delay; if it persists, lower the domain's rate in config.toml.", where)
	case bounces.ClassSpamBlocked, bounces.ClassPolicyBlocked:
		what := "content and sender reputation"
		if f.Domain == "" {
			return fmt.Sprintf("Review %s: check the reply texts of %d and what was sent on %s.", what, f.Code, f.Day)
		}
		if since != "" {
			return fmt.Sprintf("Review %s with %s since %s: read the reply texts of %d, the provider's postmaster tools and what changed in the campaigns that day; bounceloop flags the domain for review and pauses it past the threshold.", what, f.Domain, since, f.Code)
		}
		return fmt.Sprintf("Review %s with %s: read the reply texts of %d and the provider's postmaster tools; bounceloop flags the domain for review.", what, f.Domain, f.Code)
	case bounces.ClassAuthFailure:
		return fmt.Sprintf("Check the sender's SPF, DKIM and DMARC%s: the provider rejects unauthenticated mail (%d).", where, f.Code)
	case bounces.ClassInvalidRecipient:
		return fmt.Sprintf("List hygiene: suppress the addresses that answered %d%s (bounceloop does) and check where the list came from (typos, stale or bought addresses); tell the client which recipients do not exist.", f.Code, where)
	case bounces.ClassComplaint:
		return fmt.Sprintf("Recipients%s marked the mail as spam: suppress them (bounceloop does) and review content and consent.", where)
	case bounces.ClassMailboxFull:
		return fmt.Sprintf("Mailboxes%s are full: retry later and suppress addresses that stay full after repeated attempts.", where)
	case bounces.ClassMessageTooLarge:
		return fmt.Sprintf("Send the small template to the recipients%s that answered %d (bounceloop resends small); keep the regular template's size and attachments down.", where, f.Code)
	case bounces.ClassSuppressed:
		if f.Kind == KindSpike {
			return fmt.Sprintf("A list holding previously failed (suppressed) addresses was sent on %s: find that day's campaign and clean its list before it is sent again.", f.Day)
		}
		return fmt.Sprintf("Addresses already suppressed were sent to%s: clean the lists against the suppression list before sending.", where)
	case bounces.ClassTransient:
		if f.Kind == KindNotVolumeCorrelated {
			return fmt.Sprintf("Temporary failures%s that do not depend on the volume sent: retry (bounceloop retries on the domain's schedule); no rate change needed.", where)
		}
		return fmt.Sprintf("Temporary failures%s: retry after a delay (bounceloop retries on the domain's schedule and gives up after the maximum age).", where)
	case bounces.ClassDelivered, bounces.ClassAutoReply:
		return "Nothing to do: the messages were delivered."
	default:
		return fmt.Sprintf("No rule explains %d: read its reply texts and add a rule to config.toml; meanwhile it is retried on the default schedule.", f.Code)
	}
}

// num formats n with thousands separators: 1,234,567.
func num(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// pct formats a fraction as a percentage with enough digits to be
// meaningful: 41.2%, 0.43%, 0.036%, 0.0012%.
func pct(x float64) string {
	p := round(x) * 100
	switch {
	case p == 0:
		return "0%"
	case p >= 10 || p <= -10:
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	case p >= 1 || p <= -1:
		return strconv.FormatFloat(p, 'f', 2, 64) + "%"
	default:
		dec := 1 - int(math.Floor(math.Log10(math.Abs(p))))
		return strconv.FormatFloat(p, 'f', min(dec, 8), 64) + "%"
	}
}
