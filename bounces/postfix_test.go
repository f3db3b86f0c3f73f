package bounces

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestPostfixReaderTestdata(t *testing.T) {
	f, err := os.Open("testdata/postfix/maillog")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cest := time.FixedZone("CEST", 2*3600)
	r := NewPostfixReader(f, "maillog", 2018, cest)
	var qids, statuses []string
	events, skipped := readAllEvents(t, func() (Event, error) {
		ev, err := r.Next()
		if err == nil {
			qids = append(qids, r.QueueID())
			statuses = append(statuses, r.Status())
		}
		return ev, err
	})
	at := func(s string) time.Time { // local time of the log, in 2018 or 2019
		t, err := time.ParseInLocation("2006 Jan _2 15:04:05", s, cest)
		if err != nil {
			panic(err)
		}
		return t.UTC()
	}
	want := []struct {
		ev     Event
		qid    string
		status string
	}{
		{Event{Time: at("2018 Dec 31 23:59:59"), Recipient: "jan@azet.sk", Domain: "azet.sk", Code: 550, Enhanced: "5.1.1", Source: SourceLog,
			Text: "host mx.azet.sk[91.235.53.15] said: 550 5.1.1 <jan@azet.sk>: Recipient address rejected: User unknown (in reply to RCPT TO command)"}, "3F2A11C0412", "bounced"},
		{Event{Time: at("2019 Jan  1 00:00:01"), Recipient: "petra@gmail.com", Domain: "gmail.com", Code: 250, Enhanced: "2.0.0", Source: SourceLog,
			Text: "250 2.0.0 OK  1526544191 x12si1234567wrb.301 - gsmtp"}, "3F2A11C0412", "sent"},
		{Event{Time: at("2019 Jan  1 00:00:02"), Recipient: "anna@yahoo.com", Domain: "yahoo.com", Code: 421, Enhanced: "4.7.0", Source: SourceLog,
			Text: "host mta7.am0.yahoodns.net[67.195.204.72] said: 421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes (in reply to MAIL FROM command)"}, "3F2A11C0412", "deferred"},
		{Event{Time: at("2019 Jan  1 00:00:03"), Recipient: "eva@centrum.sk", Domain: "centrum.sk", Code: 450, Enhanced: "4.4.1", Source: SourceLog,
			Text: "connect to mx1.centrum.sk[46.255.225.11]:25: Connection timed out"}, "4B7E2C1D0A1", "deferred"},
		{Event{Time: at("2019 Jan  1 00:00:04"), Recipient: "ivan@nonexistent.example", Domain: "nonexistent.example", Code: 550, Enhanced: "5.4.4", Source: SourceLog,
			Text: "Host or domain name not found. Name service error for name=nonexistent.example type=AAAA: Host not found"}, "5C8F3D2E0B2", "bounced"},
		{Event{Time: at("2019 Jan  1 00:00:06"), Recipient: "root@mail.example.com", Domain: "mail.example.com", Code: 250, Enhanced: "2.0.0", Source: SourceLog,
			Text: "delivered to mailbox"}, "7EAB5F402D4", "sent"},
		{Event{Time: at("2019 Jan  1 00:00:07"), Recipient: "karol@zoznam.sk", Domain: "zoznam.sk", Code: 552, Enhanced: "5.2.2", Source: SourceLog,
			Text: "host mx.zoznam.sk[213.81.185.19] said: 552-5.2.2 The email account that you tried to reach is over quota. 552 5.2.2 Please direct the recipient to https://support.example/quota (in reply to RCPT TO command)"}, "8FBC6A513E5", "bounced"},
		{Event{Time: at("2019 Jan  1 00:00:08"), Recipient: "marek@hotmail.com", Domain: "hotmail.com", Code: 554, Enhanced: "5.7.1", Source: SourceLog,
			Text: "host hotmail-com.olc.protection.outlook.com[104.47.58.33] refused to talk to me: 554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using Spamhaus"}, "9ACD7B624F6", "bounced"},
		{Event{Time: at("2019 Jan  1 00:00:09"), Recipient: "zuzana@icloud.com", Domain: "icloud.com", Code: 550, Enhanced: "4.7.1", Source: SourceLog,
			Text: "host mx01.mail.icloud.com[17.57.154.6] said: 550 5.7.1 Mail from IP 192.0.2.1 was rejected due to listing in Spamhaus SBL (in reply to end of DATA command)"}, "AB1E8C73507", "softbounce"},
		// 00:00:15 "said: Go away" has neither a code nor a dsn=: skipped.
		{Event{Time: mustTime("2019-01-01T00:00:17.123456Z"), Recipient: "Mária@Seznam.CZ", Domain: "seznam.cz", Code: 250, Enhanced: "2.0.0", Source: SourceLog,
			Text: "250 2.0.0 Message queued as 0fd2a1"}, "1A7E42D9B6D", "sent"},
		{Event{Time: mustTime("2019-01-01T00:00:18Z"), Recipient: "jan@azet.sk", Domain: "azet.sk", Code: 554, Enhanced: "5.7.1", Source: SourceLog,
			Text: "host mx.azet.sk[91.235.53.15] said: 554 5.7.1 Message rejected as spam (in reply to end of DATA command)"}, "2B8F53EAC7E", "bounced"},
		{Event{Time: at("2019 Jan  1 00:00:19"), Recipient: "pavol@centrum.sk", Domain: "centrum.sk", Code: 421, Enhanced: "4.7.0", Source: SourceLog,
			Text: "host mx1.centrum.sk[46.255.225.11] said: 421 4.7.0 Too many connections from your IP (in reply to end of DATA command)"}, "3C9064FBD8F", "deferred"},
	}
	if len(events) != len(want) {
		for _, ev := range events {
			t.Logf("%+v", ev)
		}
		t.Fatalf("read %d events, want %d (skipped %v)", len(events), len(want), skipped)
	}
	for i, w := range want {
		if events[i] != w.ev || qids[i] != w.qid || statuses[i] != w.status {
			t.Errorf("event %d = %+v (%s, %s), want %+v (%s, %s)", i, events[i], qids[i], statuses[i], w.ev, w.qid, w.status)
		}
	}
	wantSkipped := []struct {
		line   int
		reason string
	}{
		{18, "status: unknown"},
		{19, `no "to=<...>" recipient`},
		{20, "time: bad syslog timestamp"},
		{21, "no reply code in the answer and no dsn="},
	}
	if len(skipped) != len(wantSkipped) {
		t.Fatalf("skipped %v, want %d records", skipped, len(wantSkipped))
	}
	for i, w := range wantSkipped {
		if re := skipped[i]; re.File != "maillog" || re.Line != w.line || !strings.HasPrefix(re.Reason, w.reason) {
			t.Errorf("skipped[%d] = %v, want line %d with reason %q", i, re, w.line, w.reason)
		}
	}
}

