package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy/redistest"
	"github.com/bounceloop/bounceloop/queue"
)

// ingestResult is "ingest --json"'s summary.
type ingestResult struct {
	Events     int
	Classes    map[string]int
	Suppressed int
	Ignored    int
	Skipped    []struct{ Location, Reason string }
}

// ingestSetup returns a config file on a Redis database of its own and
// the suppression list there.
func ingestSetup(t *testing.T) (string, *feedback.Suppressions, func(time.Time, string) int) {
	t.Helper()
	rdb := redistest.DB(t)
	opt := rdb.Options()
	cfg := filepath.Join(t.TempDir(), "config.toml")
	writeFile(t, cfg, fmt.Sprintf("[redis]\naddrs = [%q]\ndb = %d\nprefix = \"ing\"\n", opt.Addr, opt.DB))
	keys := feedback.Keys{Prefix: "ing"}
	count := func(at time.Time, field string) int {
		n, _ := rdb.HGet(context.Background(), keys.Counts(at), field).Int()
		return n
	}
	return cfg, feedback.NewSuppressions(rdb, keys), count
}

func TestIngestCommand(t *testing.T) {
	dir := t.TempDir()
	ndjson := filepath.Join(dir, "events.ndjson")
	writeFile(t, ndjson, `{"time":"2018-05-17T08:03:11Z","recipient":"Jan.Novak@Azet.SK","code":550,"enhanced":"5.1.1","text":"550 5.1.1 User unknown"}
{"time":"2018-05-17T08:03:12Z","recipient":"jana@centrum.sk","code":554,"enhanced":"5.7.1","text":"554 5.7.1 Message rejected as spam"}
not json
{"time":"2018-05-17T08:03:13Z","recipient":"big@gmail.com","code":552,"enhanced":"5.3.4","text":"552 5.3.4 Your message exceeded Google's message size limits."}
`)
	maillog := filepath.Join(dir, "maillog")
	writeFile(t, maillog, `May 17 08:03:11 mail postfix/qmgr[880]: 3F2A11C0412: from=<news@example.com>, size=24012, nrcpt=2 (queue active)
May 17 08:03:11 mail postfix/smtp[4242]: 3F2A11C0412: to=<ivo@azet.sk>, relay=mx.azet.sk[192.0.2.1]:25, delay=1.2, delays=0.1/0/0.6/0.5, dsn=5.1.1, status=bounced (host mx.azet.sk[192.0.2.1] said: 550 5.1.1 <ivo@azet.sk>: Recipient address rejected: User unknown (in reply to RCPT TO command))
May 17 08:03:12 mail postfix/smtp[4243]: 3F2A11C0412: to=<petra@gmail.com>, relay=gmail-smtp-in.l.google.com[192.0.2.2]:25, delay=2.5, delays=0.1/0/0.9/1.5, dsn=2.0.0, status=sent (250 2.0.0 OK - gsmtp)
`)
	mbox := filepath.Join(dir, "bounces.mbox")
	dsn, err := os.ReadFile("../../bounces/testdata/messages/dsn-postfix-two.eml")
	if err != nil {
		t.Fatal(err)
	}
	arf, err := os.ReadFile("../../bounces/testdata/messages/arf-abuse.eml")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, mbox, "From MAILER-DAEMON Thu May 17 08:03:11 2018\n"+string(dsn)+"\nFrom fbl@example.net Thu May 17 09:00:00 2018\n"+string(arf))
	export := "../../bounces/testdata/export/campaign-responses-2018Q2.csv"
	messages := "../../bounces/testdata/messages"
	at := time.Date(2018, 5, 17, 8, 0, 0, 0, time.UTC)

	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		want       ingestResult // Classes: only the listed ones are checked
		suppressed []string
		notSupp    []string
		skippedAt  []string // substrings of the skipped locations
		counted    string   // a counter field at 2018-05-17 08h
	}{
		{name: "ndjson with a bad line", args: []string{ndjson}, wantCode: exitSkipped,
			want:       ingestResult{Events: 3, Suppressed: 1, Classes: map[string]int{"invalid_recipient": 1, "spam_blocked": 1, "message_too_large": 1}},
			suppressed: []string{"jan.novak@azet.sk"}, notSupp: []string{"jana@centrum.sk"}, skippedAt: []string{"events.ndjson:3"}, counted: "550|azet.sk"},
		{name: "postfix log", args: []string{"--year", "2018", maillog}, wantCode: exitOK,
			want:       ingestResult{Events: 2, Suppressed: 1, Classes: map[string]int{"invalid_recipient": 1, "delivered": 1}},
			suppressed: []string{"ivo@azet.sk"}, notSupp: []string{"petra@gmail.com"}, counted: "250|gmail.com"},
		{name: "mbox of a dsn and a complaint", args: []string{mbox}, wantCode: exitOK,
			want:       ingestResult{Events: 3, Suppressed: 2, Classes: map[string]int{"complaint": 1, "invalid_recipient": 1, "mailbox_full": 1}},
			suppressed: []string{"jan@azet.sk", "jana@centrum.sk"}, notSupp: []string{"eva@gmail.com"}},
		{name: "eml folder with an auto-reply and a non-bounce", args: []string{messages}, wantCode: exitSkipped,
			want:       ingestResult{Events: 5, Suppressed: 3, Ignored: 1},
			suppressed: []string{"jan@azet.sk", "jana@centrum.sk", "petr@example.cz"}, notSupp: []string{"petra@seznam.cz", "eva@gmail.com"},
			skippedAt: []string{"not-bounce.eml"}},
		{name: "message on stdin", args: []string{"-"}, stdin: string(dsn), wantCode: exitOK,
			want: ingestResult{Events: 2, Suppressed: 1}, suppressed: []string{"jan@azet.sk"}, counted: "550|azet.sk"},
		{name: "ndjson on stdin", args: []string{"-"}, stdin: `{"time":"2018-05-17T08:03:11Z","recipient":"stdin@azet.sk","code":550,"enhanced":"5.1.1","text":"550 5.1.1 no such user"}` + "\n",
			wantCode: exitOK, want: ingestResult{Events: 1, Suppressed: 1}, suppressed: []string{"stdin@azet.sk"}},
		{name: "forced format", args: []string{"--input-format", "ndjson", maillog}, wantCode: exitSkipped,
			want: ingestResult{Events: 0}, skippedAt: []string{"maillog:1", "maillog:2", "maillog:3"}},
		{name: "the export is refused", args: []string{export}, wantCode: exitSkipped,
			want: ingestResult{Events: 0}, skippedAt: []string{"campaign-responses-2018Q2.csv"}},
		{name: "missing file", args: []string{filepath.Join(dir, "nope"), ndjson}, wantCode: exitSkipped,
			want: ingestResult{Events: 3, Suppressed: 1}, skippedAt: []string{"nope", "events.ndjson:3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, sup, count := ingestSetup(t)
			args := append([]string{"ingest", "--config", cfg, "--json"}, tt.args...)
			out, errs, code := runCmd(t, tt.stdin, args...)
			if code != tt.wantCode {
				t.Errorf("ingest %v = %d, want %d; stderr %s", tt.args, code, tt.wantCode, errs)
			}
			var got ingestResult
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("ingest --json: %v: %q", err, out)
			}
			if got.Events != tt.want.Events || got.Suppressed != tt.want.Suppressed || got.Ignored != tt.want.Ignored {
				t.Errorf("ingest %v = %+v, want events %d, suppressed %d, ignored %d", tt.args, got, tt.want.Events, tt.want.Suppressed, tt.want.Ignored)
			}
			for c, n := range tt.want.Classes {
				if got.Classes[c] != n {
					t.Errorf("ingest %v classes = %v, want %s %d", tt.args, got.Classes, c, n)
				}
			}
			if len(got.Skipped) != len(tt.skippedAt) {
				t.Errorf("ingest %v skipped = %+v, want %d at %v", tt.args, got.Skipped, len(tt.skippedAt), tt.skippedAt)
			}
			for i, s := range got.Skipped {
				if i < len(tt.skippedAt) && (!strings.Contains(s.Location, tt.skippedAt[i]) || s.Reason == "") {
					t.Errorf("ingest %v skipped[%d] = %+v, want at %q with a reason", tt.args, i, s, tt.skippedAt[i])
				}
			}
			ctx := context.Background()
			for _, a := range tt.suppressed {
				if _, ok, err := sup.Get(ctx, a); err != nil || !ok {
					t.Errorf("after ingest %v: %s suppressed = %v (%v), want true", tt.args, a, ok, err)
				}
			}
			for _, a := range tt.notSupp {
				if _, ok, _ := sup.Get(ctx, a); ok {
					t.Errorf("after ingest %v: %s suppressed, want not", tt.args, a)
				}
			}
			if tt.counted != "" && count(at, tt.counted) < 1 {
				t.Errorf("after ingest %v: counter %s not in Redis (not flushed?)", tt.args, tt.counted)
			}
			if strings.Contains(errs, "@") {
				t.Errorf("ingest %v logged an address: %s", tt.args, errs)
			}
		})
	}
}

