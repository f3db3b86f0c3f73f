package queue

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/feedback/report"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/policy/redistest"
	"github.com/bounceloop/bounceloop/queue/sender"
)

// pagesStack is a stack (not started) on its own Redis database, for the
// operators' pages.
func pagesStack(t *testing.T, rdb *redis.Client, pol policy.Config) *Stack {
	t.Helper()
	cl, err := bounces.NewClassifier()
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewStack(StackConfig{
		Redis: rdb, KeyPrefix: "pages", Web: WebConfig{Listen: "off", Open: true}, Policy: pol, Classifier: cl,
		SMTP: sender.Config{Routes: map[string]string{"*": "127.0.0.1:1"}}, Resolver: noDNS{},
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = st.Pool.Close()
		_ = st.Handler.Inspector.Close()
		_ = st.Server.insp.Close()
	})
	return st
}

// get serves path through the server's routes.
func get(t *testing.T, h http.Handler, path string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String(), rec.Header()
}

var navLinks = []string{`href="/suppressions"`, `href="/domains"`, `href="/reports"`, `href="/monitoring/"`}

func TestPagesSuppressions(t *testing.T) {
	rdb := redistest.DB(t)
	st := pagesStack(t, rdb, policy.Config{})
	ctx := context.Background()
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for addr, why := range map[string]feedback.Suppression{
		"alice@example.com": {Class: bounces.ClassInvalidRecipient, Code: 550, Answer: "550 5.1.1 no such user", Campaign: "spring", Time: at},
		"bob@example.org":   {Class: bounces.ClassComplaint, Time: at.Add(time.Hour)},
		`"<script>alert(1)</script>"@evil.test`: {Class: bounces.ClassInvalidRecipient, Code: 550,
			Answer: "550 <b>bold</b> & <script>x()</script>", Campaign: "<i>c</i>", Time: at},
	} {
		if err := st.Suppressions.Add(ctx, addr, why); err != nil {
			t.Fatal(err)
		}
	}
	h := st.Server.routes()

	tests := []struct {
		name     string
		path     string
		want     []string
		wantNone []string
	}{
		{"all", "/suppressions", append([]string{"alice@example.com", "bob@example.org", "3 of 3 addresses", "no such user", "spring", `href="/suppressions.csv"`}, navLinks...), nil},
		{"search by address", "/suppressions?q=ALICE", []string{"alice@example.com", "1 of 3 addresses", `href="/suppressions.csv?q=ALICE"`}, []string{"bob@example.org", "evil.test"}},
		{"search by campaign", "/suppressions?q=spring", []string{"alice@example.com"}, []string{"bob@example.org"}},
		{"no match", "/suppressions?q=nobody", []string{"0 of 3 addresses", "none"}, []string{"alice@example.com"}},
		{"escaped", "/suppressions?q=evil", []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;b&gt;bold&lt;/b&gt; &amp;", "&lt;i&gt;c&lt;/i&gt;"}, []string{"<script>", "<b>", "<i>"}},
		{"escaped query", "/suppressions?q=%22%3E%3Cscript%3E", []string{`value="&#34;&gt;&lt;script&gt;"`}, []string{`"><script>`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, hdr := get(t, h, tt.path)
			if code != http.StatusOK {
				t.Fatalf("GET %s = %d, want 200: %s", tt.path, code, body)
			}
			if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("GET %s Content-Type = %q, want text/html", tt.path, ct)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s lacks %q", tt.path, w)
				}
			}
			for _, w := range tt.wantNone {
				if strings.Contains(body, w) {
					t.Errorf("GET %s has %q", tt.path, w)
				}
			}
		})
	}

	t.Run("csv", func(t *testing.T) {
		code, body, hdr := get(t, h, "/suppressions.csv")
		if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
			t.Fatalf("GET /suppressions.csv = %d %q, want 200 text/csv", code, hdr.Get("Content-Type"))
		}
		recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatalf("the export is not CSV: %v", err)
		}
		if got, want := strings.Join(recs[0], ","), "address,class,code,time,campaign,answer"; got != want {
			t.Errorf("CSV header = %q, want %q", got, want)
		}
		if len(recs) != 4 {
			t.Errorf("CSV has %d records, want header + 3", len(recs))
		}
		found := false
		for _, r := range recs[1:] {
			if r[0] == "alice@example.com" {
				found = true
				if r[1] != "invalid_recipient" || r[2] != "550" || r[4] != "spring" || r[5] != "550 5.1.1 no such user" {
					t.Errorf("CSV row of alice = %q", r)
				}
			}
		}
		if !found {
			t.Error("CSV lacks alice@example.com")
		}
		_, body, _ = get(t, h, "/suppressions.csv?q=bob")
		if recs, _ := csv.NewReader(strings.NewReader(body)).ReadAll(); len(recs) != 2 || recs[1][0] != "bob@example.org" {
			t.Errorf("CSV ?q=bob = %q, want header + bob", recs)
		}
	})
}