func TestPostfixLine(t *testing.T) {
	const rest = " mail postfix/smtp[1]: ABCDEF12345: to=<a@b.example>, relay=x[1.2.3.4]:25, delay=1, delays=1/0/0/0, dsn=5.1.1, status=bounced (host x[1.2.3.4] said: 550 5.1.1 unknown (in reply to RCPT TO command))"
	tests := []struct {
		name     string
		line     string
		wantTime string // RFC 3339; "" with wantErr "" means not a record
		wantCode int
		wantErr  string
	}{
		{name: "traditional", line: "May 17 08:03:11" + rest, wantTime: "2018-05-17T08:03:11Z", wantCode: 550},
		{name: "padded day", line: "May  7 08:03:11" + rest, wantTime: "2018-05-07T08:03:11Z", wantCode: 550},
		{name: "zero-padded day", line: "May 07 08:03:11" + rest, wantTime: "2018-05-07T08:03:11Z", wantCode: 550},
		{name: "rfc3339", line: "2018-05-17T08:03:11.5+02:00" + rest, wantTime: "2018-05-17T06:03:11.5Z", wantCode: 550},
		{name: "rfc3339 no colon", line: "2018-05-17T08:03:11+0200" + rest, wantTime: "2018-05-17T06:03:11Z", wantCode: 550},
		{name: "leap day", line: "Feb 29 08:03:11" + rest, wantErr: "time: no such day"},
		{name: "bad hour", line: "May 17 25:03:11" + rest, wantErr: "time: bad syslog"},
		{name: "bad rfc3339", line: "2018-05-17X08:03:11Z" + rest, wantErr: "time: bad RFC 3339"},
		{name: "dsn only", line: "May 17 08:03:11 mail postfix/smtp[1]: ABCDEF12345: to=<a@b.example>, relay=none, dsn=4.4.1, status=deferred (connect to x: Connection refused)", wantTime: "2018-05-17T08:03:11Z", wantCode: 450},
		{name: "dsn 2 no text", line: "May 17 08:03:11 mail postfix/virtual[1]: ABCDEF12345: to=<a@b.example>, relay=virtual, dsn=2.0.0, status=sent", wantTime: "2018-05-17T08:03:11Z", wantCode: 250},
		{name: "enhanced from text", line: "May 17 08:03:11 mail postfix/smtp[1]: ABCDEF12345: to=<a@b.example>, relay=x, status=bounced (said: no code 5.1.1 here)", wantTime: "2018-05-17T08:03:11Z", wantCode: 550},
		{name: "bad dsn", line: "May 17 08:03:11 mail postfix/smtp[1]: ABCDEF12345: to=<a@b.example>, dsn=9.9.9, status=bounced (x)", wantErr: "dsn: bad status code"},
		{name: "empty recipient", line: "May 17 08:03:11 mail postfix/smtp[1]: ABCDEF12345: to=<>, dsn=5.1.1, status=bounced (x)", wantErr: "empty recipient"},
		{name: "recipient without domain", line: "May 17 08:03:11 mail postfix/local[1]: ABCDEF12345: to=<root>, dsn=5.1.1, status=bounced (x)", wantErr: "recipient: "},
		{name: "qmgr", line: "May 17 08:03:11 mail postfix/qmgr[1]: ABCDEF12345: from=<a@b.example>, size=1, nrcpt=1 (queue active)"},
		{name: "expired", line: "May 17 08:03:11 mail postfix/qmgr[1]: ABCDEF12345: from=<a@b.example>, status=expired, returned to sender"},
		{name: "noqueue", line: "May 17 08:03:11 mail postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[1.2.3.4]: 554 5.7.1 status=x"},
		{name: "other program", line: "May 17 08:03:11 mail amavis[1]: (1-2) Passed CLEAN, status=ok"},
		{name: "garbage", line: "hello status=world"},
		{name: "broken postfix header", line: "garbage postfix/smtp status=sent", wantErr: "no syslog header"},
		{name: "probe", line: "May 17 08:03:11 mail postfix/smtp[1]: ABCDEF12345: to=<a@b.example>, dsn=2.1.5, status=deliverable (250 2.1.5 OK)"},
		{name: "multi instance", line: "May 17 08:03:11 mail postfix-out/smtp[1]: ABCDEF12345: to=<a@b.example>, dsn=2.0.0, status=sent (250 Ok)", wantTime: "2018-05-17T08:03:11Z", wantCode: 250},
		{name: "no pid", line: "May 17 08:03:11 mail postfix/smtp: ABCDEF12345: to=<a@b.example>, dsn=2.0.0, status=sent (250 Ok)", wantTime: "2018-05-17T08:03:11Z", wantCode: 250},
		{name: "long queue id", line: "May 17 08:03:11 mail postfix/smtp[1]: 4Gq8Hn0tQbz9sWq: to=<a@b.example>, dsn=2.0.0, status=sent (250 Ok)", wantTime: "2018-05-17T08:03:11Z", wantCode: 250},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewPostfixReader(strings.NewReader(tt.line+"\n"), "log", 2018, nil)
			events, skipped := readAllEvents(t, r.Next)
			switch {
			case tt.wantErr != "":
				if len(skipped) != 1 || !strings.HasPrefix(skipped[0].Reason, tt.wantErr) || len(events) != 0 {
					t.Fatalf("PostfixReader(%q) = %v, %v, want the error %q", tt.line, events, skipped, tt.wantErr)
				}
			case tt.wantTime == "":
				if len(skipped)+len(events) != 0 {
					t.Fatalf("PostfixReader(%q) = %v, %v, want nothing", tt.line, events, skipped)
				}
			default:
				if len(events) != 1 || len(skipped) != 0 {
					t.Fatalf("PostfixReader(%q) = %v, %v, want one event", tt.line, events, skipped)
				}
				if ev := events[0]; !ev.Time.Equal(mustTime(tt.wantTime)) || ev.Code != tt.wantCode || ev.Domain != "b.example" || ev.Source != SourceLog {
					t.Errorf("PostfixReader(%q) = %+v, want time %s, code %d", tt.line, ev, tt.wantTime, tt.wantCode)
				}
			}
		})
	}
}

