package bounces

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// readAllEvents runs the caller pattern of the readers' documentation.
func readAllEvents(t testing.TB, next func() (Event, error)) ([]Event, []*RecordError) {
	t.Helper()
	var events []Event
	var skipped []*RecordError
	for {
		ev, err := next()
		if err == io.EOF {
			break
		}
		var re *RecordError
		if errors.As(err, &re) {
			if ev != (Event{}) {
				t.Fatalf("Next() = %+v with error %v, want a zero event", ev, err)
			}
			skipped = append(skipped, re)
			continue
		}
		if err != nil {
			t.Fatalf("Next() = %v, want no I/O error", err)
		}
		events = append(events, ev)
	}
	return events, skipped
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestNDJSONReaderTestdata(t *testing.T) {
	f, err := os.Open("testdata/ndjson/events.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, skipped := readAllEvents(t, NewNDJSONReader(f, "events.ndjson").Next)
	want := []Event{
		{Time: mustTime("2018-05-17T08:03:11Z"), Campaign: "2018-05-newsletter", MessageID: "0f3c9a2e@mail.example.com",
			Recipient: "jana@centrum.sk", Domain: "centrum.sk", Code: 554, Enhanced: "5.7.1", Text: "554 5.7.1 Message rejected as spam", Source: SourceSMTP},
		{Time: time.Unix(1526544191, 0).UTC(), Recipient: "Jan.Novak@Azet.SK", Domain: "azet.sk", Code: 550, Enhanced: "5.1.1",
			Text: "550 5.1.1 <jan.novak@azet.sk>: Recipient address rejected: User unknown", Source: SourceLog},
		{Time: time.Unix(1526544192, 5e8).UTC(), Domain: "gmail.com", Code: 452, Enhanced: "4.2.1",
			Text: "452 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.", Source: SourceWebhook},
		{Time: mustTime("2018-05-17T08:03:11Z"), Recipient: "petra@seznam.cz", Domain: "seznam.cz", Code: 250, Text: "250 2.0.0 Ok: queued as 4B7E2C", Source: SourceSMTP},
		{Time: mustTime("2018-05-17T08:03:12Z"), Recipient: "ľubo@žilina.sk", Domain: "xn--ilina-tib.sk", Code: 552, Enhanced: "5.2.2",
			Text: `552 5.2.2 Schránka je plná "quota"`, Source: SourceDSN},
		{Time: mustTime("2018-05-17T08:03:13Z"), Recipient: "x@example.com", Domain: "example.com", Code: 605, Source: SourceExport},
		{Time: mustTime("2018-05-17T08:03:20Z"), Recipient: "anna@yahoo.com", Domain: "yahoo.com", Code: 421, Enhanced: "4.7.0",
			Text: "421 4.7.0 [TSS04] Messages from 1.2.3.4 temporarily deferred due to unexpected volume or user complaints", Source: SourceSMTP},
	}
	if len(events) != len(want) {
		t.Fatalf("read %d events, want %d: %+v", len(events), len(want), events)
	}
	for i := range want {
		if events[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, events[i], want[i])
		}
	}
	wantSkipped := []struct {
		line   int
		reason string
	}{
		{8, `missing "code"`},
		{9, `missing "time"`},
		{10, "not a JSON object"},
		{11, "time: "},
		{12, "code: "},
		{13, "source: unknown"},
		{14, "recipient: "},
		{15, "text: want a string"},
		{16, "not a JSON object: "},
	}
	if len(skipped) != len(wantSkipped) {
		t.Fatalf("skipped %v, want %d records", skipped, len(wantSkipped))
	}
	for i, w := range wantSkipped {
		re := skipped[i]
		if re.File != "events.ndjson" || re.Line != w.line || !strings.HasPrefix(re.Reason, w.reason) || !errors.Is(re, ErrSkipped) {
			t.Errorf("skipped[%d] = %v (line %d), want line %d with reason %q", i, re, re.Line, w.line, w.reason)
		}
	}
}

func TestDecodeEventLine(t *testing.T) {
	t0 := mustTime("2018-05-17T08:03:11Z")
	tests := []struct {
		name    string
		line    string
		want    Event
		wantErr string // reason prefix; "" means success
	}{
		{name: "minimal", line: `{"time":"2018-05-17T08:03:11Z","code":250}`, want: Event{Time: t0, Code: 250}},
		{name: "spaces", line: " \t{ \"time\" : \"2018-05-17T08:03:11Z\" ,\r\n \"code\" : 250 } ", want: Event{Time: t0, Code: 250}},
		{name: "offset to UTC", line: `{"time":"2018-05-17T10:03:11+02:00","code":250}`, want: Event{Time: t0, Code: 250}},
		{name: "nanoseconds", line: `{"time":"2018-05-17T08:03:11.123456789Z","code":250}`, want: Event{Time: t0.Add(123456789), Code: 250}},
		{name: "unix number", line: `{"time":1526544191,"code":250}`, want: Event{Time: t0, Code: 250}},
		{name: "unix fraction", line: `{"time":1526544191.25,"code":250}`, want: Event{Time: t0.Add(250 * time.Millisecond), Code: 250}},
		{name: "unix string", line: `{"time":"1526544191","code":250}`, want: Event{Time: t0, Code: 250}},
		{name: "code string", line: `{"time":1526544191,"code":"421"}`, want: Event{Time: t0, Code: 421}},
		{name: "escaped key", line: `{"\u0074ime":1526544191,"code":250}`, want: Event{Time: t0, Code: 250}},
		{name: "escaped text", line: `{"time":1526544191,"code":550,"text":"a\"b\\c\n\u00e9\ud83d\ude00"}`, want: Event{Time: t0, Code: 550, Text: "a\"b\\c\né😀"}},
		{name: "last key wins", line: `{"time":1526544191,"code":550,"code":421}`, want: Event{Time: t0, Code: 421}},
		{name: "nulls", line: `{"time":1526544191,"code":550,"text":null,"source":null,"domain":null}`, want: Event{Time: t0, Code: 550}},
		{name: "unknown nested", line: `{"x":{"a":[1,{"b":null}]},"time":1526544191,"y":[true,false],"code":550}`, want: Event{Time: t0, Code: 550}},
		{name: "unknown literals", line: `{"x":true,"y":-1.5e+3,"z":null,"time":1526544191,"code":550}`, want: Event{Time: t0, Code: 550}},
		{name: "case matters", line: `{"time":1526544191,"code":550,"Code":421,"Source":"x"}`, want: Event{Time: t0, Code: 550}},
		{name: "domain given wins", line: `{"time":1526544191,"code":550,"recipient":"a@b.example","domain":"Azet.SK."}`, want: Event{Time: t0, Code: 550, Recipient: "a@b.example", Domain: "azet.sk"}},
		{name: "domain from recipient", line: `{"time":1526544191,"code":550,"recipient":"<A@B.Example>"}`, want: Event{Time: t0, Code: 550, Recipient: "<A@B.Example>", Domain: "b.example"}},
		{name: "idna", line: `{"time":1526544191,"code":550,"domain":"ŽILINA.sk"}`, want: Event{Time: t0, Code: 550, Domain: "xn--ilina-tib.sk"}},
		{name: "all sources", line: `{"time":1526544191,"code":550,"source":"arf"}`, want: Event{Time: t0, Code: 550, Source: SourceARF}},
		{name: "empty source", line: `{"time":1526544191,"code":550,"source":""}`, want: Event{Time: t0, Code: 550}},
		{name: "invalid utf8", line: "{\"time\":1526544191,\"code\":550,\"text\":\"a\xffb\"}", want: Event{Time: t0, Code: 550, Text: "a\ufffdb"}},
		{name: "del char", line: "{\"time\":1526544191,\"code\":550,\"text\":\"a\x7fb\"}", want: Event{Time: t0, Code: 550, Text: "a\x7fb"}},

		{name: "empty object", line: `{}`, wantErr: `missing "time"`},
		{name: "array", line: `[1]`, wantErr: "not a JSON object"},
		{name: "null", line: `null`, wantErr: "not a JSON object"},
		{name: "number", line: `550`, wantErr: "not a JSON object"},
		{name: "trailing garbage", line: `{"time":1526544191,"code":550} x`, wantErr: "not a JSON object: "},
		{name: "two objects", line: `{"time":1526544191,"code":550}{}`, wantErr: "not a JSON object: "},
		{name: "trailing comma", line: `{"time":1526544191,"code":550,}`, wantErr: "not a JSON object: "},
		{name: "leading zero", line: `{"time":1526544191,"code":0550}`, wantErr: "not a JSON object: "},
		{name: "bad literal", line: `{"time":1526544191,"code":550,"x":tru}`, wantErr: "not a JSON object: "},
		{name: "control char", line: "{\"time\":1526544191,\"code\":550,\"text\":\"a\tb\"}", wantErr: "not a JSON object: "},
		{name: "unterminated", line: `{"time":1526544191,"code":550,"text":"abc}`, wantErr: "not a JSON object: "},
		{name: "missing code", line: `{"time":1526544191}`, wantErr: `missing "code"`},
		{name: "null code", line: `{"time":1526544191,"code":null}`, wantErr: `missing "code"`},
		{name: "null time", line: `{"time":null,"code":550}`, wantErr: `missing "time"`},
		{name: "float code", line: `{"time":1526544191,"code":550.0}`, wantErr: "code: "},
		{name: "small code", line: `{"time":1526544191,"code":99}`, wantErr: "code: "},
		{name: "big code", line: `{"time":1526544191,"code":1000}`, wantErr: "code: "},
		{name: "negative code", line: `{"time":1526544191,"code":-550}`, wantErr: "code: "},
		{name: "plus code", line: `{"time":1526544191,"code":"+550"}`, wantErr: "code: "},
		{name: "bool code", line: `{"time":1526544191,"code":true}`, wantErr: "code: want a number"},
		{name: "text time", line: `{"time":"yesterday","code":550}`, wantErr: "time: "},
		{name: "zero time", line: `{"time":"0001-01-01T00:00:00Z","code":550}`, wantErr: "time: "},
		{name: "unix zero", line: `{"time":0,"code":550}`, wantErr: "time: "},
		{name: "unix negative", line: `{"time":-5,"code":550}`, wantErr: "time: "},
		{name: "unix exponent", line: `{"time":1.5e9,"code":550}`, wantErr: "time: "},
		{name: "unix too big", line: `{"time":999999999999999999999,"code":550}`, wantErr: "time: "},
		{name: "object time", line: `{"time":{},"code":550}`, wantErr: "time: want a string or a number"},
		{name: "number text", line: `{"time":1526544191,"code":550,"text":5}`, wantErr: "text: want a string, got a number"},
		{name: "bad source", line: `{"time":1526544191,"code":550,"source":"SMTP"}`, wantErr: "source: unknown"},
		{name: "array source", line: `{"time":1526544191,"code":550,"source":["smtp"]}`, wantErr: "source: want a string"},
		{name: "recipient without domain", line: `{"time":1526544191,"code":550,"recipient":"jan"}`, wantErr: "recipient: "},
		{name: "bad domain", line: `{"time":1526544191,"code":550,"domain":"a b"}`, wantErr: "domain: "},
		{name: "recipient with line break", line: `{"time":1526544191,"code":550,"recipient":"jan@azet.sk\r\nBcc: x@y.com"}`, wantErr: "recipient: control character U+000D at byte 11"},
		{name: "recipient with tab", line: `{"time":1526544191,"code":550,"recipient":"jan\t@azet.sk","domain":"azet.sk"}`, wantErr: "recipient: control character U+0009"},
		{name: "leading hyphen domain", line: `{"time":1526544191,"code":550,"recipient":"jan@-azet.sk"}`, wantErr: "recipient: "},
		{name: "trailing hyphen label", line: `{"time":1526544191,"code":550,"domain":"azet-.sk"}`, wantErr: "domain: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := decodeEventLine([]byte(tt.line))
			if tt.wantErr == "" && reason != "" || tt.wantErr != "" && !strings.HasPrefix(reason, tt.wantErr) {
				t.Fatalf("decodeEventLine(%q) reason = %q, want %q", tt.line, reason, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("decodeEventLine(%q) = %+v, want %+v", tt.line, got, tt.want)
			}
			// The exported form agrees.
			got2, err := DecodeEvent([]byte(tt.line))
			if (err != nil) != (tt.wantErr != "") || got2 != tt.want {
				t.Errorf("DecodeEvent(%q) = %+v, %v, want %+v, %q", tt.line, got2, err, tt.want, tt.wantErr)
			}
			checkFastMatchesSlow(t, []byte(tt.line))
		})
	}
}

// checkFastMatchesSlow checks that, when the fast scanner accepts a line,
// encoding/json accepts it too and finds the same fields.
func checkFastMatchesSlow(t testing.TB, line []byte) {
	t.Helper()
	var fast, slow eventFields
	fastOK := fast.scanFast(string(line))
	reason := slow.scanSlow(line)
	if fastOK && reason != "" {
		t.Fatalf("scanFast(%q) accepted a line encoding/json rejects: %s", line, reason)
	}
	if fastOK && fast != slow {
		t.Fatalf("scanFast(%q) = %+v, encoding/json = %+v", line, fast, slow)
	}
	if !json.Valid(line) && fastOK {
		t.Fatalf("scanFast(%q) accepted invalid JSON", line)
	}
}

func TestNDJSONFastPathTaken(t *testing.T) {
	lines := benchNDJSONLines(200)
	for _, line := range bytes.Split(bytes.TrimSpace(lines), []byte("\n")) {
		var f eventFields
		if !f.scanFast(string(line)) {
			t.Errorf("scanFast(%q) = false, want the fast path for a plain line", line)
		}
		checkFastMatchesSlow(t, line)
	}
}

func TestAppendNDJSONRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{name: "full", ev: Event{Time: mustTime("2018-05-17T08:03:11Z"), Campaign: "c", MessageID: "m@x", Recipient: "jana@centrum.sk", Domain: "centrum.sk",
			Code: 554, Enhanced: "5.7.1", Text: "554 5.7.1 Message rejected as spam", Source: SourceSMTP},
			want: `{"time":"2018-05-17T08:03:11Z","campaign":"c","message_id":"m@x","recipient":"jana@centrum.sk","domain":"centrum.sk","code":554,"enhanced":"5.7.1","text":"554 5.7.1 Message rejected as spam","source":"smtp"}` + "\n"},
		{name: "minimal", ev: Event{Time: time.Unix(1526544191, 5e8), Code: 250},
			want: `{"time":"2018-05-17T08:03:11.5Z","code":250}` + "\n"},
		{name: "offset becomes UTC", ev: Event{Time: time.Date(2018, 5, 17, 10, 3, 11, 0, time.FixedZone("CEST", 7200)), Code: 250},
			want: `{"time":"2018-05-17T08:03:11Z","code":250}` + "\n"},
		{name: "escapes", ev: Event{Time: mustTime("2018-05-17T08:03:11Z"), Code: 550, Text: "a\"b\\c\n\r\t\x01é\u2028"},
			want: `{"time":"2018-05-17T08:03:11Z","code":550,"text":"a\"b\\c\n\r\t\u0001é\u2028"}` + "\n"},
		{name: "invalid utf8", ev: Event{Time: mustTime("2018-05-17T08:03:11Z"), Code: 550, Text: "a\xffb"},
			want: `{"time":"2018-05-17T08:03:11Z","code":550,"text":"a\ufffdb"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendNDJSON(nil, tt.ev))
			if got != tt.want {
				t.Fatalf("AppendNDJSON(%+v) = %s, want %s", tt.ev, got, tt.want)
			}
			var buf bytes.Buffer
			if err := WriteNDJSON(&buf, tt.ev); err != nil || buf.String() != tt.want {
				t.Fatalf("WriteNDJSON(%+v) = %q, %v, want %q", tt.ev, buf.String(), err, tt.want)
			}
			back, err := DecodeEvent([]byte(got))
			if err != nil {
				t.Fatalf("DecodeEvent(%q) = %v", got, err)
			}
			var std Event
			if err := json.Unmarshal([]byte(got), &std); err != nil {
				t.Fatalf("json.Unmarshal(%q) = %v", got, err)
			}
			std.Time = std.Time.UTC()
			if back != std {
				t.Errorf("DecodeEvent(%q) = %+v, encoding/json = %+v", got, back, std)
			}
		})
	}
}

func TestWriteNDJSONError(t *testing.T) {
	err := WriteNDJSON(failWriter{}, Event{Code: 250})
	if !errors.Is(err, errFail) {
		t.Errorf("WriteNDJSON(failing writer) = %v, want %v", err, errFail)
	}
}

var errFail = errors.New("disk on fire")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errFail }

func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", 200)
	tests := []struct {
		name  string
		input string
		max   int
		want  []string // "!" marks a line too long
	}{
		{name: "empty", input: "", want: nil},
		{name: "no final newline", input: "a\nb", want: []string{"a", "b"}},
		{name: "crlf", input: "a\r\nb\r\n", want: []string{"a", "b"}},
		{name: "blank lines", input: "\n\na\n", want: []string{"", "", "a"}},
		{name: "bom", input: "\xef\xbb\xbfa\n\xef\xbb\xbfb\n", want: []string{"a", "\xef\xbb\xbfb"}},
		{name: "too long", input: "a\n" + long + "\nb\n", max: 100, want: []string{"a", "!", "b"}},
		{name: "too long at end", input: "a\n" + long, max: 100, want: []string{"a", "!"}},
		{name: "just fits", input: long + "\r\n", max: 200, want: []string{long}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLineReader(nil, "x")
			l.br = bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(tt.input)), 16)
			if tt.max > 0 {
				l.max = tt.max
			}
			var got []string
			for {
				line, tooLong, err := l.read()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if tooLong {
					got = append(got, "!")
				} else {
					got = append(got, string(line))
				}
				if l.line != len(got) {
					t.Errorf("line number = %d, want %d", l.line, len(got))
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("lines of %q = %q, want %q", tt.input, got, tt.want)
			}
		})
	}
}

func TestNDJSONLongLineAndReadError(t *testing.T) {
	good := `{"time":1526544191,"code":250}` + "\n"
	input := good + `{"time":1526544191,"code":250,"text":"` + strings.Repeat("y", MaxLineBytes) + `"}` + "\n" + good
	events, skipped := readAllEvents(t, NewNDJSONReader(strings.NewReader(input), "big").Next)
	if len(events) != 2 || len(skipped) != 1 || skipped[0].Line != 2 || !strings.Contains(skipped[0].Reason, "longer than") {
		t.Fatalf("read %d events, skipped %v, want 2 events and line 2 skipped as too long", len(events), skipped)
	}

	r := NewNDJSONReader(io.MultiReader(strings.NewReader(good), iotest.ErrReader(errFail)), "broken")
	if _, err := r.Next(); err != nil {
		t.Fatalf("Next() = %v, want the first event", err)
	}
	_, err := r.Next()
	var re *RecordError
	if !errors.Is(err, errFail) || errors.As(err, &re) {
		t.Fatalf("Next() = %v, want the read error, not a RecordError", err)
	}
	if _, err2 := r.Next(); err2 != err {
		t.Errorf("Next() after a read error = %v, want the same error again", err2)
	}
}
