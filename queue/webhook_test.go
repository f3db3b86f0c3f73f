package queue

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy/redistest"
)

const testWebhookSecret = "0123456789abcdef-webhook"

// webhookSetup returns a webhook on a Handler with a real Redis, served by
// an httptest server, and the handler.
func webhookSetup(t *testing.T, c WebhookConfig) (*httptest.Server, *Handler, feedback.Keys) {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	cl, err := bounces.NewClassifier()
	if err != nil {
		t.Fatal(err)
	}
	keys := feedback.Keys{Prefix: prefix}
	h := &Handler{
		Classifier: cl, Suppressions: feedback.NewSuppressions(rdb, keys), Loop: feedback.NewLoop(rdb, keys, nil),
		Recorder: feedback.NewRecorder(rdb, keys), Metrics: NewMetrics(), Redis: rdb, HashKey: []byte("k"),
		Log: zerolog.New(zerolog.NewTestWriter(t)),
	}
	srv := httptest.NewServer(NewWebhook(h, c, zerolog.New(zerolog.NewTestWriter(t))))
	t.Cleanup(srv.Close)
	return srv, h, keys
}

// post sends body to url with the content type and signature header sig
// ("" for none) and returns the status and the decoded answer.
func post(t *testing.T, url, ctype, sig string, body io.Reader) (int, WebhookAnswer) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	if sig != "" {
		req.Header.Set(WebhookSignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a WebhookAnswer
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("answer %d %q: %v", resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode, a
}

func TestWebhook(t *testing.T) {
	t.Setenv(WebhookSecretEnv, "") // the configured secret counts
	goodBatch := strings.Join([]string{
		`{"time":"2018-05-17T08:03:11Z","recipient":"jan@Azet.SK","code":550,"enhanced":"5.1.1","text":"550 5.1.1 User unknown"}`,
		`{"time":1526544191,"recipient":"jana@centrum.sk","code":550,"source":"arf"}`,
		``,
		`{"recipient":"petr@gmail.com","code":421,"enhanced":"4.7.0","text":"421 4.7.0 Try again later"}`,
	}, "\r\n") + "\n"
	partialBatch := strings.Join([]string{
		`{"time":"2018-05-17T08:03:11Z","recipient":"ivo@azet.sk","code":550,"enhanced":"5.1.1","text":"550 5.1.1 No such user"}`,
		`this is not JSON`,
		`{"time":"2018-05-17T08:03:11Z","recipient":"eva@seznam.cz","code":452,"enhanced":"4.2.2","text":"452 4.2.2 Mailbox full"}`,
		`{"time":"2018-05-17T08:03:11Z","recipient":"nocode@azet.sk"}`,
	}, "\n")
	dsn, err := os.ReadFile("../bounces/testdata/messages/dsn-postfix-two.eml")
	if err != nil {
		t.Fatal(err)
	}
	sign := func(b string) string { return WebhookSignature(testWebhookSecret, []byte(b)) }
	tests := []struct {
		name         string
		ctype        string
		body         string
		sig          string // "" signs the body with the secret; "-" sends none
		chunked      bool   // hide the length (Transfer-Encoding: chunked)
		wantStatus   int
		wantAccepted int
		wantLines    []int // lines of the skipped records
		suppressed   []string
		notSupp      []string
		counted      string // a counter field that must be in Redis after the request
	}{
		{name: "good batch", ctype: "application/x-ndjson", body: goodBatch, wantStatus: 200, wantAccepted: 3,
			suppressed: []string{"jan@azet.sk", "jana@centrum.sk"}, notSupp: []string{"petr@gmail.com"}, counted: "550|azet.sk"},
		{name: "json content type with charset", ctype: "application/json; charset=utf-8",
			body:       `{"time":"2018-05-17T08:03:11Z","recipient":"dana@azet.sk","code":550,"enhanced":"5.1.1","text":"550 5.1.1 user unknown"}`,
			wantStatus: 200, wantAccepted: 1, suppressed: []string{"dana@azet.sk"}},
		{name: "partial batch applies the good lines", ctype: "application/x-ndjson", body: partialBatch, wantStatus: 400, wantAccepted: 2,
			wantLines: []int{2, 4}, suppressed: []string{"ivo@azet.sk"}, notSupp: []string{"eva@seznam.cz", "nocode@azet.sk"}, counted: "452|seznam.cz"},
		{name: "bad signature", ctype: "application/x-ndjson", body: goodBatch, sig: sign("something else"), wantStatus: 401,
			notSupp: []string{"jan@azet.sk", "jana@centrum.sk"}},
		{name: "missing signature", ctype: "application/x-ndjson", body: goodBatch, sig: "-", wantStatus: 401, notSupp: []string{"jan@azet.sk"}},
		{name: "malformed signature", ctype: "application/x-ndjson", body: goodBatch, sig: "sha1=abcd", wantStatus: 401, notSupp: []string{"jan@azet.sk"}},
		{name: "oversized body", ctype: "application/x-ndjson", body: goodBatch + strings.Repeat(" ", 64<<10), wantStatus: 413,
			notSupp: []string{"jan@azet.sk"}},
		{name: "oversized chunked body", ctype: "application/x-ndjson", body: goodBatch + strings.Repeat(" ", 64<<10), chunked: true, wantStatus: 413,
			notSupp: []string{"jan@azet.sk"}},
		{name: "wrong content type", ctype: "text/plain", body: goodBatch, wantStatus: 415, notSupp: []string{"jan@azet.sk"}},
		{name: "empty body", ctype: "application/x-ndjson", body: "\n\n", wantStatus: 400},
		{name: "dsn message", ctype: "message/rfc822", body: string(dsn), wantStatus: 200, wantAccepted: 2,
			suppressed: []string{"jan@azet.sk"}, notSupp: []string{"eva@gmail.com"}, counted: "550|azet.sk"},
		{name: "not a bounce", ctype: "message/rfc822", body: "From: a@b.example\r\nSubject: hello\r\n\r\nhi\r\n", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, h, keys := webhookSetup(t, WebhookConfig{Secret: testWebhookSecret, MaxBody: 32 << 10})
			sig := tt.sig
			switch sig {
			case "":
				sig = sign(tt.body)
			case "-":
				sig = ""
			}
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body)
			}
			status, ans := post(t, srv.URL, tt.ctype, sig, body)
			if status != tt.wantStatus {
				t.Errorf("POST %s = %d %+v, want %d", tt.name, status, ans, tt.wantStatus)
			}
			if ans.Accepted != tt.wantAccepted {
				t.Errorf("POST %s accepted = %d, want %d (%+v)", tt.name, ans.Accepted, tt.wantAccepted, ans)
			}
			if tt.wantLines != nil {
				var lines []int
				for _, s := range ans.Skipped {
					lines = append(lines, s.Line)
					if s.Reason == "" {
						t.Errorf("skipped line %d has no reason", s.Line)
					}
				}
				if !slices.Equal(lines, tt.wantLines) {
					t.Errorf("POST %s skipped lines = %v, want %v (%+v)", tt.name, lines, tt.wantLines, ans.Skipped)
				}
			} else if status == 200 && len(ans.Skipped) > 0 {
				t.Errorf("POST %s = 200 with skipped records %+v", tt.name, ans.Skipped)
			}
			ctx := context.Background()
			for _, a := range tt.suppressed {
				if _, ok, err := h.Suppressions.Get(ctx, a); err != nil || !ok {
					t.Errorf("after %s: %s suppressed = %v (%v), want true", tt.name, a, ok, err)
				}
			}
			for _, a := range tt.notSupp {
				if _, ok, _ := h.Suppressions.Get(ctx, a); ok {
					t.Errorf("after %s: %s suppressed, want not", tt.name, a)
				}
			}
			if tt.counted != "" {
				at := time.Date(2018, 5, 17, 8, 0, 0, 0, time.UTC)
				n, err := h.Redis.HGet(ctx, keys.Counts(at), tt.counted).Int()
				if err != nil || n < 1 {
					t.Errorf("after %s: counter %s at %s = %d (%v), want >= 1 (the recorder was not flushed?)", tt.name, tt.counted, keys.Counts(at), n, err)
				}
			}
		})
	}
}