func TestPagesDomains(t *testing.T) {
	rdb := redistest.DB(t)
	pol := policy.Config{
		Providers: map[string]policy.Provider{"google": {Domains: []string{"gmail.com"}, Settings: policy.Settings{Rate: policy.Rate{N: 10, Per: time.Second}}}},
		Domains:   map[string]policy.Settings{"centrum.sk": {Rate: policy.Rate{N: 60, Per: time.Minute}}},
	}
	st := pagesStack(t, rdb, pol)
	ctx := context.Background()
	rt := st.Policy.Route("gmail.com")
	if _, err := st.Loop.Throttled(ctx, rt.Key, rt.Settings); err != nil {
		t.Fatal(err)
	}
	if err := st.Loop.NoteSuspension(ctx, "google", "421 4.7.28 <unusual rate>", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	hold := feedback.Hold{Rule: "slow.rule", Reason: "421 4.7.0 <later>", Since: time.Now(), Until: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := st.Loop.SetHold(ctx, feedback.HoldDomain("example.org"), hold); err != nil {
		t.Fatal(err)
	}
	code, body, _ := get(t, st.Server.routes(), "/domains")
	if code != http.StatusOK {
		t.Fatalf("GET /domains = %d: %s", code, body)
	}
	for _, w := range append([]string{
		"provider:google", "domain:centrum.sk", "10/s", feedback.ReasonThrottled,
		"421 4.7.28 &lt;unusual rate&gt;", "until 2030-01-01 00:00:00Z",
		"domain:example.org", "slow.rule", "421 4.7.0 &lt;later&gt;", "2031-01-01 00:00:00Z",
	}, navLinks...) {
		if !strings.Contains(body, w) {
			t.Errorf("GET /domains lacks %q", w)
		}
	}
	if strings.Contains(body, "<unusual rate>") {
		t.Error("GET /domains did not escape a pause reason")
	}
}

func TestPagesReports(t *testing.T) {
	rdb := redistest.DB(t)
	st := pagesStack(t, rdb, policy.Config{})
	h := st.Server.routes()
	if code, body, _ := get(t, h, "/reports"); code != http.StatusOK || !strings.Contains(body, "no report stored yet") {
		t.Fatalf("GET /reports before any = %d %q", code, body)
	}
	recordMonth(t, rdb, "pages", 2026, time.January)
	reps := st.Server.reports()
	reps.Now = func() time.Time { return time.Date(2026, 2, 1, 3, 0, 0, 0, time.UTC) }
	if _, err := reps.Build(context.Background(), report.Month{Year: 2026, Month: time.January}); err != nil {
		t.Fatal(err)
	}

	code, body, _ := get(t, h, "/reports")
	if code != http.StatusOK {
		t.Fatalf("GET /reports = %d", code)
	}
	for _, w := range append([]string{`href="/reports/2026-01"`, `href="/reports/2026-01.json"`}, navLinks...) {
		if !strings.Contains(body, w) {
			t.Errorf("GET /reports lacks %q", w)
		}
	}
	code, body, hdr := get(t, h, "/reports/2026-01")
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !strings.Contains(body, "2026-01") {
		t.Errorf("GET /reports/2026-01 = %d %q", code, hdr.Get("Content-Type"))
	}
	for _, w := range navLinks {
		if !strings.Contains(body, w) {
			t.Errorf("GET /reports/2026-01 lacks the navigation link %q", w)
		}
	}
	code, body, _ = get(t, h, "/reports/2026-01.json")
	var rep report.Report
	if code != http.StatusOK || json.Unmarshal([]byte(body), &rep) != nil || rep.Month != "2026-01" {
		t.Errorf("GET /reports/2026-01.json = %d, month %q", code, rep.Month)
	}
	for _, p := range []string{"/reports/2026-02", "/reports/2026-02.json", "/reports/x", "/reports/2026-01.html", "/reports/..%2fx"} {
		if code, _, _ := get(t, h, p); code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, code)
		}
	}
}