func TestPostfixYearRollover(t *testing.T) {
	lines := []string{"Nov 30 23:00:00", "Dec 31 23:59:59", "Jan  1 00:00:00", "Dec 31 23:59:58", "Jan  1 00:00:01", "Mar  1 00:00:00", "Jul  1 00:00:00", "Oct  1 00:00:00", "Dec  1 00:00:00", "Jan  1 00:00:00", "Oct  1 00:00:00"}
	want := []string{"2017-11-30", "2017-12-31", "2018-01-01", "2017-12-31", "2018-01-01", "2018-03-01", "2018-07-01", "2018-10-01", "2018-12-01", "2019-01-01", "2018-10-01"}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + " mail postfix/smtp[1]: ABCDEF12345: to=<a@b.example>, dsn=2.0.0, status=sent (250 Ok)\n")
	}
	r := NewPostfixReader(strings.NewReader(b.String()), "log", 2017, time.UTC)
	events, skipped := readAllEvents(t, r.Next)
	if len(events) != len(want) || len(skipped) != 0 {
		t.Fatalf("read %d events, skipped %v, want %d events", len(events), skipped, len(want))
	}
	for i, ev := range events {
		if got := ev.Time.Format("2006-01-02"); got != want[i] {
			t.Errorf("line %q: date = %s, want %s", lines[i], got, want[i])
		}
	}
}

