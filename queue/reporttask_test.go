package queue

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/feedback/report"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/policy/redistest"
)

// recordMonth records a month of answers through a feedback.Recorder under
// prefix: every day 1000 delivered and 20 invalid recipients at gmail.com,
// 500 delivered at yahoo.com.
func recordMonth(t *testing.T, rdb redis.Cmdable, prefix string, year int, month time.Month) {
	t.Helper()
	rec := feedback.NewRecorder(rdb, feedback.Keys{Prefix: prefix})
	for d := time.Date(year, month, 1, 12, 0, 0, 0, time.UTC); d.Month() == month; d = d.AddDate(0, 0, 1) {
		rec.Add(d, "gmail.com", 250, 1000)
		rec.Add(d, "gmail.com", 550, 20)
		rec.Add(d, "yahoo.com", 250, 500)
	}
	if err := rec.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestReportMonthlyHandler(t *testing.T) {
	rdb := redistest.DB(t)
	ctx := context.Background()
	recordMonth(t, rdb, "rep", 2026, time.January)

	tests := []struct {
		name    string
		now     time.Time
		payload string
		month   string
		wantErr bool
	}{
		{"last month", time.Date(2026, 2, 1, 3, 0, 0, 0, time.UTC), "", "2026-01", false},
		{"late in the month", time.Date(2026, 2, 27, 23, 0, 0, 0, time.UTC), "", "2026-01", false},
		{"month given", time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC), `{"month":"2026-01"}`, "2026-01", false},
		{"month without data", time.Date(2026, 4, 1, 3, 0, 0, 0, time.UTC), "", "2026-03", true},
		{"given month without data", time.Date(2026, 4, 1, 3, 0, 0, 0, time.UTC), `{"month":"2025-12"}`, "2025-12", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Reports{Redis: rdb, Prefix: "rep", Now: func() time.Time { return tt.now }}
			var payload []byte
			if tt.payload != "" {
				payload = []byte(tt.payload)
			}
			err := r.HandleMonthlyReport(ctx, asynq.NewTask(TypeMonthlyReport, payload))
			if (err != nil) != tt.wantErr {
				t.Fatalf("HandleMonthlyReport(now %v) = %v, wantErr %v", tt.now, err, tt.wantErr)
			}
			html, okH, errH := r.Get(ctx, tt.month, "html")
			js, okJ, errJ := r.Get(ctx, tt.month, "json")
			if errH != nil || errJ != nil {
				t.Fatal(errH, errJ)
			}
			if tt.wantErr {
				if !errors.Is(err, report.ErrNoData) || !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), tt.month) {
					t.Errorf("HandleMonthlyReport = %v, want ErrNoData and SkipRetry naming %s", err, tt.month)
				}
				if okH || okJ {
					t.Errorf("a month without data stored a report (html %v, json %v)", okH, okJ)
				}
				if n, _ := rdb.Exists(ctx, "rep:reports:"+tt.month+":html", "rep:reports:"+tt.month+":json").Result(); n != 0 {
					t.Errorf("%d report keys of %s exist, want 0", n, tt.month)
				}
				return
			}
			if !okH || !okJ || !strings.Contains(string(html), "<html") {
				t.Fatalf("report of %s not stored (html %v, json %v)", tt.month, okH, okJ)
			}
			var rep report.Report
			if err := json.Unmarshal(js, &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Month != tt.month || rep.Totals.Attempts != 31*1520 || rep.Partial {
				t.Errorf("report = month %q, attempts %d, partial %v; want %s, %d, false", rep.Month, rep.Totals.Attempts, rep.Partial, tt.month, 31*1520)
			}
			if ttl, _ := rdb.TTL(ctx, "rep:reports:"+tt.month+":html").Result(); ttl != -1 {
				t.Errorf("TTL of the stored report = %v, want none", ttl)
			}
			if ms, err := r.Months(ctx); err != nil || len(ms) != 1 || ms[0] != tt.month {
				t.Errorf("Months() = %v, %v; want [%s]", ms, err, tt.month)
			}
		})
	}
}