func TestWebhookMethodsAndDisabled(t *testing.T) {
	srv, _, _ := webhookSetup(t, WebhookConfig{Secret: testWebhookSecret})
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET = %d Allow %q, want 405 Allow POST", resp.StatusCode, resp.Header.Get("Allow"))
	}

	t.Setenv(WebhookSecretEnv, "")
	off, _, _ := webhookSetup(t, WebhookConfig{})
	body := `{"time":"2018-05-17T08:03:11Z","recipient":"jan@azet.sk","code":550}`
	if status, _ := post(t, off.URL, "application/x-ndjson", WebhookSignature("", []byte(body)), strings.NewReader(body)); status != http.StatusNotFound {
		t.Errorf("POST without a secret configured = %d, want 404", status)
	}
}

// TestWebhookRoute checks that /bounces is served without basic auth (it
// has its own signature) while the rest of the listener keeps it.
func TestWebhookRoute(t *testing.T) {
	t.Setenv(WebhookSecretEnv, testWebhookSecret)
	_, h, _ := webhookSetup(t, WebhookConfig{})
	s := &Server{o: ServerOptions{Handler: h, Web: WebConfig{Username: "ops", Password: "pw"}.WithDefaults(), Log: h.Log}}
	srv := httptest.NewServer(s.routes())
	t.Cleanup(srv.Close)
	body := `{"time":"2018-05-17T08:03:11Z","recipient":"route@azet.sk","code":550,"enhanced":"5.1.1","text":"550 5.1.1 user unknown"}`
	if status, ans := post(t, srv.URL+"/bounces", "application/x-ndjson", WebhookSignature(testWebhookSecret, []byte(body)), strings.NewReader(body)); status != 200 || ans.Accepted != 1 {
		t.Errorf("POST /bounces without basic auth = %d %+v, want 200 accepted 1", status, ans)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /metrics without credentials = %d, want 401", resp.StatusCode)
	}
}

