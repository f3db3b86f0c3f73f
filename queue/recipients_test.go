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

func FuzzRecipientReader(f *testing.F) {
	f.Add("email,first_name\njana@centrum.sk,Jana\n")
	f.Add("email\n\"a\nb\"\n")
	f.Add("x,email\n1,2,3\n\"\n")
	f.Fuzz(func(t *testing.T, in string) {
		rr, err := NewRecipientReader(strings.NewReader(in), "f.csv", "c", "t")
		if err != nil {
			return
		}
		for i := 0; i < 10000; i++ {
			m, _, err := rr.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				if m.To != "" || m.ID != "" {
					t.Fatalf("Next returned a message with an error: %+v, %v", m, err)
				}
				var re *bounces.RecordError
				if !errors.As(err, &re) {
					return // an I/O error ends the read
				}
				continue
			}
			if m.To != "" && m.ID == "" {
				t.Fatalf("message without an id: %+v", m)
			}
		}
	})
}
