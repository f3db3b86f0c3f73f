package bounces

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// readAllCounts runs the caller pattern over an ExportReader.
func readAllCounts(t testing.TB, x *ExportReader) ([]DailyCount, []*RecordError) {
	t.Helper()
	var counts []DailyCount
	var skipped []*RecordError
	for {
		c, err := x.Next()
		if err == io.EOF {
			break
		}
		var re *RecordError
		if errors.As(err, &re) {
			if c != (DailyCount{}) {
				t.Fatalf("Next() = %+v with error %v, want a zero count", c, err)
			}
			skipped = append(skipped, re)
			continue
		}
		if err != nil {
			t.Fatalf("Next() = %v, want no I/O error", err)
		}
		counts = append(counts, c)
	}
	return counts, skipped
}

func TestExportReaderCampaignData(t *testing.T) {
	f, err := os.Open("testdata/export/campaign-responses-2018Q2.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x, err := NewExportReader(f, "campaign-responses-2018Q2.csv")
	if err != nil {
		t.Fatal(err)
	}
	if got := x.Columns(); got != 52 {
		t.Errorf("Columns() = %d, want 52", got)
	}
	counts, skipped := readAllCounts(t, x)
	if len(skipped) != 0 {
		t.Fatalf("skipped %v, want none", skipped)
	}
	// The analysis' May is the export's days labelled in UTC: the buckets
	// start at 22:00 UTC of the previous day (CEST midnight), so May 1 to 31
	// of the analysis are the buckets starting 2018-05-01T22:00Z to
	// 2018-05-31T22:00Z, that is those in [2018-05-01T00:00Z, 2018-06-01T00:00Z).
	// (The local-day window [2018-04-30T22:00Z, 2018-05-31T22:00Z) does not
	// reproduce the analysis: 452 at gmail.com sums to 649 there.)
	from, to := time.Date(2018, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2018, 6, 1, 0, 0, 0, 0, time.UTC)
	type key struct {
		code   int
		domain string
	}
	may := map[key]int64{}
	days := map[time.Time]bool{}
	var total int64
	for _, c := range counts {
		if c.Count <= 0 || c.Start.Location() != time.UTC || c.Start.Hour() != 22 {
			t.Fatalf("count %+v: want a positive count in a bucket starting at 22:00 UTC", c)
		}
		total += c.Count
		if !c.Start.Before(from) && c.Start.Before(to) {
			may[key{c.Code, c.Domain}] += c.Count
			days[c.Start] = true
		}
	}
	if len(days) != 31 {
		t.Errorf("May has %d buckets, want 31", len(days))
	}
	for _, tt := range []struct {
		code   int
		domain string
		want   int64
	}{
		// The analysis' monthly totals of delivered mail, per domain.
		{200, "gmail.com", 1619446},
		{200, "azet.sk", 162889},
		{200, "yahoo.com", 57808},
		{200, "hotmail.com", 57267},
		{200, "seznam.cz", 33210},
		{200, "icloud.com", 6844},
		{200, "zoznam.sk", 7111},
		// Gmail's rate limiting.
		{452, "gmail.com", 684},
	} {
		if got := may[key{tt.code, tt.domain}]; got != tt.want {
			t.Errorf("May total of %d at %s = %d, want %d", tt.code, tt.domain, got, tt.want)
		}
	}
	if may[key{499, "(other)"}] == 0 {
		t.Errorf("May total of 499 at (other) = 0, want the catch-all domain kept")
	}
	for k := range may {
		if k.code == 499 && k.domain != "(other)" {
			t.Errorf("499 at %s, want 499 only at (other)", k.domain)
		}
	}
	if total <= 0 {
		t.Errorf("total = %d", total)
	}
}

func TestExportReaderBadInput(t *testing.T) {
	f, err := os.Open("testdata/export/bad.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x, err := NewExportReader(f, "bad.csv")
	if err != nil {
		t.Fatal(err)
	}
	counts, skipped := readAllCounts(t, x)
	d := func(unix int64, code int, domain string, n int64) DailyCount {
		return DailyCount{Start: time.Unix(unix, 0).UTC(), Code: code, Domain: domain, Count: n}
	}
	want := []DailyCount{
		d(1525212000, 200, "gmail.com", 10),
		d(1525212000, 452, "gmail.com", 2),
		d(1525298400, 452, "gmail.com", 3),
		d(1525298400, 499, "(other)", 1),
		d(1525471200, 499, "(other)", 4),
	}
	if len(counts) != len(want) {
		t.Fatalf("counts = %+v, want %+v", counts, want)
	}
	for i := range want {
		if counts[i] != want[i] {
			t.Errorf("count %d = %+v, want %+v", i, counts[i], want[i])
		}
	}
	wantSkipped := []struct {
		line   int
		reason string
	}{
		{1, `column 5 "count(campaign) 4x2 (yahoo.com)": no reply code`},
		{1, `column 6 "count(campaign) 550 ()": empty domain`},
		{4, `column "count(campaign) 200 (gmail.com)": "x" is not a count`},
		{5, "3 fields, the header has 6"},
		{6, `timestamp: "soon" is not UNIX seconds`},
		{7, `column "count(campaign) 200 (gmail.com)": "1,5" is not a count`},
	}
	if len(skipped) != len(wantSkipped) {
		t.Fatalf("skipped %v, want %d records", skipped, len(wantSkipped))
	}
	for i, w := range wantSkipped {
		if re := skipped[i]; re.File != "bad.csv" || re.Line != w.line || !strings.HasPrefix(re.Reason, w.reason) {
			t.Errorf("skipped[%d] = %v, want line %d with reason %q", i, re, w.line, w.reason)
		}
	}
}

func TestNewExportReaderErrors(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		wantErr string // substring; "" means success
	}{
		{name: "empty", input: "", wantErr: "empty export"},
		{name: "blank", input: "\n\n", wantErr: "empty export"},
		{name: "no timestamp", input: "time,200 (gmail.com)\n", wantErr: `no "timestamp" column`},
		{name: "two timestamps", input: "timestamp,200 (gmail.com),Timestamp\n", wantErr: `columns 1 and 3 are both "Timestamp"`},
		{name: "no count column", input: "timestamp,foo\n", wantErr: `no "<code> (<domain>)" column`},
		{name: "bad quote", input: "timestamp,\"200 (gmail.com)\n", wantErr: "header: bare"},
		{name: "undecorated", input: "timestamp,200 (gmail.com)\n"},
		{name: "suffix", input: "200 (Gmail.com)count(campaign),timestamp\n"},
		{name: "quoted with comma", input: "timestamp,\"count(campaign) 200 (gmail.com)\",\"a,\"\"b\"\"\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewExportReader(strings.NewReader(tt.input), "x.csv")
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("NewExportReader(%q) = %v, want %q", tt.input, err, tt.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "bounces: x.csv") {
				t.Errorf("NewExportReader(%q) = %v, want the bounces: prefix and the name", tt.input, err)
			}
		})
	}
}

