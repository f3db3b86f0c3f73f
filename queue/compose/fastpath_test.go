package compose

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"
	gmtextproto "github.com/emersion/go-message/textproto"
)

// TestPlainAddress: an address taken by the fast path formats as the
// parser would format it; others go to the parser.
func TestPlainAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		plain bool
	}{
		{"jana@example.sk", true},
		{"jana.novakova+news@mail.example.co.uk", true},
		{"a!#$%&'*+-/=?^_`{|}~z@x-y.example", true},
		{"user123@sink.bounceloop.test", true},
		{"JANA@EXAMPLE.SK", true},
		{".jana@example.sk", false},
		{"jana.@example.sk", false},
		{"ja..na@example.sk", false},
		{"jana@example..sk", false},
		{"jana@.example.sk", false},
		{"jana@example.sk.", false},
		{"jana@", false},
		{"@example.sk", false},
		{"jana", false},
		{"a@b@example.sk", false},
		{"jana@exa_mple.sk", false},
		{"jana@[127.0.0.1]", false},
		{`"a b"@example.sk`, false},
		{"<jana@example.sk>", false},
		{"Jana <jana@example.sk>", false},
		{"jana @example.sk", false},
		{"jána@example.sk", false},
		{"jana@exämple.sk", false},
		{"jana@example.sk\r\nBcc: x@y.z", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := plainAddress(tt.in); got != tt.plain {
				t.Fatalf("plainAddress(%q) = %v, want %v", tt.in, got, tt.plain)
			}
			if !tt.plain {
				return
			}
			a, err := mail.ParseAddress(tt.in)
			if err != nil {
				t.Fatalf("mail.ParseAddress(%q) = %v, want it to parse", tt.in, err)
			}
			want := strings.TrimSuffix(strings.TrimPrefix(a.String(), "<"), ">")
			if tt.in != want {
				t.Errorf("plain address %q formats as %q through the parser", tt.in, want)
			}
		})
	}
}

// TestWriteFields: writeFields writes what go-message writes for the same
// fields (newHeader + WriteHeader), folding included.
func TestWriteFields(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("word ", 40)
	tests := [][][2]string{
		{{"Date", "Fri, 04 Dec 2026 23:44:46 +0000"}, {"From", "news@shop.example.com"}, {"To", "jana@example.sk"},
			{"Subject", "Hello"}, {"Message-ID", "<0f3c9a2e@mail.example.com>"}, {"MIME-Version", "1.0"},
			{CampaignHeader, "2018-05"}, {"Content-Type", "text/plain; charset=utf-8"}, {"Content-Transfer-Encoding", "quoted-printable"}},
		{{"Subject", ""}, {"Subject", strings.Repeat("x", 67)}, {"Subject", strings.Repeat("x", 68)}, {"Subject", strings.Repeat("x", 69)}},
		{{"Subject", long}, {"Subject", strings.Repeat("y", 300)}, {"List-Unsubscribe", "<https://example.org/" + strings.Repeat("u", 90) + ">"}},
		{{"X-Mixed-case", "v"}, {"Message-ID", "<" + strings.Repeat("m", 100) + "@x>"}},
	}
	for i, fields := range tests {
		var got, want bytes.Buffer
		if err := writeFields(&got, fields); err != nil {
			t.Fatal(err)
		}
		if err := gmtextproto.WriteHeader(&want, newHeader(fields).Header); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("fields #%d: writeFields wrote\n%q\nwant (go-message)\n%q", i, got.String(), want.String())
		}
	}
}