func TestIngestCommandText(t *testing.T) {
	cfg, _, _ := ingestSetup(t)
	out, errs, code := runCmd(t, "", "ingest", "--config", cfg, "../../bounces/testdata/messages")
	if code != exitSkipped {
		t.Errorf("ingest = %d, want %d (%s)", code, exitSkipped, errs)
	}
	for _, want := range []string{"events 5, suppressed 3, ignored 1, skipped 1", "by class: invalid_recipient 2, mailbox_full 2, complaint 1", "skipped ../../bounces/testdata/messages/not-bounce.eml: not a bounce message"} {
		if !strings.Contains(out, want) {
			t.Errorf("ingest output lacks %q:\n%s", want, out)
		}
	}
}

func TestIngestCommandUsage(t *testing.T) {
	noRedis := filepath.Join(t.TempDir(), "config.toml")
	writeFile(t, noRedis, "[queue]\nfrom = \"news@shop.example\"\n")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"help", []string{"ingest", "--help"}, exitOK, "Usage: bounceloop ingest"},
		{"no path", []string{"ingest", "--config", noRedis}, exitUsage, "no PATH"},
		{"bad format", []string{"ingest", "--input-format", "csv", "x"}, exitUsage, "--input-format"},
		{"bad zone", []string{"ingest", "--tz", "Mars/Olympus", "x"}, exitUsage, "--tz"},
		{"no redis in the config", []string{"ingest", "--config", noRedis, "x.ndjson"}, exitUsage, "[redis] addrs is empty"},
		{"no config at all", []string{"ingest", "x.ndjson"}, exitUsage, "[redis] addrs is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("BOUNCELOOP_CONFIG", "")
			_, errs, code := runCmd(t, "", tt.args...)
			if code != tt.wantCode || !strings.Contains(errs, tt.wantErr) {
				t.Errorf("%v = %d %q, want %d and %q", tt.args, code, errs, tt.wantCode, tt.wantErr)
			}
		})
	}
}

