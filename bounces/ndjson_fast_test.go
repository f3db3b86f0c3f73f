package bounces

import (
	"bytes"
	"errors"
	"io"
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
	keysEqual(t, data, want, wantSkipped)
	checkKeyOrder(t, bytes.Split(data, []byte("\n")))
}

// keysEqual checks that NextKey reads data as Next does: the keys of the
// events want and the same skipped records.
func keysEqual(t *testing.T, data []byte, want []Event, wantSkipped []*RecordError) {
	t.Helper()
	r := NewNDJSONReader(bytes.NewReader(data), "in")
	var got []EventKey
	var gotSkipped []*RecordError
	for {
		k, err := r.NextKey()
		if err == io.EOF {
			break
		}
		var re *RecordError
		if errors.As(err, &re) {
			gotSkipped = append(gotSkipped, re)
			continue
		}
		if err != nil {
			t.Fatalf("NextKey() = %v", err)
		}
		k.Domain = strings.Clone(k.Domain)
		got = append(got, k)
	}
	if len(got) != len(want) || !reflect.DeepEqual(gotSkipped, wantSkipped) {
		t.Fatalf("NextKey read %d events, %d skipped (%v), want %d, %d (as Next: %v)", len(got), len(gotSkipped), gotSkipped, len(want), len(wantSkipped), wantSkipped)
	}
	for i, e := range want {
		if w := (EventKey{Unix: e.Time.Unix(), Domain: e.Domain, Code: e.Code}); got[i] != w {
			t.Fatalf("NextKey() #%d = %+v, want %+v (of %+v)", i, got[i], w, e)
		}
	}
	if r.Lines() != lineCount(data) {
		t.Fatalf("Lines() after NextKey = %d, want %d", r.Lines(), lineCount(data))
	}
}

// lineCount is the number of lines of data, the last one unterminated or not.
func lineCount(data []byte) int {
	n := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return n
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
		{"key cases", []byte(strings.Join(keyCases, "\n"))},
	} {
		t.Run(tt.name, func(t *testing.T) { borrowedEquals(t, tt.data) })
	}
}