// TestPostfixLatestMonth checks the year of a log's first line with
// SetLatestMonth: the reader's year when the line's month is at most the
// latest month, the year before when it is later.
func TestPostfixLatestMonth(t *testing.T) {
	const line = "%s mail postfix/smtp[1]: 3F2A11C0412: to=<jan@azet.sk>, relay=mx.azet.sk[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n"
	tests := []struct {
		stamp  string
		latest time.Month
		want   string
	}{
		{"Dec 31 23:59:59", time.January, "2018-12-31T23:59:59Z"},
		{"Jan  1 00:00:01", time.January, "2019-01-01T00:00:01Z"},
		{"Dec 31 23:59:59", time.December, "2019-12-31T23:59:59Z"},
		{"Jun  1 00:00:00", time.May, "2018-06-01T00:00:00Z"},
		{"Dec 31 23:59:59", 0, "2019-12-31T23:59:59Z"},
	}
	for _, tt := range tests {
		r := NewPostfixReader(strings.NewReader(fmt.Sprintf(line, tt.stamp)), "maillog", 2019, time.UTC)
		r.SetLatestMonth(tt.latest)
		e, err := r.Next()
		if err != nil {
			t.Fatalf("%s latest %v: %v", tt.stamp, tt.latest, err)
		}
		if got := e.Time.Format(time.RFC3339); got != tt.want {
			t.Errorf("%s latest %v: time %s, want %s", tt.stamp, tt.latest, got, tt.want)
		}
	}
}