// TestIngestLateBounces ingests the fixtures of testdata/late (a DSN 552
// 5.3.4, a DSN 550 5.1.1, an ARF complaint with the recipient redacted)
// and testdata/late-unmatched.ndjson (events of messages without a sent
// record) twice: the first run
// matches the three messages to their sent records, resends the too-large
// one small, suppresses the others; the second run finds only duplicates.
func TestIngestLateBounces(t *testing.T) {
	rdb := redistest.DB(t)
	opt := rdb.Options()
	cfg := filepath.Join(t.TempDir(), "config.toml")
	writeFile(t, cfg, fmt.Sprintf("[redis]\naddrs = [%q]\ndb = %d\nprefix = \"late\"\n", opt.Addr, opt.DB))
	keys := feedback.Keys{Prefix: "late"}
	sup := feedback.NewSuppressions(rdb, keys)
	ctx := context.Background()
	enq := time.Date(2018, 5, 17, 7, 0, 0, 0, time.UTC)
	for _, p := range []queue.SendPayload{
		{Campaign: "may", ID: "late-big@shop.example", From: "news@shop.example", To: "big@gmail.com", Domain: "gmail.com", Template: "newsletter", Enqueued: enq},
		{Campaign: "may", ID: "late-gone@shop.example", From: "news@shop.example", To: "gone@azet.sk", Domain: "azet.sk", Template: "newsletter", Enqueued: enq},
		{Campaign: "may", ID: "late-arf@shop.example", From: "news@shop.example", To: "jana@centrum.sk", Domain: "centrum.sk", Template: "notice", Enqueued: enq},
	} {
		rec := feedback.SentRecord{Campaign: p.Campaign, Recipient: p.To, Domain: p.Domain, Template: p.Template, Sent: enq}
		if p.Template == "newsletter" {
			b, _ := json.Marshal(p)
			rec.Payload = b
		}
		if err := sup.SentRecords().Keep(ctx, p.ID, rec, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	type summary struct {
		Events     int
		Classes    map[string]int
		Matched    int
		Unmatched  int
		Duplicates int
		Suppressed int
		Resent     int
		NotResent  map[string]int `json:"not_resent"`
	}
	runs := []summary{
		{Events: 5, Classes: map[string]int{"message_too_large": 2, "invalid_recipient": 2, "complaint": 1},
			Matched: 3, Unmatched: 2, Suppressed: 3, Resent: 1, NotResent: map[string]int{queue.NotResentUnmatched: 1}},
		{Events: 0, Classes: map[string]int{}, Duplicates: 5},
	}
	for i, want := range runs {
		out, errs, code := runCmd(t, "", "ingest", "--config", cfg, "--json", "testdata/late", "testdata/late-unmatched.ndjson")
		if code != exitOK {
			t.Fatalf("ingest run %d = %d; stderr %s", i+1, code, errs)
		}
		var got summary
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("ingest --json: %v: %q", err, out)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ingest run %d = %+v, want %+v", i+1, got, want)
		}
	}
	for _, a := range []string{"gone@azet.sk", "jana@centrum.sk", "stranger@atlas.sk"} {
		if _, ok, err := sup.Get(ctx, a); !ok || err != nil {
			t.Errorf("%s suppressed = %v (%v), want true", a, ok, err)
		}
	}
	at := time.Date(2018, 5, 17, 8, 0, 0, 0, time.UTC)
	for f, n := range map[string]int{"552|gmail.com": 1, "550|azet.sk": 1, "552|seznam.cz": 1, "550|atlas.sk": 1} {
		if got, _ := rdb.HGet(ctx, keys.Counts(at), f).Int(); got != n {
			t.Errorf("counter %s = %d after two runs, want %d", f, got, n)
		}
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	ti, err := insp.GetTaskInfo("google", "small.late-big@shop.example")
	if err != nil {
		t.Fatalf("the small resend: %v", err)
	}
	var p queue.SendPayload
	if err := json.Unmarshal(ti.Payload, &p); err != nil || !p.Small || p.ResentOf != "late-big@shop.example" || p.To != "big@gmail.com" {
		t.Errorf("the small resend = %+v (%v), want the small variant to big@gmail.com resending late-big@shop.example", p, err)
	}
	if keys, _ := rdb.Keys(ctx, "asynq:{*}:t:small.*").Result(); len(keys) != 1 {
		t.Errorf("small resends in asynq = %v, want one", keys)
	}

	text, _, _ := runCmd(t, "", "ingest", "--config", cfg, "testdata/late", "testdata/late-unmatched.ndjson")
	if want := "matched to a sent message 0, unmatched 0, duplicates 5 (not applied again), resent small 0"; !strings.Contains(text, want) {
		t.Errorf("ingest output lacks %q:\n%s", want, text)
	}
}
