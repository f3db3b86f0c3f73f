package feedback

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bounceloop/bounceloop/feedback/report"
	"github.com/bounceloop/bounceloop/policy/redistest"
)

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		name string
		head string
		want Format
		ok   bool
	}{
		{"ndjson", `{"time":"2018-05-17T08:03:11Z","code":250}` + "\n", FormatNDJSON, true},
		{"ndjson after blank lines", "\n\n  {\"time\":1,\"code\":250}\n", FormatNDJSON, true},
		{"export", "timestamp,count(campaign) 200 (gmail.com)\n1525125600,3\n", FormatExport, true},
		{"export with BOM", "\xef\xbb\xbftimestamp,200 (gmail.com) count(campaign)\n", FormatExport, true},
		{"postfix syslog", "Dec 31 23:59:58 mail postfix/smtpd[1201]: connect from x\n", FormatPostfix, true},
		{"postfix after other lines", "May  8 10:00:00 mail dovecot: imap-login\nMay  8 10:00:01 mail postfix/smtp[5]: ABC: to=<a@b.c>, status=sent (250 ok)\n", FormatPostfix, true},
		{"postfix rfc3339", "2018-05-17T08:03:11.123456+02:00 mail postfix/smtp[9]: ABC: to=<a@b.c>, status=sent (250 ok)\n", FormatPostfix, true},
		{"plain text", "hello world\n", FormatAuto, false},
		{"empty", "", FormatAuto, false},
		{"syslog without postfix", "May  8 10:00:00 mail sshd[1]: Accepted\n", FormatAuto, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := DetectFormat([]byte(tt.head))
			if got != tt.want || ok != tt.ok {
				t.Errorf("DetectFormat(%q) = %q, %v, want %q, %v", tt.head, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in      string
		want    Format
		wantErr bool
	}{
		{"auto", FormatAuto, false},
		{"", FormatAuto, false},
		{"export", FormatExport, false},
		{"ndjson", FormatNDJSON, false},
		{"postfix", FormatPostfix, false},
		{"csv", FormatAuto, true},
	}
	for _, tt := range tests {
		got, err := ParseFormat(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseFormat(%q) = %q, %v, want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestReadSourceFiles(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		format   Format
		month    string
		wantErr  string
		wantSkip bool
	}{
		{"export detected", "../bounces/testdata/export/campaign-responses-2018Q2.csv", FormatAuto, "2018-05", "", false},
		{"ndjson detected", "../bounces/testdata/ndjson/events.ndjson", FormatAuto, "2018-05", "", true},
		{"postfix detected", "../bounces/testdata/postfix/maillog", FormatAuto, "", "", true},
		{"export forced", "../bounces/testdata/export/campaign-responses-2018Q2.csv", FormatExport, "2018-05", "", false},
		{"wrong format forced", "../bounces/testdata/ndjson/events.ndjson", FormatExport, "", "header", false},
		{"not a source", "../go.mod", FormatAuto, "", "cannot tell the format", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Open(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			c := report.NewCounts(time.UTC)
			err = ReadSource(context.Background(), tt.file, f, tt.format, c, dec2018)
			if (err != nil) != (tt.wantErr != "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ReadSource(%s) = %v, want error %q", tt.file, err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.file) {
					t.Errorf("ReadSource error %q does not name the file", err)
				}
				return
			}
			if got := c.SkippedTotal() > 0; got != tt.wantSkip {
				t.Errorf("ReadSource(%s) skipped %d records, want skips: %v", tt.file, c.SkippedTotal(), tt.wantSkip)
			}
			if tt.month == "" {
				return
			}
			m, _ := report.ParseMonth(tt.month)
			r, err := report.Analyze(c, report.Options{Month: m, Now: time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)})
			if err != nil {
				t.Fatalf("Analyze after ReadSource(%s): %v", tt.file, err)
			}
			if r.Totals.Attempts == 0 {
				t.Errorf("ReadSource(%s) gave a report with no attempts", tt.file)
			}
		})
	}
}

// dec2018 reads a Postfix log's first line in 2018 whatever its month.
var dec2018 = report.Month{Year: 2018, Month: time.December}

// TestReadSourcePostfixNewYear reads a log that begins on 31 December and
// goes on into January for reports of several months: the log's first
// line is taken in the report month's year, or the year before when its
// month comes later, so that January is reported from a log rotated in
// December.
func TestReadSourcePostfixNewYear(t *testing.T) {
	const log = "Dec 31 23:59:59 mail postfix/smtp[1]: 3F2A11C0411: to=<a@azet.sk>, relay=mx.azet.sk[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=5.1.1, status=bounced (host mx.azet.sk[192.0.2.1] said: 550 5.1.1 User unknown (in reply to RCPT TO command))\n" +
		"Jan  1 00:00:01 mail postfix/smtp[2]: 3F2A11C0412: to=<b@azet.sk>, relay=mx.azet.sk[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n" +
		"Jan  1 00:00:02 mail postfix/smtp[3]: 3F2A11C0413: to=<c@azet.sk>, relay=mx.azet.sk[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n"
	tests := []struct {
		month        string
		attempts     int64 // in the month
		prevAttempts int64 // in the month before; 0: none
	}{
		{"2019-01", 2, 1},
		{"2018-12", 1, 0},
		{"2019-02", 0, 2}, // a log cannot hold lines after the month it is read for: it began on 31 Dec 2018
	}
	for _, tt := range tests {
		t.Run(tt.month, func(t *testing.T) {
			m, err := report.ParseMonth(tt.month)
			if err != nil {
				t.Fatal(err)
			}
			c := report.NewCounts(time.UTC)
			if err := ReadSource(context.Background(), "maillog", strings.NewReader(log), FormatAuto, c, m); err != nil {
				t.Fatalf("ReadSource = %v", err)
			}
			r, err := report.Analyze(c, report.Options{Month: m, Now: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)})
			if tt.attempts == 0 {
				if err == nil {
					t.Fatalf("Analyze(%s) = %d attempts, want no data", tt.month, r.Totals.Attempts)
				}
				return
			}
			if err != nil {
				t.Fatalf("Analyze(%s): %v", tt.month, err)
			}
			if r.Totals.Attempts != tt.attempts {
				t.Errorf("%s attempts = %d, want %d", tt.month, r.Totals.Attempts, tt.attempts)
			}
			var prev int64
			if r.Totals.Previous != nil {
				prev = r.Totals.Previous.Attempts
			}
			if prev != tt.prevAttempts {
				t.Errorf("%s previous month's attempts = %d, want %d", tt.month, prev, tt.prevAttempts)
			}
		})
	}
}

// TestReadRedisCounts records answers with a Recorder into a real Redis,
// reads them back as a report source and checks the month's totals.
func TestReadRedisCounts(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	ctx := context.Background()
	keys := Keys{Prefix: prefix}
	rec := NewRecorder(rdb, keys)
	may := time.Date(2018, 5, 8, 9, 30, 0, 0, time.UTC)
	rec.Add(may, "centrum.sk", 200, 900)
	rec.Add(may, "centrum.sk", 554, 100)
	rec.Add(may.AddDate(0, -1, 0), "centrum.sk", 200, 50)                        // April: the previous month
	rec.Add(may.AddDate(0, 1, 0), "centrum.sk", 554, 7)                          // June: outside
	rec.Add(time.Date(2018, 4, 30, 23, 30, 0, 0, time.UTC), "gmail.com", 200, 3) // May 1 in Bratislava
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, keys.Counts(may), "garbage", "1")

	tests := []struct {
		tz       string
		attempts int64
	}{
		{"UTC", 1000},
		{"Europe/Bratislava", 1003},
	}
	for _, tt := range tests {
		t.Run(tt.tz, func(t *testing.T) {
			loc, err := time.LoadLocation(tt.tz)
			if err != nil {
				t.Fatal(err)
			}
			c := report.NewCounts(loc)
			from := time.Date(2018, 4, 1, 0, 0, 0, 0, loc)
			to := time.Date(2018, 6, 1, 0, 0, 0, 0, loc)
			if err := ReadRedisCounts(ctx, rdb, keys, from, to, c); err != nil {
				t.Fatalf("ReadRedisCounts: %v", err)
			}
			if c.SkippedTotal() != 1 {
				t.Errorf("SkippedTotal() = %d, want the 1 garbage field", c.SkippedTotal())
			}
			r, err := report.Analyze(c, report.Options{Month: report.Month{Year: 2018, Month: time.May}, Location: loc, Now: time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)})
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			if r.Totals.Attempts != tt.attempts || r.Totals.Failed != 100 {
				t.Errorf("May in %s: attempts %d failed %d, want %d and 100", tt.tz, r.Totals.Attempts, r.Totals.Failed, tt.attempts)
			}
		})
	}

	broken := redis.NewClient(&redis.Options{Addr: redistest.Addr(t)})
	_ = broken.Close()
	if err := ReadRedisCounts(ctx, broken, keys, may, may.Add(time.Hour), report.NewCounts(time.UTC)); err == nil {
		t.Error("ReadRedisCounts on a closed client: want an error")
	}
}