func TestParseExportColumn(t *testing.T) {
	tests := []struct {
		name       string
		header     string
		wantCode   int
		wantDomain string
		wantErr    bool
	}{
		{name: "prefix", header: "count(campaign) 452 (gmail.com)", wantCode: 452, wantDomain: "gmail.com"},
		{name: "suffix", header: "452 (gmail.com) count(campaign)", wantCode: 452, wantDomain: "gmail.com"},
		{name: "no spaces", header: "count(campaign)452(gmail.com)", wantCode: 452, wantDomain: "gmail.com"},
		{name: "many spaces", header: "  COUNT(Campaign)   452   (  Gmail.COM  )  ", wantCode: 452, wantDomain: "gmail.com"},
		{name: "other", header: "count(campaign) 499 ((other))", wantCode: 499, wantDomain: "(other)"},
		{name: "idna", header: "200 (žilina.sk)", wantCode: 200, wantDomain: "xn--ilina-tib.sk"},
		{name: "605", header: "count(campaign) 605 (azet.sk)", wantCode: 605, wantDomain: "azet.sk"},
		{name: "no code", header: "count(campaign) (gmail.com)", wantErr: true},
		{name: "four digits", header: "4520 (gmail.com)", wantErr: true},
		{name: "leading zero", header: "052 (gmail.com)", wantErr: true},
		{name: "no parens", header: "452 gmail.com", wantErr: true},
		{name: "empty domain", header: "452 ( )", wantErr: true},
		{name: "bad domain", header: "452 (gmail com)", wantErr: true},
		{name: "empty", header: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, domain, reason := parseExportColumn(tt.header)
			if (reason != "") != tt.wantErr {
				t.Fatalf("parseExportColumn(%q) reason = %q, want error %v", tt.header, reason, tt.wantErr)
			}
			if code != tt.wantCode || domain != tt.wantDomain {
				t.Errorf("parseExportColumn(%q) = %d, %q, want %d, %q", tt.header, code, domain, tt.wantCode, tt.wantDomain)
			}
		})
	}
}

func TestSplitCSVLine(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    []string
		wantErr bool
	}{
		{name: "plain", line: "a,b,c", want: []string{"a", "b", "c"}},
		{name: "empty fields", line: ",,", want: []string{"", "", ""}},
		{name: "empty line", line: "", want: []string{""}},
		{name: "quoted", line: `"a,b","c""d",""`, want: []string{"a,b", `c"d`, ""}},
		{name: "quoted last", line: `a,"b"`, want: []string{"a", "b"}},
		{name: "bare quote", line: `a,b"c`, wantErr: true},
		{name: "bare quote middle", line: `a"b,c`, wantErr: true},
		{name: "unclosed", line: `"abc`, wantErr: true},
		{name: "text after quote", line: `"a"b,c`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := splitCSVLine(tt.line, nil)
			if (reason != "") != tt.wantErr {
				t.Fatalf("splitCSVLine(%q) reason = %q, want error %v", tt.line, reason, tt.wantErr)
			}
			if !tt.wantErr && strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) && !tt.wantErr {
				t.Errorf("splitCSVLine(%q) = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}
