package compose

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestRender(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		mod       func(*Input)
		structure string
		leaves    []string // content type[;disposition[;filename]] of each leaf
		subject   string   // decoded
		rawSubj   string   // as written, "" = not checked
		keys      []string // top-level header keys in order
	}{
		{
			name:      "newsletter full",
			mod:       func(*Input) {},
			structure: "multipart/mixed[multipart/alternative[text/plain,text/html],image/png]",
			leaves:    []string{"text/plain;inline", "text/html;inline", "image/png;attachment;coupon.png"},
			subject:   "Jana, the May newsletter from Example Shop",
			rawSubj:   "Jana, the May newsletter from Example Shop",
			keys: []string{"Date", "From", "To", "Subject", "Message-Id", "Mime-Version",
				"X-Bounceloop-Campaign", "List-Unsubscribe", "Content-Type"},
		},
		{
			name:      "newsletter small",
			mod:       func(in *Input) { in.Small = true },
			structure: "multipart/alternative[text/plain,text/html]",
			leaves:    []string{"text/plain;inline", "text/html;inline"},
			subject:   "Jana, the May newsletter from Example Shop",
			keys: []string{"Date", "From", "To", "Subject", "Message-Id", "Mime-Version",
				"X-Bounceloop-Campaign", "List-Unsubscribe", "Content-Type"},
		},
		{
			name: "notice, no campaign, no headers",
			mod: func(in *Input) {
				in.Template, in.Campaign, in.Headers = "notice", "", nil
			},
			structure: "text/plain",
			leaves:    []string{"text/plain;"},
			subject:   "Service notice for Jana",
			keys: []string{"Date", "From", "To", "Subject", "Message-Id", "Mime-Version",
				"Content-Type", "Content-Transfer-Encoding"},
		},
		{
			name:      "non-ASCII subject is RFC 2047 encoded",
			mod:       func(in *Input) { in.Data["first_name"] = "Ľudmila Šťastná" },
			structure: "multipart/mixed[multipart/alternative[text/plain,text/html],image/png]",
			leaves:    []string{"text/plain;inline", "text/html;inline", "image/png;attachment;coupon.png"},
			subject:   "Ľudmila Šťastná, the May newsletter from Example Shop",
			rawSubj:   "=?utf-8?q?",
		},
		{
			name:      "ASCII subject that looks encoded is encoded",
			mod:       func(in *Input) { in.Data["first_name"] = "=?utf-8?q?=0D=0ABcc:_x@example.net?=" },
			structure: "multipart/mixed[multipart/alternative[text/plain,text/html],image/png]",
			leaves:    []string{"text/plain;inline", "text/html;inline", "image/png;attachment;coupon.png"},
			subject:   "=?utf-8?q?=0D=0ABcc:_x@example.net?=, the May newsletter from Example Shop",
			rawSubj:   "=?utf-8?b?",
		},
		{
			name:      "text only template with attachment",
			mod:       func(in *Input) { in.Template = "textatt" },
			structure: "multipart/mixed[text/plain,application/pdf]",
			leaves:    []string{"text/plain;inline", "application/pdf;attachment;Nabídka květen.pdf"},
			subject:   "Offer",
		},
	}
	s := testStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := testInput()
			tt.mod(&in)
			msg, err := s.Render(in)
			if err != nil {
				t.Fatalf("Render() error = %v, want nil", err)
			}
			if !crlfOnly(msg) {
				t.Error("Render() has a line not ending in CRLF")
			}
			p := parseMessage(t, msg)
			if p.structure != tt.structure {
				t.Errorf("structure = %q, want %q", p.structure, tt.structure)
			}
			var leaves []string
			for _, l := range p.leaves {
				s := l.contentType + ";" + l.disposition
				if l.filename != "" {
					s += ";" + l.filename
				}
				leaves = append(leaves, s)
				switch {
				case strings.HasPrefix(l.contentType, "text/"):
					if l.charset != "utf-8" || l.encoding != "quoted-printable" {
						t.Errorf("%s part: charset %q, encoding %q, want utf-8, quoted-printable", l.contentType, l.charset, l.encoding)
					}
				default:
					if l.encoding != "base64" {
						t.Errorf("%s part: encoding %q, want base64", l.contentType, l.encoding)
					}
				}
			}
			if !slices.Equal(leaves, tt.leaves) {
				t.Errorf("leaves = %q, want %q", leaves, tt.leaves)
			}
			if got, err := p.header.Subject(); err != nil || got != tt.subject {
				t.Errorf("Subject() = %q, %v, want %q", got, err, tt.subject)
			}
			if raw := p.header.Get("Subject"); !strings.HasPrefix(raw, tt.rawSubj) {
				t.Errorf("raw Subject = %q, want prefix %q", raw, tt.rawSubj)
			}
			for _, raw := range []string{"\r\nMessage-ID: <", "\r\nMIME-Version: 1.0\r\n"} {
				if !bytes.Contains(msg, []byte(raw)) {
					t.Errorf("Render() lacks %q", raw)
				}
			}
			if tt.keys != nil {
				if got := topKeys(p.header); !slices.Equal(got, tt.keys) {
					t.Errorf("header keys = %q, want %q", got, tt.keys)
				}
			}
			if id, err := p.header.MessageID(); err != nil || id != in.MessageID {
				t.Errorf("MessageID() = %q, %v, want %q", id, err, in.MessageID)
			}
			if d, err := p.header.Date(); err != nil || !d.Equal(fixedDate) {
				t.Errorf("Date() = %v, %v, want %v", d, err, fixedDate)
			}
			to, err := p.header.AddressList("To")
			if err != nil || len(to) != 1 || to[0].Address != "jana.novakova@example.sk" {
				t.Errorf("To = %v, %v, want jana.novakova@example.sk", to, err)
			}
			from, err := p.header.AddressList("From")
			if err != nil || len(from) != 1 || from[0].Name != "Example Shop" || from[0].Address != "news@shop.example.com" {
				t.Errorf("From = %v, %v, want Example Shop <news@shop.example.com>", from, err)
			}
			if got := p.header.Get(CampaignHeader); in.Campaign != "" && got != in.Campaign {
				t.Errorf("%s = %q, want %q", CampaignHeader, got, in.Campaign)
			}
			for _, l := range p.leaves {
				if name, _ := in.Data["first_name"].(string); l.contentType == "text/plain" && in.Template != "textatt" && !bytes.Contains(l.body, []byte(name)) {
					t.Errorf("text part lacks the first name:\n%s", l.body)
				}
			}
		})
	}
}