func TestWebhookConfig(t *testing.T) {
	tests := []struct {
		name    string
		c       WebhookConfig
		env     string
		want    WebhookConfig
		wantErr bool
	}{
		{"zero disables with the default size", WebhookConfig{}, "", WebhookConfig{MaxBody: DefaultWebhookMaxBody}, false},
		{"environment overrides the file", WebhookConfig{Secret: "from-the-config-file", MaxBody: 4096}, "from-the-environment!", WebhookConfig{Secret: "from-the-environment!", MaxBody: 4096}, false},
		{"short secret", WebhookConfig{Secret: "short"}, "", WebhookConfig{Secret: "short", MaxBody: DefaultWebhookMaxBody}, true},
		{"short secret in the environment", WebhookConfig{}, "short", WebhookConfig{Secret: "short", MaxBody: DefaultWebhookMaxBody}, true},
		{"negative max_body", WebhookConfig{MaxBody: -1}, "", WebhookConfig{MaxBody: -1}, true},
		{"huge max_body", WebhookConfig{MaxBody: MaxWebhookMaxBody + 1}, "", WebhookConfig{MaxBody: MaxWebhookMaxBody + 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(WebhookSecretEnv, tt.env)
			got := tt.c.WithDefaults()
			if got != tt.want {
				t.Errorf("WithDefaults(%+v) = %+v, want %+v", tt.c, got, tt.want)
			}
			err := got.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate(%+v) = %v, want error %v", got, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "webhook.") {
				t.Errorf("Validate(%+v) = %v, want the key named", got, err)
			}
		})
	}
}