// keyCases are lines at the edges of NextKey's quick path: each must give
// the key of Next's event, or Next's error.
var keyCases = []string{
	`{"time":"2018-05-17T08:03:11Z","recipient":"jana@centrum.sk","code":554,"source":"smtp"}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"jana@Centrum.SK","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":" jana@centrum.sk","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"<jana@centrum.sk>","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"jana@centrum.sk.","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"jana@","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"jana","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"@x.cz","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"a@b@x.cz","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"a@.","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"a@xn--bcher-kva.ch","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"a@bücher.ch","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"a@bücher.ch","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"a@x.cz","domain":"","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"a@x.cz","domain":null,"code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"a@x.cz","domain":"Y.CZ","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"a@x.cz","domain":"(other)","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"a@x.cz","domain":"y.cz.","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"a@x.cz","domain":"y..cz","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":"a@x.cz","domain":7,"code":554}`,
	`{"time":"2018-05-17T08:03:11Z","recipient":5,"code":554}`,
	`{"time":"2018-05-17T08:03:11Z","code":554}`,
	`{"time":"2018-05-17T08:03:11Z","code":"554"}`,
	`{"time":"2018-05-17T08:03:11Z","code":"+554"}`,
	`{"time":"2018-05-17T08:03:11Z","code":5540}`,
	`{"time":"2018-05-17T08:03:11Z","code":55}`,
	`{"time":"2018-05-17T08:03:11Z","code":055}`,
	`{"time":"2018-05-17T08:03:11Z","code":554.0}`,
	`{"time":"2018-05-17T08:03:11Z","code":5.5e2}`,
	`{"time":"2018-05-17T08:03:11Z","code":null}`,
	`{"time":"2018-05-17T08:03:11Z","code":true}`,
	`{"time":"2018-05-17T08:03:11Z"}`,
	`{"time":"2018-05-17T08:03:11.75Z","code":250}`,
	`{"time":"2018-05-17T08:03:11+02:00","code":250}`,
	`{"time":"2018-02-29T08:03:11Z","code":250}`,
	`{"time":"2016-02-29T23:59:59Z","code":250}`,
	`{"time":"1969-12-31T23:59:59Z","code":250}`,
	`{"time":"1969-12-31T23:59:59.5-01:00","code":250}`,
	`{"time":"0001-01-01T00:00:00Z","code":250}`,
	`{"time":1526544191,"code":250}`,
	`{"time":1526544191.999,"code":250}`,
	`{"time":"1526544191","code":250}`,
	`{"time":0,"code":250}`,
	`{"time":null,"code":250}`,
	`{"time":[],"code":250}`,
	`{"time":"2018-05-17T08:03:11Z","code":250,"source":"dsn"}`,
	`{"time":"2018-05-17T08:03:11Z","code":250,"source":""}`,
	`{"time":"2018-05-17T08:03:11Z","code":250,"source":"SMTP"}`,
	`{"time":"2018-05-17T08:03:11Z","code":250,"source":null}`,
	`{"time":"2018-05-17T08:03:11Z","code":250,"source":1}`,
	`{"time":"2018-05-17T08:03:11Z","code":250,"text":false}`,
	`{"time":"2018-05-17T08:03:11Z","code":250,"text":"a"b","campaign":null}`,
	`{"time":"2018-05-17T08:03:11Z","code":250,"enhanced":{}}`,
	`{"time":"2018-05-17T08:03:11Z","code":250,"message_id":"m","campaign":"c","other":[1,2]}`,
	`{"time":"2018-05-17T08:03:11Z","code":250,"code":251,"recipient":"a@x.cz","recipient":"b@y.cz"}`,
	`{"time":"2018-05-17T08:03:11Z","code":250,"Code":251}`,
	`{"time":"2018-05-17T08:03:11Z","code":250,}`,
	`{"time":"2018-05-17T08:03:11Z","code":250} x`,
	`  {"time":"2018-05-17T08:03:11Z", "code" : 250 }  `,
	`[1]`,
	`null`,
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

func TestDayCache(t *testing.T) {
	var c dayCache
	for _, s := range []string{
		"2018-05-17T08:03:11Z", "2018-05-17T08:03:12Z", "2018-05-17T23:59:59Z", "2018-05-17T24:00:00Z",
		"2018-05-17T08:60:00Z", "2018-05-17T08:03:1xZ", "2018-05-17 08:03:11Z", "2018-05-17T08:03:11+",
		"2018-05-18T00:00:00Z", "2018-05-31T00:00:00Z", "2018-05-32T00:00:00Z", "2018-05-32T00:00:01Z",
		"2018-02-29T00:00:00Z", "2016-02-29T00:00:00Z", "2016-02-29T12:00:00Z", "1970-01-01T00:00:00Z",
		"2018-05-17T08:03:11.5Z", "2018-05-17", "",
	} {
		got, gotOK := c.rfc3339ZUnix(s)
		want, wantOK := rfc3339ZUnix(s)
		if got != want || gotOK != wantOK {
			t.Errorf("dayCache.rfc3339ZUnix(%q) = %d, %v, want %d, %v", s, got, gotOK, want, wantOK)
		}
		if tm, ok := parseRFC3339Z(s); ok != wantOK || ok && tm.Unix() != want {
			t.Errorf("parseRFC3339Z(%q) = %v, %v, want UNIX %d, %v", s, tm, ok, want, wantOK)
		}
	}
}

func FuzzParseRFC3339Z(f *testing.F) {
	f.Add("2018-05-17T08:03:11Z")
	f.Add("2016-02-29T23:59:59Z")
	var c dayCache
	f.Fuzz(func(t *testing.T, s string) {
		checkRFC3339Z(t, s)
		// The cache gives what a parse does, before and after s's date.
		for range 2 {
			got, gotOK := c.rfc3339ZUnix(s)
			if want, wantOK := rfc3339ZUnix(s); got != want || gotOK != wantOK {
				t.Fatalf("dayCache.rfc3339ZUnix(%q) = %d, %v, want %d, %v", s, got, gotOK, want, wantOK)
			}
		}
	})
}

func TestFieldSlots(t *testing.T) {
	var f eventFields
	for _, tt := range []struct {
		key  string
		want *jsonValue
	}{
		{"time", &f.time}, {"campaign", &f.campaign}, {"message_id", &f.messageID},
		{"recipient", &f.recipient}, {"domain", &f.domain}, {"code", &f.code},
		{"enhanced", &f.enhanced}, {"text", &f.text}, {"source", &f.source},
		{"Time", nil}, {"other", nil}, {"", nil},
	} {
		if got := f.field(tt.key); got != tt.want {
			t.Errorf("field(%q) = %p, want %p", tt.key, got, tt.want)
		}
		if k := fieldOf(tt.key); k != noSlot && keyPatterns[k].n != len(tt.key)+3 {
			t.Errorf("keyPatterns[fieldOf(%q)].n = %d, want %d", tt.key, keyPatterns[k].n, len(tt.key)+3)
		}
	}
}

// checkKeyOrder checks that scanning lines with a shared keyOrder, as the
// reader does, reads each line as scanning it alone.
func checkKeyOrder(t testing.TB, lines [][]byte) {
	t.Helper()
	var o keyOrder
	for _, line := range lines {
		var got, want eventFields
		gotOK := got.scanFastKeys(string(line), &o)
		wantOK := want.scanFast(string(line))
		if gotOK != wantOK || gotOK && got != want {
			t.Fatalf("scanFastKeys(%q) after %d keys = %v, %+v; alone %v, %+v", line, o.n, gotOK, got, wantOK, want)
		}
	}
}

func TestKeyOrder(t *testing.T) {
	lines := bytes.Split([]byte(strings.Join(keyCases, "\n")+"\n"+string(benchNDJSONLines(50))), []byte("\n"))
	for _, tt := range []struct {
		name  string
		lines [][]byte
	}{
		{"cases", lines},
		{"each case after a bench line", func() (out [][]byte) {
			for _, l := range lines {
				out = append(out, lines[len(lines)-2], l)
			}
			return out
		}()},
		{"near patterns", [][]byte{
			[]byte(`{"time":"2018-05-17T08:03:11Z","code":250,"recipient":"a@x.cz"}`),
			[]byte(`{"time":"2018-05-17T08:03:11Z","cod":250,"recipient":"a@x.cz"}`),
			[]byte(`{"timex":"2018-05-17T08:03:11Z","code":250,"recipient":"a@x.cz"}`),
			[]byte(`{"time" :"2018-05-17T08:03:11Z","code":250,"recipient":"a@x.cz"}`),
			[]byte(`{"time":"2018-05-17T08:03:11Z","code":250,"recipient":"a@x.cz"}`),
			[]byte(`{"time":"2018-05-17T08:03:11Z","code":250,"recipient":`),
			[]byte(`{"time":"2018-05-17T08:03:11Z","code":250,"recipient"`),
			[]byte(`{"time":"2018-05-17T08:03:11Z","code":`),
			[]byte(`{"time":"2018-05-17T08:03:11Z","code"`),
			[]byte(`{"time":`),
			[]byte(`{"time":1,"code":250,"x":1,"recipient":"a@x.cz"}`),
			[]byte(`{"time":1,"code":250,"recipient":"a@x.cz"}`),
			[]byte(`{"time":1,"code":250,"recipient":"a@x.cz","recipient":"b@y.cz"}`),
		}},
	} {
		t.Run(tt.name, func(t *testing.T) { checkKeyOrder(t, tt.lines) })
	}
}
