package bounces

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// cloneEvent copies the strings of a borrowed event.
func cloneEvent(e Event) Event {
	e.Campaign, e.MessageID, e.Recipient = strings.Clone(e.Campaign), strings.Clone(e.MessageID), strings.Clone(e.Recipient)
	e.Domain, e.Enhanced, e.Text = strings.Clone(e.Domain), strings.Clone(e.Enhanced), strings.Clone(e.Text)
	return e
}

// borrowedEquals checks that NextBorrowed (its events copied at once)
// reads data as Next does, and that Lines counts every line.
func borrowedEquals(t *testing.T, data []byte) {
	t.Helper()
	want, wantSkipped := readAllEvents(t, NewNDJSONReader(bytes.NewReader(data), "in").Next)
	r := NewNDJSONReader(bytes.NewReader(data), "in")
	got, gotSkipped := readAllEvents(t, func() (Event, error) {
		e, err := r.NextBorrowed()
		return cloneEvent(e), err
	})
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotSkipped, wantSkipped) {
		t.Fatalf("NextBorrowed read %d events, %d skipped, want %d, %d (as Next)", len(got), len(gotSkipped), len(want), len(wantSkipped))
	}
	lines := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		lines++
	}
	if r.Lines() != lines {
		t.Fatalf("Lines() = %d, want %d", r.Lines(), lines)
	}
}

func TestNextBorrowed(t *testing.T) {
	data, err := os.ReadFile("testdata/ndjson/events.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"testdata", data},
		{"bench lines", benchNDJSONLines(500)},
		{"no final newline", []byte(`{"time":"2018-05-17T08:03:11Z","code":250}` + "\n\n" + `{"time":1,"code":"x"}`)},
		{"empty", nil},
	} {
		t.Run(tt.name, func(t *testing.T) { borrowedEquals(t, tt.data) })
	}
}

func TestPlainASCII(t *testing.T) {
	for c := 0; c < 256; c++ {
		if c == '"' {
			continue // not looked for: the caller cuts at the quote
		}
		for _, n := range []int{1, 7, 8, 9, 16, 23} {
			for pos := 0; pos < n; pos++ {
				b := bytes.Repeat([]byte("a"), n)
				b[pos] = byte(c)
				want := !jsonStringStop[c]
				if got := plainASCII(string(b)); got != want {
					t.Fatalf("plainASCII(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
}

func TestParseRFC3339Z(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"common", "2018-05-17T08:03:11Z", true},
		{"epoch", "1970-01-01T00:00:00Z", true},
		{"leap day", "2016-02-29T23:59:59Z", true},
		{"not a leap year", "2018-02-29T00:00:00Z", false},
		{"31 April", "2018-04-31T00:00:00Z", false},
		{"month 13", "2018-13-01T00:00:00Z", false},
		{"hour 24", "2018-05-17T24:00:00Z", false},
		{"second 60", "2018-05-17T23:59:60Z", false},
		{"before 1970", "1969-12-31T23:59:59Z", false},
		{"offset", "2018-05-17T08:03:11+02:00", false},
		{"fraction", "2018-05-17T08:03:11.5Z", false},
		{"lower t", "2018-05-17t08:03:11Z", false},
		{"sign", "2018-05-17T08:-3:11Z", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseRFC3339Z(tt.in)
			if ok != tt.ok {
				t.Fatalf("parseRFC3339Z(%q) = %v, %v, want ok %v", tt.in, got, ok, tt.ok)
			}
			checkRFC3339Z(t, tt.in)
		})
	}
}

// checkRFC3339Z checks that what parseRFC3339Z accepts, time.Parse reads
// the same.
func checkRFC3339Z(t *testing.T, s string) {
	got, ok := parseRFC3339Z(s)
	if !ok {
		return
	}
	want, err := time.Parse(time.RFC3339, s)
	if err != nil || want.UTC() != got {
		t.Fatalf("parseRFC3339Z(%q) = %v, want time.Parse's %v, %v", s, got, want.UTC(), err)
	}
}

func FuzzParseRFC3339Z(f *testing.F) {
	f.Add("2018-05-17T08:03:11Z")
	f.Add("2016-02-29T23:59:59Z")
	f.Fuzz(func(t *testing.T, s string) { checkRFC3339Z(t, s) })
}
