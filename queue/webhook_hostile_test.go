package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
)

// TestWebhookHostile sends what an attacker or a broken ESP would: forged
// and tampered signatures, bodies at and over the limit, and batches of
// malformed lines. Nothing unsigned or oversized is applied; a malformed
// line is answered 400 with its line number and a reason naming the field,
// and the batch is accepted in part: the good lines are applied.
func TestWebhookHostile(t *testing.T) {
	t.Setenv(WebhookSecretEnv, "")
	const maxBody = 4096
	good := `{"time":"2018-05-17T08:03:11Z","recipient":"ok@azet.sk","code":550,"enhanced":"5.1.1","text":"550 5.1.1 User unknown"}`
	sign := func(b string) string { return WebhookSignature(testWebhookSecret, []byte(b)) }
	// pad makes a body of exactly n bytes: good, then spaces (blank).
	pad := func(n int) string { return good + "\n" + strings.Repeat(" ", n-len(good)-1) }
	type skip struct {
		line int
		want string // in the reason
	}
	tests := []struct {
		name         string
		body         string
		sig          string // "" signs the body
		wantStatus   int
		wantAccepted int
		wantSkipped  []skip
		suppressed   []string
		notSupp      []string
	}{
		{name: "signed with another secret", body: good, sig: WebhookSignature("another-secret-0123456789", []byte(good)), wantStatus: 401, notSupp: []string{"ok@azet.sk"}},
		{name: "tampered body", body: good + " ", sig: sign(good), wantStatus: 401, notSupp: []string{"ok@azet.sk"}},
		{name: "signature of an empty body", body: good, sig: sign(""), wantStatus: 401, notSupp: []string{"ok@azet.sk"}},
		{name: "short signature", body: good, sig: sign(good)[:len(sign(good))-2], wantStatus: 401, notSupp: []string{"ok@azet.sk"}},
		{name: "signature without its scheme", body: good, sig: strings.TrimPrefix(sign(good), "sha256="), wantStatus: 401, notSupp: []string{"ok@azet.sk"}},
		{name: "body at the limit", body: pad(maxBody), wantStatus: 200, wantAccepted: 1, suppressed: []string{"ok@azet.sk"}},
		{name: "body one byte over the limit", body: pad(maxBody + 1), wantStatus: 413, notSupp: []string{"ok@azet.sk"}},
		{name: "oversized body with a bad signature", body: pad(maxBody + 1), sig: sign("x"), wantStatus: 413, notSupp: []string{"ok@azet.sk"}},
		{
			name: "every line malformed: nothing applied, every line named",
			body: strings.Join([]string{
				`not json`,
				`[1,2]`,
				`"a string"`,
				`{"time":"2018-05-17T08:03:11Z","recipient":"a@azet.sk"}`,
				`{"time":"yesterday","code":550,"recipient":"b@azet.sk"}`,
				`{"time":1526544191,"code":1000,"recipient":"c@azet.sk"}`,
				`{"time":1526544191,"code":550,"recipient":"nobody"}`,
				`{"time":1526544191,"code":550,"domain":"a b"}`,
				`{"time":1526544191,"code":550,"source":"carrier-pigeon"}`,
				`{"time":1526544191,"code":550,"recipient":"d@azet.sk"`,
			}, "\n"),
			wantStatus: 400,
			wantSkipped: []skip{{1, "not a JSON object"}, {2, "not a JSON object"}, {3, "not a JSON object"}, {4, `"code"`},
				{5, "time"}, {6, "code"}, {7, "recipient"}, {8, "domain"}, {9, "source"}, {10, "JSON"}},
			notSupp: []string{"a@azet.sk", "b@azet.sk", "c@azet.sk", "d@azet.sk"},
		},
		{
			name:         "lines are counted with blank lines, CRLF and a byte order mark",
			body:         "\xef\xbb\xbf" + good + "\r\n\r\n   \r\n{bad}\r\n" + strings.Replace(good, "ok@", "ok2@", 1) + "\r\n",
			wantStatus:   400,
			wantAccepted: 2,
			wantSkipped:  []skip{{4, "not a JSON object"}},
			suppressed:   []string{"ok@azet.sk", "ok2@azet.sk"},
		},
		{
			name:         "binary garbage and a NUL between good lines",
			body:         good + "\n\x00\x01\x02\xff\xfe\n" + strings.Replace(good, "ok@", "ok3@", 1) + "\n",
			wantStatus:   400,
			wantAccepted: 2,
			wantSkipped:  []skip{{2, "not a JSON object"}},
			suppressed:   []string{"ok@azet.sk", "ok3@azet.sk"},
		},
		{
			// No address holds a line break: the event is refused with its
			// line and reason, and suppresses neither real address in it.
			name:         "CRLF in a recipient is refused",
			body:         `{"time":1526544191,"code":550,"enhanced":"5.1.1","text":"550 5.1.1 User unknown","recipient":"jan@azet.sk\r\nBcc: eva@seznam.cz"}`,
			wantStatus:   400,
			wantAccepted: 0,
			wantSkipped:  []skip{{1, "recipient: control character U+000D"}},
			notSupp:      []string{"jan@azet.sk", "eva@seznam.cz"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, h, _ := webhookSetup(t, WebhookConfig{Secret: testWebhookSecret, MaxBody: maxBody})
			sig := tt.sig
			if sig == "" {
				sig = sign(tt.body)
			}
			status, ans := post(t, srv.URL, "application/x-ndjson", sig, strings.NewReader(tt.body))
			if status != tt.wantStatus || ans.Accepted != tt.wantAccepted {
				t.Fatalf("POST = %d %+v, want %d with %d accepted", status, ans, tt.wantStatus, tt.wantAccepted)
			}
			if status == 401 || status == 413 {
				if ans.Error == "" || ans.Skipped != nil {
					t.Errorf("POST = %d %+v, want an error and no records", status, ans)
				}
			}
			var lines []int
			for i, s := range ans.Skipped {
				lines = append(lines, s.Line)
				if i < len(tt.wantSkipped) && !strings.Contains(s.Reason, tt.wantSkipped[i].want) {
					t.Errorf("skipped line %d: reason %q, want it to name %s", s.Line, s.Reason, tt.wantSkipped[i].want)
				}
			}
			var wantLines []int
			for _, s := range tt.wantSkipped {
				wantLines = append(wantLines, s.line)
			}
			if !slices.Equal(lines, wantLines) {
				t.Errorf("skipped lines = %v, want %v (%+v)", lines, wantLines, ans.Skipped)
			}
			ctx := context.Background()
			for _, a := range tt.suppressed {
				if _, ok, err := h.Suppressions.Get(ctx, a); err != nil || !ok {
					t.Errorf("%s suppressed = %v (%v), want true", a, ok, err)
				}
			}
			for _, a := range tt.notSupp {
				if _, ok, _ := h.Suppressions.Get(ctx, a); ok {
					t.Errorf("%s suppressed, want not", a)
				}
			}
		})
	}
}

