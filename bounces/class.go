package bounces

import (
	"fmt"
)

// Class is the diagnosis of an answer or a bounce, chosen by the action it
// leads to. The zero value is ClassUnknown. Its JSON and text form is the
// snake_case name from the design's table (for example "rate_limited").
type Class uint8

// The classes, exactly as in DESIGN.md.
const (
	ClassUnknown          Class = iota // anything no rule explains
	ClassDelivered                     // 250, and the 200 of ESP exports
	ClassAutoReply                     // vacation and other automatic replies
	ClassRateLimited                   // the provider defers because too much was sent
	ClassTransient                     // 421, 451, 4.x.x, timeouts, 499
	ClassInvalidRecipient              // the address does not exist
	ClassMailboxFull                   // the mailbox is over quota
	ClassMessageTooLarge               // the message exceeds a size limit
	ClassSpamBlocked                   // a spam filter blocked the content
	ClassPolicyBlocked                 // reputation, blocklists, PTR, relaying, policy
	ClassAuthFailure                   // SPF/DKIM/DMARC failures
	ClassComplaint                     // ARF feedback report: marked as spam
	ClassSuppressed                    // 605: the address is already suppressed
	numClasses
)

var classNames = [numClasses]string{
	ClassUnknown:          "unknown",
	ClassDelivered:        "delivered",
	ClassAutoReply:        "auto_reply",
	ClassRateLimited:      "rate_limited",
	ClassTransient:        "transient",
	ClassInvalidRecipient: "invalid_recipient",
	ClassMailboxFull:      "mailbox_full",
	ClassMessageTooLarge:  "message_too_large",
	ClassSpamBlocked:      "spam_blocked",
	ClassPolicyBlocked:    "policy_blocked",
	ClassAuthFailure:      "auth_failure",
	ClassComplaint:        "complaint",
	ClassSuppressed:       "suppressed",
}

// Classes returns every class in declaration order.
func Classes() []Class {
	out := make([]Class, numClasses)
	for i := range out {
		out[i] = Class(i)
	}
	return out
}

// Valid reports whether c is one of the declared classes.
func (c Class) Valid() bool { return c < numClasses }

// String returns the class's snake_case name, or "class(N)" for an invalid value.
func (c Class) String() string {
	if !c.Valid() {
		return fmt.Sprintf("class(%d)", uint8(c))
	}
	return classNames[c]
}

// ParseClass returns the class named s (its snake_case name).
func ParseClass(s string) (Class, error) {
	for i, n := range classNames {
		if n == s {
			return Class(i), nil
		}
	}
	return ClassUnknown, fmt.Errorf("bounces: unknown class %q", s)
}

// MarshalText implements encoding.TextMarshaler.
func (c Class) MarshalText() ([]byte, error) {
	if !c.Valid() {
		return nil, fmt.Errorf("bounces: invalid class %d", uint8(c))
	}
	return []byte(classNames[c]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *Class) UnmarshalText(b []byte) error {
	v, err := ParseClass(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Hard reports whether the class means the address itself is permanently
// undeliverable (it should be suppressed): invalid_recipient, complaint and
// suppressed. A Diagnosis may still be soft for such a class when the answer
// was temporary (a 4xx "user unknown").
func (c Class) Hard() bool {
	return c == ClassInvalidRecipient || c == ClassComplaint || c == ClassSuppressed
}

// Group is the action group of a class: what the feedback loop does with it.
// Accuracy against the reference corpus is scored on groups as well as on
// classes.
type Group uint8

// The action groups.
const (
	GroupNone        Group = iota // delivered, auto_reply
	GroupThrottle                 // rate_limited
	GroupRetry                    // transient, mailbox_full, unknown
	GroupSuppress                 // invalid_recipient, complaint, suppressed
	GroupResendSmall              // message_too_large
	GroupReview                   // spam_blocked, policy_blocked, auth_failure
)

var groupNames = [...]string{"none", "throttle", "retry", "suppress", "resend_small", "review"}

// String returns the group's snake_case name.
func (g Group) String() string {
	if int(g) < len(groupNames) {
		return groupNames[g]
	}
	return fmt.Sprintf("group(%d)", uint8(g))
}

// MarshalText implements encoding.TextMarshaler.
func (g Group) MarshalText() ([]byte, error) { return []byte(g.String()), nil }

// Group returns the action group of c.
func (c Class) Group() Group {
	switch c {
	case ClassDelivered, ClassAutoReply:
		return GroupNone
	case ClassRateLimited:
		return GroupThrottle
	case ClassInvalidRecipient, ClassComplaint, ClassSuppressed:
		return GroupSuppress
	case ClassMessageTooLarge:
		return GroupResendSmall
	case ClassSpamBlocked, ClassPolicyBlocked, ClassAuthFailure:
		return GroupReview
	default:
		return GroupRetry
	}
}