func TestReportMonthlyPayload(t *testing.T) {
	tests := []struct {
		name    string
		month   string
		wantErr bool
	}{
		{"last month", "", false},
		{"a month", "2026-01", false},
		{"bad month", "2026-13", true},
		{"not a month", "January", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task, err := NewMonthlyReportTask(tt.month)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewMonthlyReportTask(%q) = %v, wantErr %v", tt.month, err, tt.wantErr)
			}
			if err == nil && task.Type() != TypeMonthlyReport {
				t.Errorf("NewMonthlyReportTask(%q).Type() = %q, want %q", tt.month, task.Type(), TypeMonthlyReport)
			}
		})
	}
	r := &Reports{}
	if err := r.HandleMonthlyReport(context.Background(), asynq.NewTask(TypeMonthlyReport, []byte("{"))); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("HandleMonthlyReport(bad payload) = %v, want SkipRetry", err)
	}
}

// TestReportTaskResult runs the task through a started stack: the server
// handles it and its result, shown in the web UI, is the report's path.
func TestReportTaskResult(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	rdb := redistest.DB(t)
	st := pagesStack(t, rdb, policy.Config{})
	recordMonth(t, rdb, "pages", 2026, time.January)
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Shutdown)
	task, err := NewMonthlyReportTask("2026-01")
	if err != nil {
		t.Fatal(err)
	}
	cl := asynq.NewClientFromRedisClient(rdb)
	info, err := cl.Enqueue(task, asynq.Retention(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := insp.GetTaskInfo(info.Queue, info.ID)
		if err == nil && got.State == asynq.TaskStateCompleted {
			if string(got.Result) != "/reports/2026-01" {
				t.Errorf("task result = %q, want /reports/2026-01", got.Result)
			}
			break
		}
		if err == nil && got.State == asynq.TaskStateArchived || got != nil && got.LastErr != "" {
			t.Fatalf("task failed: %s", got.LastErr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("task not completed in time (%v, %v)", got, err)
		}
		<-time.After(50 * time.Millisecond)
	}
	if ms, err := st.Server.reports().Months(context.Background()); err != nil || len(ms) != 1 || ms[0] != "2026-01" {
		t.Errorf("Months() = %v, %v; want [2026-01]", ms, err)
	}
	// The scheduler registered the periodic task (its first heartbeat
	// comes after 5 s).
	deadline = time.Now().Add(10 * time.Second)
	for {
		entries, err := insp.SchedulerEntries()
		if err == nil && len(entries) == 1 && entries[0].Spec == MonthlyReportSpec && entries[0].Task.Type() == TypeMonthlyReport {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scheduler entries = %v, %v; want one %s %q", entries, err, TypeMonthlyReport, MonthlyReportSpec)
		}
		<-time.After(200 * time.Millisecond)
	}
}

// TestReportZone checks [queue] report_zone: validated with an error that
// names the key, and used as the zone of the server's reports.
func TestReportZone(t *testing.T) {
	for _, tc := range []struct {
		zone, err string
	}{
		{"", ""},
		{"UTC", ""},
		{"Europe/Bratislava", ""},
		{"Mars/Olympus", "queue.report_zone"},
	} {
		err := Config{ReportZone: tc.zone}.Validate()
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("report_zone %q: %v, want an error naming %q", tc.zone, err, tc.err)
		}
	}
	if got := (Config{}).WithDefaults().ReportZone; got != MonthlyReportZone {
		t.Errorf("default report_zone = %q, want %q", got, MonthlyReportZone)
	}
	s := &Server{o: ServerOptions{Config: Config{ReportZone: "Europe/Bratislava"}}}
	if got := s.reports().location().String(); got != "Europe/Bratislava" {
		t.Errorf("reports' zone = %q, want Europe/Bratislava", got)
	}
}