// TestWebhookAnswerShape pins the JSON of a partly accepted batch: the
// sender learns how many events were applied and which lines to fix and
// resend.
func TestWebhookAnswerShape(t *testing.T) {
	t.Setenv(WebhookSecretEnv, "")
	srv, _, _ := webhookSetup(t, WebhookConfig{Secret: testWebhookSecret})
	body := `{"time":1526544191,"code":550,"recipient":"a@azet.sk"}` + "\n" + `{"time":1526544191}` + "\n"
	req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set(WebhookSignatureHeader, WebhookSignature(testWebhookSecret, []byte(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	// Other fields (counts of what the events did) may come along.
	var ans struct {
		Accepted *int              `json:"accepted"`
		Skipped  []json.RawMessage `json:"skipped"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		t.Fatalf("answer %s: %v", raw, err)
	}
	want := `{"line":2,"reason":"missing \"code\""}`
	if resp.StatusCode != 400 || ans.Accepted == nil || *ans.Accepted != 1 || len(ans.Skipped) != 1 || string(ans.Skipped[0]) != want {
		t.Errorf("POST = %d %s, want 400, accepted 1 and skipped [%s]", resp.StatusCode, raw, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("answer headers %v, want JSON and nosniff", resp.Header)
	}
}

// FuzzWebhookNDJSON decodes arbitrary webhook bodies: every non-blank line
// is an event or a skipped record, exactly once, in order, a skipped record
// has its line and a reason, and an event is what bounces.DecodeEvent reads
// from the line (with the request's time when it has none), in UTC, with a
// valid code, a source and a normalised domain.
func FuzzWebhookNDJSON(f *testing.F) {
	f.Add([]byte(`{"time":"2018-05-17T08:03:11Z","recipient":"jan@Azet.SK","code":550,"enhanced":"5.1.1"}` + "\r\n\n" + `{"code":421}`))
	f.Add([]byte("\xef\xbb\xbf{\"time\":null,\"code\":\"550\",\"source\":\"arf\"}\nnot json\n{}"))
	f.Add([]byte(`{"time":1526544191.5,"code":250,"time":null}` + "\n" + `{"time":1,"code":550,"recipient":"a@b.sk\r\nBcc: c@d.sk"}`))
	f.Add([]byte(`{ "code" : 550 , "x" : [ { } ] }`))
	now := time.Date(2024, 3, 1, 12, 0, 0, 500, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		events, skipped := decodeNDJSONBody(body, now)
		// The non-blank lines, by number.
		var want []int
		for n, line := range bytes.Split(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), []byte("\n")) {
			if len(bytes.TrimSpace(line)) > 0 {
				want = append(want, n+1)
			}
		}
		var got []int
		ei, si := 0, 0
		for ei < len(events) || si < len(skipped) {
			switch {
			case si == len(skipped) || ei < len(events) && events[ei].line < skipped[si].Line:
				got = append(got, events[ei].line)
				ei++
			default:
				got = append(got, skipped[si].Line)
				if skipped[si].Reason == "" {
					t.Fatalf("line %d skipped without a reason", skipped[si].Line)
				}
				si++
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("lines read %v, want each non-blank line once, in order: %v", got, want)
		}
		lines := bytes.Split(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), []byte("\n"))
		for _, le := range events {
			e := le.e
			if e.Time.IsZero() || e.Time.Location() != time.UTC || e.Code < 100 || e.Code > 999 || e.Source == bounces.SourceUnset {
				t.Fatalf("line %d: event %+v: want a UTC time, a code and a source", le.line, e)
			}
			if e.Domain != "" {
				if d, err := bounces.NormalizeDomain(e.Domain); err != nil || d != e.Domain {
					t.Fatalf("line %d: domain %q not normalised (%q, %v)", le.line, e.Domain, d, err)
				}
			}
			direct, err := bounces.DecodeEvent(bytes.TrimSpace(lines[le.line-1]))
			if err == nil {
				if direct.Source == bounces.SourceUnset {
					direct.Source = bounces.SourceWebhook
				}
				if direct != e {
					t.Fatalf("line %d: event %+v, DecodeEvent reads %+v", le.line, e, direct)
				}
			} else if !e.Time.Equal(now) {
				t.Fatalf("line %d: DecodeEvent fails (%v) but the webhook read %+v with a time of its own", le.line, err, e)
			}
		}
		// The answer of such a body is valid JSON.
		if _, err := json.Marshal(WebhookAnswer{Accepted: len(events), Skipped: skipped}); err != nil {
			t.Fatal(err)
		}
	})
}
