package compose

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// clean reports whether v is acceptable as a header value by the rules of
// checkValue; limit is the byte limit that applies.
func clean(v string, limit int) bool {
	if len(v) > limit || !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if r < ' ' && r != '\t' || r == 0x7f {
			return false
		}
	}
	return true
}

func cleanName(k string) bool {
	if k == "" || len(k) > maxHeaderName {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < '!' || c > '~' || c == ':' {
			return false
		}
	}
	return true
}

// normSpace collapses runs of white space, as header folding and unfolding
// may do.
func normSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

// FuzzRender renders the newsletter with fuzzed data and header values. A
// call either fails with a header or template error and no message, or
// returns a message that go-message parses back, with CRLF line ends, the
// expected To and Subject, and no header fields beyond those expected.
func FuzzRender(f *testing.F) {
	f.Add("Jana", "20% off", "X-Tracking", "abc", false)
	f.Add("Ľudmila Šťastná", "<script>alert(1)</script>", "List-Unsubscribe", "<https://shop.example.com/u/1>", true)
	f.Add("Jana\r\nBcc: evil@example.net", "x", "X-A", "v", false)
	f.Add("Jana", "x\r\n.\r\nMAIL FROM:<x@y>", "X-A", "v\r\nBcc: evil@example.net", false)
	f.Add("=?utf-8?q?=0D=0ABcc:_x@example.net?=", "x", "X-A", "=?utf-8?q?=0D=0A?=", true)
	f.Add(strings.Repeat("long ", 200), strings.Repeat("=", 2000), "X-Long", strings.Repeat("a", 890), false)
	f.Add("\t  ", "", "Subject", "override", false)
	f.Add("--=_bl_mixed_", "--=_bl_alter_e1e0055270ee93ca--", "Content-Type", "text/html", false)
	f.Fuzz(func(t *testing.T, firstName, offer, hname, hvalue string, small bool) {
		in := testInput()
		in.Small = small
		in.Data = map[string]any{"first_name": firstName, "offer": offer}
		in.Headers = map[string]string{hname: hvalue}
		msg, err := Default().Render(in)

		subject := strings.TrimSpace(firstName + ", the May newsletter from Example Shop")
		ck, wantErr := expectErr(hname, hvalue, subject)
		if err != nil {
			if msg != nil {
				t.Fatalf("Render() = %d bytes and error %v", len(msg), err)
			}
			if wantErr == nil || !errors.Is(err, wantErr) {
				t.Fatalf("Render() error = %v, want %v", err, wantErr)
			}
			return
		}
		if wantErr != nil {
			t.Fatalf("Render() = nil error, want %v (first_name %q, header %q: %q)", wantErr, firstName, hname, hvalue)
		}
		if !crlfOnly(msg) {
			t.Fatal("Render() has a line not ending in CRLF")
		}
		p, err := parseMessageErr(msg)
		if err != nil {
			t.Fatalf("rendered message does not parse back: %v\n%s", err, msg)
		}
		want := map[string]bool{"Date": true, "From": true, "To": true, "Subject": true, "Message-Id": true,
			"Mime-Version": true, CampaignHeader: true, ck: true, "Content-Type": true}
		for _, k := range topKeys(p.header) {
			if !want[k] {
				t.Fatalf("unexpected header field %q\n%s", k, msg)
			}
			delete(want, k)
		}
		if len(want) > 0 {
			t.Fatalf("missing header fields %v\n%s", want, msg)
		}
		if got := p.header.Get("To"); got != "jana.novakova@example.sk" {
			t.Fatalf("To = %q, want jana.novakova@example.sk", got)
		}
		if got, err := p.header.Subject(); err != nil || normSpace(got) != normSpace(subject) {
			t.Fatalf("Subject() = %q, %v, want %q", got, err, subject)
		}
		got := p.header.Get(ck)
		if !isASCII(hvalue) {
			got, err = p.header.Text(ck)
		}
		if err != nil || normSpace(got) != normSpace(hvalue) {
			t.Fatalf("%s = %q, %v, want %q", ck, got, err, hvalue)
		}
		wantStructure := "multipart/mixed[multipart/alternative[text/plain,text/html],image/png]"
		if small {
			wantStructure = "multipart/alternative[text/plain,text/html]"
		}
		if p.structure != wantStructure {
			t.Fatalf("structure = %q, want %q", p.structure, wantStructure)
		}
	})
}

// expectErr models the checks of Render in their order: the header name,
// its value, then the subject. It returns the canonical header name and the
// sentinel error expected, or nil.
func expectErr(hname, hvalue, subject string) (string, error) {
	switch {
	case strings.ContainsAny(hname, "\r\n"):
		return "", ErrHeaderInjection
	case !cleanName(hname):
		return "", ErrInvalidHeader
	}
	ck, err := checkHeaderName(hname)
	switch {
	case err != nil:
		return "", ErrInvalidHeader
	case strings.ContainsAny(hvalue, "\r\n"):
		return ck, ErrHeaderInjection
	case !clean(hvalue, maxHeaderValue):
		return ck, ErrInvalidHeader
	case strings.ContainsAny(subject, "\r\n"):
		return ck, ErrHeaderInjection
	case !clean(subject, maxHeaderValue):
		return ck, ErrInvalidHeader
	}
	return ck, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
