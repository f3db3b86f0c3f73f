package queue

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/queue/compose"
)

// TestCheckAddressHostile tries addresses that would inject a header field
// or an SMTP command, or hide what they are: every one is refused.
func TestCheckAddressHostile(t *testing.T) {
	for _, s := range []string{
		"a@b.cz\r\nBcc: x@y.cz",
		"a@b.cz\nBcc: x@y.cz",
		"a@b.cz\rBcc: x@y.cz",
		"a@b.cz\r\n",
		`"a\r\nBcc: x@y.cz"@b.cz`,
		"a@b.cz>\r\nRCPT TO:<x@y.cz",
		"a@b.cz> NOTIFY=NEVER",
		"<a@b.cz>",
		"Eve <a@b.cz>",
		"a@b.cz, x@y.cz",
		"a@b.cz;x@y.cz",
		"a b@c.cz",
		" a@b.cz",
		"a@b.cz ",
		"a@b.cz\t",
		"a@b.cz\x00",
		"a\x00@b.cz",
		"a\x7f@b.cz",
		"a\u0085Bcc@b.cz", // NEL
		"a\u2028Bcc@b.cz", // line separator
		"a\u2029@b.cz",    // paragraph separator
		"a\u00a0@b.cz",    // no-break space
		"a\u200b@b.cz",    // zero-width space
		"a@b.cz\u200b",
		"a\u202e@b.cz", // right-to-left override
		"a\xff@b.cz",
		"(x)a@b.cz",
		"a@b.cz(x)",
		"a@[127.0.0.1]",
		"a@localhost",
	} {
		if d, err := CheckAddress(s); err == nil {
			t.Errorf("CheckAddress(%q) = %q, nil; want an error", s, d)
		}
	}
}

// FuzzCheckAddress checks that an address CheckAddress accepts is safe to
// write into the To header and the SMTP RCPT command: no white space,
// control or format character, no specials that end an angle address or a
// header field, and the domain it returns is its own, normalised; and that
// the queue's templates render it as the To header, unchanged.
func FuzzCheckAddress(f *testing.F) {
	for _, s := range []string{"jana@centrum.sk", "jan@příklad.cz", "a+b@x.example", "a@b.cz\r\nBcc: x@y.cz", `"a b"@c.cz`, "a\u2028@b.cz", "a@xn--pklad-zsa96e.cz"} {
		f.Add(s)
	}
	store := compose.Default()
	f.Fuzz(func(t *testing.T, s string) {
		d, err := CheckAddress(s)
		if err != nil {
			if d != "" {
				t.Fatalf("CheckAddress(%q) = %q with error %v", s, d, err)
			}
			return
		}
		if !utf8.ValidString(s) {
			t.Fatalf("CheckAddress(%q) accepts invalid UTF-8", s)
		}
		for _, r := range s {
			if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || strings.ContainsRune(`<>,;:"\()[]`, r) {
				t.Fatalf("CheckAddress(%q) accepts %U", s, r)
			}
		}
		at := strings.LastIndexByte(s, '@')
		if want, err := bounces.NormalizeDomain(s[at+1:]); err != nil || d != want || !strings.Contains(d, ".") {
			t.Fatalf("CheckAddress(%q) = %q, want the normalised domain %q (%v)", s, d, want, err)
		}
		msg, err := store.Render(compose.Input{From: "news@shop.example", To: s, MessageID: "a@b", Template: "notice",
			Data: map[string]any{"first_name": "x"}, Date: time.Unix(0, 0)})
		if err != nil {
			t.Fatalf("Render(To %q) = %v", s, err)
		}
		head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
		if bytes.Count(head, []byte("\r\nTo: ")) != 1 || bytes.Contains(head, []byte("\r\nBcc:")) {
			t.Fatalf("Render(To %q) header:\n%s", s, head)
		}
	})
}

// TestClientRefusesInjection runs messages through the client's checks
// (no Redis needed): a CR or LF that would reach the header is refused at
// enqueue with the field named; one in the body's data is text, and the
// rendered message has no injected header and escapes it in HTML.
func TestClientRefusesInjection(t *testing.T) {
	c := NewClient(nil, ClientOptions{Templates: compose.Default()})
	base := func() Message {
		return Message{Campaign: "may", To: "jana@centrum.sk", From: "news@shop.example", Template: "newsletter",
			Data:    map[string]any{"first_name": "Jana", "offer": "20% off"},
			Headers: map[string]string{"List-Unsubscribe": "<https://shop.example/u/1>"}}
	}
	const bcc = "\r\nBcc: evil@example.net"
	tests := []struct {
		name    string
		edit    func(*Message)
		wantErr string // the field named; "" accepts
	}{
		{"recipient", func(m *Message) { m.To += bcc }, "recipient"},
		{"recipient with a line separator", func(m *Message) { m.To = "jana\u2028Bcc@centrum.sk" }, "recipient"},
		{"sender", func(m *Message) { m.From += bcc }, "from"},
		{"campaign", func(m *Message) { m.Campaign += bcc }, "campaign"},
		{"message id", func(m *Message) { m.ID = "x@shop.example" + bcc }, "message id"},
		{"header value", func(m *Message) { m.Headers["List-Unsubscribe"] += bcc }, "List-Unsubscribe"},
		{"header name", func(m *Message) { m.Headers["X-A"+bcc] = "v" }, "header name"},
		{"subject data", func(m *Message) { m.Data["first_name"] = "Jana" + bcc }, "subject"},
		{"body data", func(m *Message) { m.Data["offer"] = "20% off" + bcc + "\r\n\r\n<script>alert(1)</script>" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			tt.edit(&m)
			p, err := c.prepare(m, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("prepare(%+v) error = %v, want one naming %s", m, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("prepare(%+v) error = %v", m, err)
			}
			msg, err := compose.Default().Render(compose.Input{From: p.From, To: p.To, MessageID: p.ID, Campaign: p.Campaign,
				Template: p.Template, Data: p.Data, Headers: p.Headers, Date: p.Enqueued})
			if err != nil {
				t.Fatal(err)
			}
			e, err := message.Read(bytes.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			for f := e.Header.Fields(); f.Next(); {
				if k := strings.ToLower(f.Key()); k == "bcc" || k == "cc" {
					t.Fatalf("injected header field %s: %s", f.Key(), f.Value())
				}
			}
			var html string
			_ = e.Walk(func(_ []int, part *message.Entity, err error) error {
				if err != nil {
					return err
				}
				if mt, _, _ := part.Header.ContentType(); mt == "text/html" {
					b, _ := io.ReadAll(part.Body)
					html = string(b)
				}
				return nil
			})
			if strings.Contains(html, "<script") || !strings.Contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
				t.Errorf("the HTML part does not escape the data:\n%s", html)
			}
		})
	}
}