// testStore is the shipped templates plus "textatt": text only, with an
// attachment whose name is not ASCII.
func testStore(t *testing.T) *Store {
	t.Helper()
	fsys := fstest.MapFS{
		"textatt/subject.txt":                    file("Offer"),
		"textatt/text.txt":                       file("See the attachment.\n"),
		"textatt/attachments/Nabídka květen.pdf": file("%PDF-1.4\n%%EOF\n"),
	}
	for _, name := range Default().Names() {
		for _, f := range []string{"subject.txt", "text.txt", "html.html", "small/text.txt", "small/html.html", "attachments/coupon.png"} {
			if b, err := embedded.ReadFile("templates/" + name + "/" + f); err == nil {
				fsys[name+"/"+f] = &fstest.MapFile{Data: b}
			}
		}
	}
	s, err := Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRenderBodies(t *testing.T) {
	t.Parallel()
	in := testInput()
	in.Data["first_name"] = `<i>Jana</i>`
	in.Data["offer"] = `<script>alert("x")</script> & more`
	msg, err := Default().Render(in)
	if err != nil {
		t.Fatalf("Render() error = %v, want nil", err)
	}
	p := parseMessage(t, msg)
	if got, want := p.header.Get("Subject"), "<i>Jana</i>, the May newsletter from Example Shop"; got != want {
		t.Errorf("Subject = %q, want %q (text, not escaped)", got, want)
	}
	var text, html string
	for _, l := range p.leaves {
		switch l.contentType {
		case "text/plain":
			text = string(l.body)
		case "text/html":
			html = string(l.body)
		}
	}
	if !strings.Contains(text, `<script>alert("x")</script> & more`) {
		t.Errorf("text part does not carry the data verbatim:\n%s", text)
	}
	if strings.Contains(html, "<script>") {
		t.Errorf("html part contains an unescaped <script>:\n%s", html)
	}
	for _, want := range []string{`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more`, `Hello &lt;i&gt;Jana&lt;/i&gt;,`} {
		if !strings.Contains(html, want) {
			t.Errorf("html part lacks %q:\n%s", want, html)
		}
	}
	if want := `Hello <i>Jana</i>,`; !strings.Contains(text, want) {
		t.Errorf("text part lacks %q:\n%s", want, html)
	}
	if want := `href="https://shop.example.com/u/0f3c9a2e"`; !strings.Contains(html, want) {
		t.Errorf("html part lacks %q:\n%s", want, html)
	}
	for _, l := range p.leaves {
		if strings.HasPrefix(l.contentType, "text/") && bytes.Contains(l.body, []byte("\r\n")) {
			// Decoded quoted-printable bodies keep CRLF; only check that
			// lines did not get doubled.
			if bytes.Contains(l.body, []byte("\r\r")) {
				t.Errorf("%s body has doubled CR", l.contentType)
			}
		}
	}
}

func TestRenderOptionalField(t *testing.T) {
	t.Parallel()
	in := testInput()
	delete(in.Data, "unsubscribe_url")
	msg, err := Default().Render(in)
	if err != nil {
		t.Fatalf("Render() without unsubscribe_url error = %v, want nil", err)
	}
	for _, l := range parseMessage(t, msg).leaves {
		if bytes.Contains(l.body, []byte("Unsubscribe")) {
			t.Errorf("%s part without unsubscribe_url still has an Unsubscribe link:\n%s", l.contentType, l.body)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mod     func(*Input)
		wantIs  error  // errors.Is target; nil when only wantMsg is checked
		wantMsg string // substring of the message
	}{
		{"unknown template", func(in *Input) { in.Template = "nope" }, ErrNoTemplate, `"nope"`},
		{"small without variant", func(in *Input) { in.Template, in.Small = "notice", true }, ErrNoSmall, `"notice"`},
		{"missing key in subject", func(in *Input) { delete(in.Data, "first_name") }, nil, `template "newsletter": newsletter/subject.txt: template: newsletter/subject.txt:1:2: executing "newsletter/subject.txt" at <.first_name>: map has no entry for key "first_name"`},
		{"missing key in text", func(in *Input) { delete(in.Data, "offer") }, nil, `newsletter/text.txt:`},
		{"missing key in small text", func(in *Input) { delete(in.Data, "offer"); in.Small = true }, nil, `newsletter/small/text.txt:`},
		{"nil data", func(in *Input) { in.Data = nil }, nil, `newsletter/subject.txt`},
		{"CRLF in To", func(in *Input) { in.To = "a@example.com\r\nBcc: b@example.com" }, ErrHeaderInjection, "To"},
		{"LF in From", func(in *Input) { in.From = "x@example.com\nBcc: b@example.com" }, ErrHeaderInjection, "From"},
		{"CR in Message-ID", func(in *Input) { in.MessageID = "a@b\rX: y" }, ErrHeaderInjection, "Message-ID"},
		{"CRLF in campaign", func(in *Input) { in.Campaign = "c\r\nBcc: b@example.com" }, ErrHeaderInjection, "campaign"},
		{"CRLF in header value", func(in *Input) { in.Headers = map[string]string{"X-A": "v\r\nBcc: b@example.com"} }, ErrHeaderInjection, `"X-A"`},
		{"LF in header name", func(in *Input) { in.Headers = map[string]string{"X-A\nBcc": "v"} }, ErrHeaderInjection, "header name"},
		{"CRLF in subject data", func(in *Input) { in.Data["first_name"] = "Jana\r\nBcc: b@example.com" }, ErrHeaderInjection, "newsletter/subject.txt"},
		{"LF in subject data", func(in *Input) { in.Data["first_name"] = "Jana\nX" }, ErrHeaderInjection, "subject"},
		{"control char in subject", func(in *Input) { in.Data["first_name"] = "Ja\x00na" }, ErrInvalidHeader, "control character"},
		{"invalid UTF-8 in subject", func(in *Input) { in.Data["first_name"] = "Ja\xffna" }, ErrInvalidHeader, "UTF-8"},
		{"long subject", func(in *Input) { in.Data["first_name"] = strings.Repeat("a", 1000) }, ErrInvalidHeader, "subject"},
		{"header name with colon", func(in *Input) { in.Headers = map[string]string{"X:A": "v"} }, ErrInvalidHeader, "printable ASCII"},
		{"header name with space", func(in *Input) { in.Headers = map[string]string{"X A": "v"} }, ErrInvalidHeader, "printable ASCII"},
		{"header name non-ASCII", func(in *Input) { in.Headers = map[string]string{"X-Ä": "v"} }, ErrInvalidHeader, "printable ASCII"},
		{"empty header name", func(in *Input) { in.Headers = map[string]string{"": "v"} }, ErrInvalidHeader, "empty"},
		{"override From", func(in *Input) { in.Headers = map[string]string{"from": "x@example.com"} }, ErrInvalidHeader, "cannot be overridden"},
		{"override To", func(in *Input) { in.Headers = map[string]string{"TO": "x@example.com"} }, ErrInvalidHeader, "cannot be overridden"},
		{"override Message-ID", func(in *Input) { in.Headers = map[string]string{"Message-ID": "<x@y>"} }, ErrInvalidHeader, "cannot be overridden"},
		{"override Date", func(in *Input) { in.Headers = map[string]string{"Date": "now"} }, ErrInvalidHeader, "cannot be overridden"},
		{"override MIME-Version", func(in *Input) { in.Headers = map[string]string{"MIME-Version": "2.0"} }, ErrInvalidHeader, "cannot be overridden"},
		{"override Content-Type", func(in *Input) { in.Headers = map[string]string{"content-type": "text/html"} }, ErrInvalidHeader, "cannot be overridden"},
		{"override Content-Transfer-Encoding", func(in *Input) { in.Headers = map[string]string{"Content-Transfer-Encoding": "8bit"} }, ErrInvalidHeader, "cannot be overridden"},
		{"override Subject", func(in *Input) { in.Headers = map[string]string{"Subject": "x"} }, ErrInvalidHeader, "cannot be overridden"},
		{"override campaign", func(in *Input) { in.Headers = map[string]string{"x-bounceloop-campaign": "x"} }, ErrInvalidHeader, "cannot be overridden"},
		{"header twice", func(in *Input) { in.Headers = map[string]string{"X-A": "1", "x-a": "2"} }, ErrInvalidHeader, "given twice"},
		{"bad To", func(in *Input) { in.To = "not an address" }, ErrInvalidHeader, "To"},
		{"two To", func(in *Input) { in.To = "a@example.com, b@example.com" }, ErrInvalidHeader, "To"},
		{"empty From", func(in *Input) { in.From = "" }, ErrInvalidHeader, "From"},
		{"empty Message-ID", func(in *Input) { in.MessageID = "" }, ErrInvalidHeader, "Message-ID"},
		{"Message-ID with brackets", func(in *Input) { in.MessageID = "<a@b>" }, ErrInvalidHeader, "Message-ID"},
		{"Message-ID with space", func(in *Input) { in.MessageID = "a b@c" }, ErrInvalidHeader, "Message-ID"},
		{"Message-ID without @", func(in *Input) { in.MessageID = "0f3c9a2e" }, ErrInvalidHeader, "Message-ID"},
		{"Message-ID too long", func(in *Input) { in.MessageID = strings.Repeat("a", 300) + "@b" }, ErrInvalidHeader, "Message-ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := testInput()
			tt.mod(&in)
			msg, err := Default().Render(in)
			if err == nil {
				t.Fatalf("Render() error = nil, want one; message:\n%s", msg)
			}
			if msg != nil {
				t.Errorf("Render() = %d bytes and error %v, want nil bytes", len(msg), err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Render() error = %v, want errors.Is %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Render() error = %q, want it to contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestRenderMissingKeyIsTemplateError(t *testing.T) {
	t.Parallel()
	in := testInput()
	delete(in.Data, "offer")
	_, err := Default().Render(in)
	var te *TemplateError
	if !errors.As(err, &te) {
		t.Fatalf("Render() error = %v, want a *TemplateError", err)
	}
	if te.Template != "newsletter" || te.File != "newsletter/text.txt" {
		t.Errorf("TemplateError = {%q, %q}, want {newsletter, newsletter/text.txt}", te.Template, te.File)
	}
}

func TestRenderExtraHeaders(t *testing.T) {
	t.Parallel()
	in := testInput()
	in.Headers = map[string]string{
		"List-Unsubscribe":      "<https://shop.example.com/u/1>, <mailto:u+1@shop.example.com>",
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		"X-Note":                "Poznámka: žltý kôň",
		"x-lower":               "kept",
	}
	msg, err := Default().Render(in)
	if err != nil {
		t.Fatalf("Render() error = %v", err)
	}
	p := parseMessage(t, msg)
	for k, want := range in.Headers {
		if got, err := p.header.Text(k); err != nil || got != want {
			t.Errorf("header %s = %q, %v, want %q", k, got, err, want)
		}
	}
	if !bytes.Contains(msg, []byte("\r\nX-Lower: kept\r\n")) {
		t.Error("extra header names are not written in canonical form")
	}
}

func TestRenderDeterministic(t *testing.T) {
	t.Parallel()
	a, err := Default().Render(testInput())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Default().Render(testInput())
	if !bytes.Equal(a, b) {
		t.Error("Render() of the same Input gave different bytes")
	}
	in := testInput()
	in.MessageID = "other@mail.example.com"
	c, _ := Default().Render(in)
	if bytes.Equal(a, c) {
		t.Error("Render() with another Message-ID gave the same bytes")
	}
}

func TestRenderZeroDate(t *testing.T) {
	t.Parallel()
	in := testInput()
	in.Date = time.Time{}
	before := time.Now().Truncate(time.Second)
	msg, err := Default().Render(in)
	if err != nil {
		t.Fatal(err)
	}
	p := parseMessage(t, msg)
	d, err := p.header.Date()
	if err != nil || d.Before(before) || d.After(time.Now()) {
		t.Errorf("Date() = %v, %v, want about now", d, err)
	}
}

func TestRenderSmallIsSmaller(t *testing.T) {
	t.Parallel()
	in := testInput()
	full, err := Default().Render(in)
	if err != nil {
		t.Fatal(err)
	}
	in.Small = true
	small, err := Default().Render(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(small)*2 > len(full) {
		t.Errorf("small variant is %d bytes, full %d; want less than half", len(small), len(full))
	}
	if bytes.Contains(small, []byte("coupon.png")) {
		t.Error("small variant mentions the attachment")
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*Input)
	}{
		{"notice", func(in *Input) { in.Template = "notice" }},
		{"newsletter", func(*Input) {}},
		{"newsletter-small", func(in *Input) { in.Small = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := testInput()
			tt.mod(&in)
			got, err := Default().Render(in)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Render(%s) differs from %s (run with -update after checking):\n%s", tt.name, path, got)
			}
		})
	}
}

func BenchmarkRender(b *testing.B) {
	tests := []struct {
		name string
		mod  func(*Input)
	}{
		{"notice", func(in *Input) { in.Template = "notice" }},
		{"newsletter", func(*Input) {}},
		{"newsletter-small", func(in *Input) { in.Small = true }},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			s := Default()
			in := testInput()
			tt.mod(&in)
			b.ReportAllocs()
			var size int
			for b.Loop() {
				msg, err := s.Render(in)
				if err != nil {
					b.Fatal(err)
				}
				size = len(msg)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(size), "bytes/op")
		})
	}
}

func TestFormatAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"bare", "jana@example.sk", "jana@example.sk", false},
		{"angle only", "<jana@example.sk>", "jana@example.sk", false},
		{"with name", "Example Shop <news@shop.example.com>", `"Example Shop" <news@shop.example.com>`, false},
		{"non-ASCII name", "Ľudmila <l@example.sk>", "=?utf-8?q?=C4=BDudmila?= <l@example.sk>", false},
		{"quoted local part", `"a b"@example.sk`, `"a b"@example.sk`, false},
		{"no domain", "jana", "", true},
		{"list", "a@example.sk, b@example.sk", "", true},
		{"empty", "", "", true},
		{"CRLF", "a@example.sk\r\nBcc: b@example.sk", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := formatAddress("To", tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("formatAddress(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("formatAddress(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
