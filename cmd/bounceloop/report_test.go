package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

const sharedCSV = "../../bounces/testdata/export/campaign-responses-2018Q2.csv"

func TestReportCommand(t *testing.T) {
	out, errs, code := runCmd(t, "", "report", "--month", "2018-05", "--format", "json", sharedCSV)
	if code != exitOK {
		t.Fatalf("report = %d, want 0; stderr %s", code, errs)
	}
	var r struct {
		Month        string `json:"month"`
		Timezone     string `json:"timezone"`
		BucketOffset string `json:"bucket_offset"`
		Codes        []struct {
			Code int `json:"code"`
		} `json:"codes"`
		Findings []struct {
			Kind, Domain, Day string
			Code              int
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report --format json is not JSON: %v", err)
	}
	if r.Month != "2018-05" || r.Timezone != "UTC" || r.BucketOffset != "22:00" {
		t.Errorf("report header = %q %q %q, want 2018-05 UTC 22:00", r.Month, r.Timezone, r.BucketOffset)
	}
	found := false
	for _, f := range r.Findings {
		if f.Kind == "onset" && f.Code == 554 && f.Domain == "centrum.sk" && f.Day == "2018-05-08" {
			found = true
		}
	}
	if !found {
		t.Errorf("report lacks the 554 onset at centrum.sk on 2018-05-08: %+v", r.Findings)
	}
}

func TestReportCommandFormatsAndOut(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []struct{ format, want string }{
		{"md", "# Bounce report 2018-05"},
		{"html", "<html"},
		{"json", `"month": "2018-05"`},
	} {
		t.Run(f.format, func(t *testing.T) {
			path := filepath.Join(dir, "report."+f.format)
			_, errs, code := runCmd(t, "", "report", "--month", "2018-05", "--format", f.format, "--out", path, sharedCSV)
			if code != exitOK {
				t.Fatalf("report --format %s = %d: %s", f.format, code, errs)
			}
			b, err := os.ReadFile(path)
			if err != nil || !strings.Contains(string(b), f.want) {
				t.Errorf("report --format %s wrote %d bytes (%v), want %q in it", f.format, len(b), err, f.want)
			}
			if st, err := os.Stat(path); err != nil {
				t.Error(err)
			} else if st.Mode().Perm() != 0o644 {
				t.Errorf("report --out file mode = %v, want -rw-r--r--", st.Mode())
			}
		})
	}
	// A report written over an existing file keeps that file's mode.
	kept := filepath.Join(dir, "kept.md")
	if err := os.WriteFile(kept, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := runCmd(t, "", "report", "--month", "2018-05", "--out", kept, sharedCSV); code != exitOK {
		t.Fatalf("report --out %s = %d: %s", kept, code, errs)
	}
	if st, err := os.Stat(kept); err != nil {
		t.Error(err)
	} else if st.Mode().Perm() != 0o640 || st.Size() == 0 {
		t.Errorf("report over an existing file: mode %v size %d, want -rw-r----- and the report", st.Mode(), st.Size())
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestReportCommandErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantErr  string
	}{
		{"no month", []string{"report", sharedCSV}, "", exitUsage, "--month is required"},
		{"bad month", []string{"report", "--month", "May", sharedCSV}, "", exitUsage, "YYYY-MM"},
		{"bad tz", []string{"report", "--month", "2018-05", "--tz", "Mars/Olympus", sharedCSV}, "", exitUsage, "--tz"},
		{"bad format", []string{"report", "--month", "2018-05", "--format", "pdf", sharedCSV}, "", exitUsage, "--format"},
		{"bad input format", []string{"report", "--month", "2018-05", "--input-format", "xls", sharedCSV}, "", exitUsage, "--input-format"},
		{"month without data", []string{"report", "--month", "2019-07", sharedCSV}, "", exitSkipped, "no data for 2019-07"},
		{"every record unreadable", []string{"report", "--month", "2018-05", "--input-format", "ndjson", sharedCSV}, "", exitSkipped, "records could not be read"},
		{"missing file", []string{"report", "--month", "2018-05", "/nonexistent.csv"}, "", exitSkipped, "/nonexistent.csv"},
		{"bad lines on stdin", []string{"report", "--month", "2018-05", "-"},
			`{"time":"2018-05-03T10:00:00Z","domain":"gmail.com","code":250}` + "\nnot json\n" + `{"time":"2018-05-03T10:00:01Z","domain":"gmail.com","code":452}` + "\n",
			exitSkipped, "skipped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs, code := runCmd(t, tt.stdin, tt.args...)
			if code != tt.wantCode || !strings.Contains(errs, tt.wantErr) {
				t.Errorf("run(%q) = %d, stderr %q; want %d and %q", tt.args, code, errs, tt.wantCode, tt.wantErr)
			}
		})
	}
}

// TestReportFromRedis reads the counters a Recorder wrote to a real Redis,
// with the address and prefix from the config file.
func TestReportFromRedis(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	ctx := context.Background()
	rec := feedback.NewRecorder(rdb, feedback.Keys{Prefix: prefix})
	day := time.Date(2018, 5, 3, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 31; i++ {
		rec.Add(day.AddDate(0, 0, i-2), "gmail.com", 250, 1000)
		rec.Add(day.AddDate(0, 0, i-2), "gmail.com", 452, int64(i))
	}
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "config.toml")
	writeFile(t, cfg, "[redis]\naddrs = [\""+redistest.Addr(t)+"\"]\nprefix = \""+prefix+"\"\n")
	out, errs, code := runCmd(t, "", "report", "--config", cfg, "--month", "2018-05", "--format", "json")
	if code != exitOK {
		t.Fatalf("report from Redis = %d: %s", code, errs)
	}
	var r struct {
		Totals struct {
			Attempts, Failed int64
		} `json:"totals"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	// The 31 days recorded are 1..31 May (i = 0 is 1 May).
	var wantFailed int64
	for i := 0; i < 31; i++ {
		if d := day.AddDate(0, 0, i-2); d.Month() == time.May {
			wantFailed += int64(i)
		}
	}
	if r.Totals.Failed != wantFailed || r.Totals.Attempts < 29*1000 {
		t.Errorf("report from Redis totals = %+v, want failed %d", r.Totals, wantFailed)
	}

	_, errs, code = runCmd(t, "", "report", "--month", "2018-05", "--redis", "127.0.0.1:1")
	if code != exitSkipped || !strings.Contains(errs, "Redis") {
		t.Errorf("report from an unreachable Redis = %d %q, want %d and an error", code, errs, exitSkipped)
	}
}
