package bounces

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParseReply(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Reply
	}{
		{"basic and enhanced", "550 5.1.1 <jan@azet.sk>: Recipient address rejected: User unknown",
			Reply{550, "5.1.1", "550 5.1.1 <jan@azet.sk>: Recipient address rejected: User unknown"}},
		{"continuation dash", "550-5.7.1 [192.0.2.1] Our system has detected", Reply{550, "5.7.1", "550-5.7.1 [192.0.2.1] Our system has detected"}},
		{"hash enhanced", "550 #5.1.0 Address rejected.", Reply{550, "5.1.0", "550 #5.1.0 Address rejected."}},
		{"diagnostic code prefix", "smtp; 554 5.7.1 Message rejected as spam", Reply{554, "5.7.1", "smtp; 554 5.7.1 Message rejected as spam"}},
		{"yahoo odd enhanced", "552 1 Requested mail action aborted, mailbox not found", Reply{552, "", "552 1 Requested mail action aborted, mailbox not found"}},
		{"code only", "421", Reply{421, "", "421"}},
		{"export code", "605", Reply{0, "", "605"}},
		{"no code", "Connection timed out", Reply{0, "", "Connection timed out"}},
		{"ip is not enhanced", "421 Too many connections from 4.2.1.1", Reply{421, "", "421 Too many connections from 4.2.1.1"}},
		{"version is not enhanced", "250 ok v2.0.0-beta", Reply{250, "", "250 ok v2.0.0-beta"}},
		{"tss04", "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred", Reply{421, "4.7.0", "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred"}},
		{"enhanced later", "Remote host said: 550 Requested action not taken (#5.1.1)", Reply{0, "5.1.1", "Remote host said: 550 Requested action not taken (#5.1.1)"}},
		{"three digit detail", "451 4.7.650 The mail server has been temporarily rate limited", Reply{451, "4.7.650", "451 4.7.650 The mail server has been temporarily rate limited"}},
		{"trimmed", "  250 2.0.0 OK  \r\n", Reply{250, "2.0.0", "250 2.0.0 OK"}},
		{"empty", "", Reply{}},
		{"code glued", "550User unknown", Reply{0, "", "550User unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseReply(tt.in); got != tt.want {
				t.Errorf("ParseReply(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"550 5.1.1 user unknown", "smtp; 452 4.2.2 over quota", "552 1 x", "#5.1.0", "4.4.7", "5.1.1234", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := ParseReply(s)
		if r.Code != 0 && (r.Code < 200 || r.Code > 599) {
			t.Errorf("ParseReply(%q).Code = %d, want 0 or 200..599", s, r.Code)
		}
		if r.Enhanced != "" {
			if e, _ := FindEnhanced(r.Enhanced); e != r.Enhanced {
				t.Errorf("ParseReply(%q).Enhanced = %q, which FindEnhanced reads as %q", s, r.Enhanced, e)
			}
			if c := r.Enhanced[0]; c != '2' && c != '4' && c != '5' {
				t.Errorf("ParseReply(%q).Enhanced = %q: bad class", s, r.Enhanced)
			}
		}
	})
}

func TestClassNames(t *testing.T) {
	want := []string{"unknown", "delivered", "auto_reply", "rate_limited", "transient", "invalid_recipient", "mailbox_full",
		"message_too_large", "spam_blocked", "policy_blocked", "auth_failure", "complaint", "suppressed"}
	cs := Classes()
	if len(cs) != len(want) {
		t.Fatalf("Classes() has %d classes, want %d", len(cs), len(want))
	}
	for i, c := range cs {
		if c.String() != want[i] {
			t.Errorf("Classes()[%d].String() = %q, want %q", i, c, want[i])
		}
		b, err := json.Marshal(c)
		if err != nil || string(b) != `"`+want[i]+`"` {
			t.Errorf("json.Marshal(%v) = %s, %v", c, b, err)
		}
		var back Class
		if err := json.Unmarshal(b, &back); err != nil || back != c {
			t.Errorf("json.Unmarshal(%s) = %v, %v, want %v", b, back, err, c)
		}
	}
	if _, err := ParseClass("spamm"); err == nil {
		t.Error(`ParseClass("spamm"): want an error`)
	}
	if Class(200).Valid() {
		t.Error("Class(200).Valid() = true")
	}
}

func TestClassGroup(t *testing.T) {
	tests := []struct {
		c    Class
		want Group
	}{
		{ClassRateLimited, GroupThrottle},
		{ClassTransient, GroupRetry},
		{ClassMailboxFull, GroupRetry},
		{ClassUnknown, GroupRetry},
		{ClassInvalidRecipient, GroupSuppress},
		{ClassComplaint, GroupSuppress},
		{ClassSuppressed, GroupSuppress},
		{ClassMessageTooLarge, GroupResendSmall},
		{ClassSpamBlocked, GroupReview},
		{ClassPolicyBlocked, GroupReview},
		{ClassAuthFailure, GroupReview},
		{ClassDelivered, GroupNone},
		{ClassAutoReply, GroupNone},
	}
	for _, tt := range tests {
		t.Run(tt.c.String(), func(t *testing.T) {
			if got := tt.c.Group(); got != tt.want {
				t.Errorf("%v.Group() = %v, want %v", tt.c, got, tt.want)
			}
		})
	}
}

func TestNormalizeDomain(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"Azet.SK", "azet.sk", false},
		{"gmail.com.", "gmail.com", false},
		{" centrum.sk ", "centrum.sk", false},
		{"(other)", "(other)", false},
		{"bücher.example", "xn--bcher-kva.example", false},
		{"ŽILINA.sk", "xn--ilina-tib.sk", false},
		{"a b.com", "", true},
		{"0000..", "", true},
		{".azet.sk", "", true},
		{"azet..sk", "", true},
		{"-azet.sk", "", true},
		{"azet-.sk", "", true},
		{"mail.-azet.sk", "", true},
		{"ab--cd.sk", "", true},
		{"xn--abc.sk", "", true},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", false},
		{"a-b--c.sk", "a-b--c.sk", false},
		{"1.2.3.4", "1.2.3.4", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeDomain(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NormalizeDomain(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBadDomain) {
				t.Errorf("NormalizeDomain(%q) error %v does not wrap ErrBadDomain", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("NormalizeDomain(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEventNormalize(t *testing.T) {
	tests := []struct {
		name    string
		ev      Event
		want    string
		wantErr bool
	}{
		{"from recipient", Event{Recipient: "jana@Centrum.SK"}, "centrum.sk", false},
		{"bracketed recipient", Event{Recipient: "<jana@centrum.sk>"}, "centrum.sk", false},
		{"given domain wins", Event{Recipient: "x@a.com", Domain: "B.com"}, "b.com", false},
		{"idna recipient", Event{Recipient: "jan@příklad.cz"}, "xn--pklad-zsa96e.cz", false},
		{"no domain", Event{Recipient: "jana"}, "", true},
		{"line break in recipient", Event{Recipient: "jana@centrum.sk\r\nBcc: x@y.com"}, "", true},
		{"line break with domain given", Event{Recipient: "jana\n@centrum.sk", Domain: "centrum.sk"}, "centrum.sk", true},
		{"nul in recipient", Event{Recipient: "jana\x00@centrum.sk"}, "", true},
		{"nothing", Event{}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.ev
			err := e.Normalize()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Normalize(%+v) error = %v, wantErr %v", tt.ev, err, tt.wantErr)
			}
			if e.Domain != tt.want {
				t.Errorf("Normalize(%+v).Domain = %q, want %q", tt.ev, e.Domain, tt.want)
			}
		})
	}
}

func TestSourceText(t *testing.T) {
	for _, name := range []string{"smtp", "dsn", "arf", "webhook", "log", "export"} {
		s, err := ParseSource(name)
		if err != nil || s.String() != name {
			t.Errorf("ParseSource(%q) = %v, %v", name, s, err)
		}
	}
	if _, err := ParseSource("fax"); err == nil {
		t.Error(`ParseSource("fax"): want an error`)
	}
}

func TestRecordError(t *testing.T) {
	tests := []struct {
		e    RecordError
		want string
	}{
		{RecordError{File: "a.ndjson", Line: 3, Offset: -1, Reason: "missing \"code\""}, `bounces: a.ndjson:3: missing "code"`},
		{RecordError{File: "box.mbox", Offset: 1024, Reason: "not a bounce"}, "bounces: box.mbox@1024: not a bounce"},
		{RecordError{File: "x.eml", Offset: -1, Reason: "bad MIME"}, "bounces: x.eml: bad MIME"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if !errors.Is(&tt.e, ErrSkipped) {
			t.Errorf("errors.Is(%v, ErrSkipped) = false", &tt.e)
		}
	}
}