func TestDecodeNDJSONBody(t *testing.T) {
	now := time.Date(2024, 3, 1, 12, 0, 0, 500, time.UTC)
	tests := []struct {
		name     string
		line     string
		wantTime time.Time
		wantSrc  bounces.Source
		wantErr  bool
	}{
		{"time given", `{"time":"2018-05-17T08:03:11Z","code":550,"recipient":"a@b.sk","source":"dsn"}`, time.Date(2018, 5, 17, 8, 3, 11, 0, time.UTC), bounces.SourceDSN, false},
		{"time absent gets now", `{"code":550,"recipient":"a@b.sk"}`, now, bounces.SourceWebhook, false},
		{"time null gets now", `{"time":null,"code":550,"recipient":"a@b.sk"}`, now, bounces.SourceWebhook, false},
		{"empty object lacks code", `{}`, time.Time{}, 0, true},
		{"bad time stays bad", `{"time":"yesterday","code":550}`, time.Time{}, 0, true},
		{"array", `[1,2]`, time.Time{}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, skipped := decodeNDJSONBody([]byte(tt.line), now)
			if tt.wantErr {
				if len(evs) != 0 || len(skipped) != 1 || skipped[0].Line != 1 {
					t.Errorf("decodeNDJSONBody(%q) = %+v, %+v, want one skipped line 1", tt.line, evs, skipped)
				}
				return
			}
			if len(evs) != 1 || len(skipped) != 0 {
				t.Fatalf("decodeNDJSONBody(%q) = %+v, %+v, want one event", tt.line, evs, skipped)
			}
			if e := evs[0].e; !e.Time.Equal(tt.wantTime) || e.Source != tt.wantSrc || e.Domain != "b.sk" {
				t.Errorf("decodeNDJSONBody(%q) = %+v, want time %v source %v domain b.sk", tt.line, e, tt.wantTime, tt.wantSrc)
			}
		})
	}
}

func TestIngestSuppressesMatchesIngest(t *testing.T) {
	_, h, _ := webhookSetup(t, WebhookConfig{Secret: testWebhookSecret})
	ctx := context.Background()
	at := time.Date(2018, 5, 17, 8, 3, 11, 0, time.UTC)
	for i, e := range []bounces.Event{
		{Time: at, Recipient: "a1@azet.sk", Domain: "azet.sk", Code: 550, Enhanced: "5.1.1", Text: "550 5.1.1 User unknown"},
		{Time: at, Recipient: "a2@azet.sk", Domain: "azet.sk", Code: 450, Enhanced: "4.1.1", Text: "450 4.1.1 user unknown"},
		{Time: at, Recipient: "a3@centrum.sk", Domain: "centrum.sk", Source: bounces.SourceARF},
		{Time: at, Recipient: "a4@gmail.com", Domain: "gmail.com", Code: 452, Enhanced: "4.2.1", Text: "452 4.2.1 rate limited"},
	} {
		d, err := h.Ingest(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		_, got, _ := h.Suppressions.Get(ctx, e.Recipient)
		if want := IngestSuppresses(e, d); got != want {
			t.Errorf("event %d (%v): suppressed = %v, IngestSuppresses = %v", i, d.Class, got, want)
		}
	}
}

func TestReportEvent(t *testing.T) {
	at := time.Date(2018, 5, 17, 8, 3, 11, 0, time.UTC)
	tests := []struct {
		name          string
		rep           bounces.Report
		wantOK        bool
		wantErr       bool
		wantRecipient string
		wantDomain    string
		wantSource    bounces.Source
	}{
		{"failed", bounces.Report{Recipient: "Jan@Azet.SK", Reply: bounces.Reply{Code: 550, Enhanced: "5.1.1"}, Arrival: at}, true, false, "Jan@Azet.SK", "azet.sk", bounces.SourceDSN},
		{"complaint", bounces.Report{Recipient: "jana@centrum.sk", Action: bounces.ActionComplained}, true, false, "jana@centrum.sk", "centrum.sk", bounces.SourceARF},
		{"redacted complaint", bounces.Report{Action: bounces.ActionComplained}, true, false, "", "", bounces.SourceARF},
		{"auto reply is ignored", bounces.Report{Recipient: "petra@seznam.cz", Action: bounces.ActionAutoReplied}, false, false, "", "", 0},
		{"refused at MAIL FROM names nobody", bounces.Report{Recipient: "ivo@azet.sk", Command: "MAIL", Reply: bounces.Reply{Code: 550, Enhanced: "5.1.1", Text: "sender unknown"}}, true, false, "", "azet.sk", bounces.SourceDSN},
		{"recipient without a domain", bounces.Report{Recipient: "postmaster", Reply: bounces.Reply{Code: 550}}, false, true, "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok, err := ReportEvent(tt.rep)
			if ok != tt.wantOK || (err != nil) != tt.wantErr {
				t.Fatalf("ReportEvent(%+v) = %v, %v, want %v, error %v", tt.rep, ok, err, tt.wantOK, tt.wantErr)
			}
			if ok && (e.Recipient != tt.wantRecipient || e.Domain != tt.wantDomain || e.Source != tt.wantSource) {
				t.Errorf("ReportEvent(%+v) = %+v, want recipient %q domain %q source %v", tt.rep, e, tt.wantRecipient, tt.wantDomain, tt.wantSource)
			}
		})
	}
}

