package queue

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/bounceloop/bounceloop/bounces"
)

func TestRecipientReader(t *testing.T) {
	in := "\ufeffEmail,first_name,message_id\n" +
		"jana@centrum.sk,Jana,\n" +
		"petr@gmail.com,Petr,given@shop.example\n" +
		"short\n" +
		"\"bad\"quote,x,\n" +
		"eva@seznam.cz,\"Eva\nNovak\",\n"
	rr, err := NewRecipientReader(strings.NewReader(in), "r.csv", "may", "notice")
	if err != nil {
		t.Fatal(err)
	}
	rr.DefaultFrom = "news@shop.example"
	type got struct {
		line       int
		to, id, fn string
		skipped    bool
	}
	var gots []got
	for {
		m, line, err := rr.Next()
		if err == io.EOF {
			break
		}
		var re *bounces.RecordError
		if errors.As(err, &re) {
			gots = append(gots, got{line: re.Line, skipped: true})
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		gots = append(gots, got{line: line, to: m.To, id: m.ID, fn: m.Data["first_name"].(string)})
	}
	want := []got{
		{line: 2, to: "jana@centrum.sk", id: MessageIDFor("may", "jana@centrum.sk", "news@shop.example"), fn: "Jana"},
		{line: 3, to: "petr@gmail.com", id: "given@shop.example", fn: "Petr"},
		{line: 4, skipped: true},
		{line: 5, skipped: true},
		{line: 6, to: "eva@seznam.cz", id: MessageIDFor("may", "eva@seznam.cz", "news@shop.example"), fn: "Eva\nNovak"},
	}
	if len(gots) != len(want) {
		t.Fatalf("Next gave %d records, want %d: %+v", len(gots), len(want), gots)
	}
	for i := range want {
		if gots[i] != want[i] {
			t.Errorf("record %d = %+v, want %+v", i, gots[i], want[i])
		}
	}
	if !strings.HasSuffix(want[0].id, "@shop.example") {
		t.Errorf("derived id %q is not at the sender's domain", want[0].id)
	}
}

func TestRecipientReaderHeader(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "empty file"},
		{"no email column", "name,offer\nx,y\n", `no "email" column`},
	}
	for _, tt := range tests {
		_, err := NewRecipientReader(strings.NewReader(tt.in), "r.csv", "c", "t")
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "r.csv") {
			t.Errorf("%s: NewRecipientReader error = %v, want it to name the file and %q", tt.name, err, tt.want)
		}
	}
}

// FuzzRecipientReader reads arbitrary CSV. The header's errors name the
// file (and line 1); each row is a message or a *bounces.RecordError naming
// the file, a line of the input and a reason, never both; lines grow; a
// message's address is trimmed and is its "email" field; a derived message
// id is valid whenever the address is; reading ends.
func FuzzRecipientReader(f *testing.F) {
	f.Add("email,first_name\njana@centrum.sk,Jana\n")
	f.Add("email\n\"a\nb\"\n")
	f.Add("x,email\n1,2,3\n\"\n")
	f.Add("\ufeffEmail,message_id,From,offer\r\n jana@centrum.sk ,,news@shop.example,\"10% \"\"off\"\"\"\r\npetr@gmail.com,given@shop.example,,x\r\n")
	f.Add("email,from\njana@centrum.sk,\"x@y.example\r\nBcc: evil@example.net\"\n\"jana@centrum.sk\r\nBcc: evil@example.net\",\n")
	f.Add("email,email,EMAIL\na@b.cz,c@d.cz,e@f.cz\n")
	f.Add("email\n\n\n\"unterminated\n")
	f.Fuzz(func(t *testing.T, in string) {
		lines := strings.Count(in, "\n") + 1
		rr, err := NewRecipientReader(strings.NewReader(in), "f.csv", "c", "t")
		if err != nil {
			if rr != nil {
				t.Fatalf("NewRecipientReader() = %v with error %v", rr, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "queue: f.csv:1: ") && msg != "queue: f.csv: empty file, want a header with an email column" {
				t.Fatalf("NewRecipientReader() error %q: want the file and line 1", msg)
			}
			return
		}
		rr.DefaultFrom = "news@shop.example"
		last := 1
		for i := 0; ; i++ {
			if i > len(in)+1 {
				t.Fatal("more records than input bytes: Next does not stop")
			}
			m, line, err := rr.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				if m.To != "" || m.ID != "" || m.Data != nil {
					t.Fatalf("Next() = %+v with error %v", m, err)
				}
				var re *bounces.RecordError
				if !errors.As(err, &re) {
					t.Fatalf("Next() error %v: want a *bounces.RecordError (the input is in memory)", err)
				}
				if re.File != "f.csv" || re.Line < 2 || re.Line > lines || re.Reason == "" || line != re.Line {
					t.Fatalf("Next() error %+v (line %d): want the file, a line in 2..%d and a reason", re, line, lines)
				}
				if re.Line < last {
					t.Fatalf("Next() error at line %d after line %d", re.Line, last)
				}
				last = re.Line
				continue
			}
			if line < 2 || line > lines || line < last {
				t.Fatalf("Next() at line %d after %d, want 2..%d", line, last, lines)
			}
			last = line
			if m.To != strings.TrimSpace(m.To) || m.Data["email"] != m.To || m.Campaign != "c" || m.Template != "t" {
				t.Fatalf("Next() = %+v: want a trimmed address as the email field, the campaign and the template", m)
			}
			if m.To != "" && m.ID == "" {
				t.Fatalf("message without an id: %+v", m)
			}
			if _, err := CheckAddress(m.To); err == nil && (m.ID == MessageIDFor("c", m.To, m.From) || m.ID == MessageIDFor("c", m.To, rr.DefaultFrom)) {
				if err := CheckMessageID(m.ID); err != nil {
					t.Fatalf("derived message id %q of %+v: %v", m.ID, m, err)
				}
			}
		}
	})
}