// TestWebhookRedisDown checks the answer when the events cannot be
// applied: 503, nothing accepted.
func TestWebhookRedisDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	cl, err := bounces.NewClassifier()
	if err != nil {
		t.Fatal(err)
	}
	keys := feedback.Keys{Prefix: "down"}
	h := &Handler{Classifier: cl, Suppressions: feedback.NewSuppressions(rdb, keys), Recorder: feedback.NewRecorder(rdb, keys)}
	srv := httptest.NewServer(NewWebhook(h, WebhookConfig{Secret: testWebhookSecret}, zerolog.New(zerolog.NewTestWriter(t))))
	t.Cleanup(srv.Close)
	body := `{"time":"2018-05-17T08:03:11Z","recipient":"jan@azet.sk","code":550,"enhanced":"5.1.1","text":"550 5.1.1 User unknown"}`
	status, ans := post(t, srv.URL, "application/x-ndjson", WebhookSignature(testWebhookSecret, []byte(body)), strings.NewReader(body))
	if status != http.StatusServiceUnavailable || ans.Accepted != 0 || ans.Error == "" {
		t.Errorf("POST with Redis down = %d %+v, want 503, nothing accepted, an error", status, ans)
	}
}

// TestWebhookReplay posts the same batch twice, and a bounce message
// twice: the second time every event is a duplicate, nothing acts or
// counts again, and the late 552 5.3.4 is resent small once.
func TestWebhookReplay(t *testing.T) {
	t.Setenv(WebhookSecretEnv, "")
	h, rdb, keys := lateSetup(t)
	srv := httptest.NewServer(NewWebhook(h, WebhookConfig{Secret: testWebhookSecret}, zerolog.New(zerolog.NewTestWriter(t))))
	t.Cleanup(srv.Close)
	enq := time.Date(2018, 5, 17, 7, 0, 0, 0, time.UTC)
	for _, p := range []SendPayload{
		{Campaign: "may", ID: "big@shop.example", From: "news@shop.example", To: "big@gmail.com", Domain: "gmail.com", Template: "newsletter", Enqueued: enq},
		{Campaign: "may", ID: "gone@shop.example", From: "news@shop.example", To: "gone@azet.sk", Domain: "azet.sk", Template: "notice", Enqueued: enq},
		{Campaign: "may", ID: "arf@shop.example", From: "news@shop.example", To: "jana@centrum.sk", Domain: "centrum.sk", Template: "notice", Enqueued: enq},
		{Campaign: "may", ID: "0f3c9a2e@mail.example.com", From: "news@example.com", To: "jan@azet.sk", Domain: "azet.sk", Template: "notice", Enqueued: enq},
	} {
		sent(t, h, p)
	}
	batch := strings.Join([]string{
		`{"time":"2018-05-17T08:03:11Z","message_id":"<big@shop.example>","code":552,"enhanced":"5.3.4","text":"552 5.3.4 Your message exceeded Google's message size limits.","source":"dsn"}`,
		`{"time":"2018-05-17T08:03:12Z","message_id":"gone@shop.example","code":550,"enhanced":"5.1.1","text":"550 5.1.1 User unknown"}`,
		`{"time":"2018-05-17T08:03:13Z","message_id":"arf@shop.example","code":550,"source":"arf"}`,
		`{"time":"2018-05-17T08:03:14Z","message_id":"nobody@shop.example","recipient":"stranger@atlas.sk","code":550,"enhanced":"5.1.1","text":"550 5.1.1 User unknown"}`,
		`{"time":"2018-05-17T08:03:15Z","recipient":"huge@seznam.cz","code":552,"enhanced":"5.3.4","text":"552 5.3.4 Message too big"}`,
	}, "\n")
	dsn, err := os.ReadFile("../bounces/testdata/messages/dsn-postfix-two.eml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		ctype   string
		body    string
		first   WebhookAnswer
		counted map[string]int // counter fields at 2018-05-17 08h after both posts
	}{
		{name: "ndjson batch", ctype: "application/x-ndjson", body: batch,
			first: WebhookAnswer{Accepted: 5, LateTally: LateTally{Matched: 3, Unmatched: 2, Suppressed: 3, Resent: 1,
				NotResent: map[string]int{NotResentUnmatched: 1}}},
			counted: map[string]int{"552|gmail.com": 1, "550|azet.sk": 1, "550|atlas.sk": 1, "552|seznam.cz": 1}},
		// Two reports of one Message-ID (an address that forwards to two):
		// both are the record's recipient's, and the second answer (452
		// 4.2.2) does not suppress.
		{name: "bounce message", ctype: "message/rfc822", body: string(dsn),
			first:   WebhookAnswer{Accepted: 2, LateTally: LateTally{Matched: 2, Suppressed: 1}},
			counted: map[string]int{"550|azet.sk": 2, "452|azet.sk": 1}},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := WebhookSignature(testWebhookSecret, []byte(tt.body))
			status, ans := post(t, srv.URL, tt.ctype, sig, strings.NewReader(tt.body))
			ans.Skipped, ans.Error = nil, ""
			if status != 200 || !reflect.DeepEqual(ans, tt.first) {
				t.Errorf("POST %s = %d %+v, want 200 %+v", tt.name, status, ans, tt.first)
			}
			status, again := post(t, srv.URL, tt.ctype, sig, strings.NewReader(tt.body))
			if want := (WebhookAnswer{Accepted: tt.first.Accepted, LateTally: LateTally{Duplicates: tt.first.Accepted}}); status != 200 || !reflect.DeepEqual(again, want) {
				t.Errorf("POST %s again = %d %+v, want 200 %+v", tt.name, status, again, want)
			}
			at := time.Date(2018, 5, 17, 8, 0, 0, 0, time.UTC)
			for f, n := range tt.counted {
				if got, _ := rdb.HGet(ctx, keys.Counts(at), f).Int(); got != n {
					t.Errorf("after %s twice: counter %s = %d, want %d", tt.name, f, got, n)
				}
			}
		})
	}
	checkResent(t, h, rdb, "small.big@shop.example", "big@gmail.com", "may")
	for _, a := range []string{"gone@azet.sk", "jana@centrum.sk", "stranger@atlas.sk", "jan@azet.sk"} {
		if _, ok, _ := h.Suppressions.Get(ctx, a); !ok {
			t.Errorf("%s not suppressed", a)
		}
	}
}
