package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/feedback/report"
)

// TypeMonthlyReport is the task that builds a month's root-cause report
// from the server's own counters and keeps it in Redis.
const TypeMonthlyReport = "report:monthly"

// MonthlyReportSpec is the cron spec of the monthly report task: 03:00 on
// the 1st of each month, in MonthlyReportZone.
const MonthlyReportSpec = "0 3 1 * *"

// MonthlyReportZone is the default zone of the monthly report ([queue]
// report_zone): its days, its months and its schedule.
const MonthlyReportZone = "UTC"

// monthlyReportRetention is how long a finished report task (and its
// result, the report's path) stays visible in the web UI.
const monthlyReportRetention = 62 * 24 * time.Hour

// MonthlyReportPayload is the payload of a TypeMonthlyReport task. The
// scheduler's task has none (the zero payload): it reports on the month
// before the one the task runs in.
type MonthlyReportPayload struct {
	// Month is the month to report on, "YYYY-MM"; empty means last month.
	Month string `json:"month,omitempty"`
}

// NewMonthlyReportTask returns a task reporting on month ("" for the month
// before the one it runs in).
func NewMonthlyReportTask(month string) (*asynq.Task, error) {
	if month == "" {
		return asynq.NewTask(TypeMonthlyReport, nil), nil
	}
	if _, err := report.ParseMonth(month); err != nil {
		return nil, fmt.Errorf("queue: monthly report: %w", err)
	}
	b, err := json.Marshal(MonthlyReportPayload{Month: month})
	if err != nil {
		return nil, fmt.Errorf("queue: monthly report: %w", err)
	}
	return asynq.NewTask(TypeMonthlyReport, b), nil
}

// Reports builds the monthly reports from the hourly counters a
// feedback.Recorder keeps, and keeps them in Redis without expiry:
// "<prefix>:reports:<YYYY-MM>:html" and ":json", each month listed in the
// set "<prefix>:reports". Safe for concurrent use once set up.
type Reports struct {
	Redis redis.Cmdable
	// Prefix is the prefix of bounceloop's keys; "" means "bounceloop"
	// (as feedback.Keys).
	Prefix string
	// Location is the report's zone; nil means MonthlyReportZone.
	Location *time.Location
	// Classifier gives each code's class; nil means the built-in rules.
	Classifier *bounces.Classifier
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// prefix is the prefix of every key of the stored reports.
func (r *Reports) prefix() string {
	if r.Prefix == "" {
		return "bounceloop"
	}
	return r.Prefix
}

// indexKey is the set of the months stored.
func (r *Reports) indexKey() string { return r.prefix() + ":reports" }

// reportKey is the key of month's report in format ("html" or "json").
func (r *Reports) reportKey(month, format string) string {
	return r.prefix() + ":reports:" + month + ":" + format
}

func (r *Reports) location() *time.Location {
	if r.Location != nil {
		return r.Location
	}
	loc, err := time.LoadLocation(MonthlyReportZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

func (r *Reports) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// ReportPath is the web path of month's report.
func ReportPath(month string) string { return "/reports/" + month }

// HandleMonthlyReport builds and stores the report of the payload's month
// (or of the month before now's, in the report's zone) and writes its web
// path, "/reports/YYYY-MM", as the task's result. A month without data
// stores nothing and fails without retry, with an error naming the month.
func (r *Reports) HandleMonthlyReport(ctx context.Context, t *asynq.Task) error {
	var p MonthlyReportPayload
	if len(t.Payload()) > 0 {
		if err := json.Unmarshal(t.Payload(), &p); err != nil {
			return fmt.Errorf("queue: monthly report payload: %v: %w", err, asynq.SkipRetry)
		}
	}
	var month report.Month
	if p.Month == "" {
		now := r.now().In(r.location())
		month = report.Month{Year: now.Year(), Month: now.Month()}.Prev()
	} else {
		m, err := report.ParseMonth(p.Month)
		if err != nil {
			return fmt.Errorf("queue: monthly report: %v: %w", err, asynq.SkipRetry)
		}
		month = m
	}
	path, err := r.Build(ctx, month)
	if errors.Is(err, report.ErrNoData) {
		return fmt.Errorf("%w (%w)", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	if w := t.ResultWriter(); w != nil {
		if _, err := w.Write([]byte(path)); err != nil {
			return fmt.Errorf("queue: monthly report %s: write the result: %w", month, err)
		}
	}
	return nil
}

// Build builds month's report from the counters of that month and the one
// before (for the comparison), stores its HTML and JSON and returns its web
// path. Without data for month it stores nothing and returns an error
// wrapping report.ErrNoData that names the month.
func (r *Reports) Build(ctx context.Context, month report.Month) (string, error) {
	rep, err := r.Analyze(ctx, month)
	if err != nil {
		return "", err
	}
	var html, js bytes.Buffer
	if err := report.WriteHTML(&html, rep); err != nil {
		return "", fmt.Errorf("queue: monthly report %s: %w", month, err)
	}
	if err := report.WriteJSON(&js, rep); err != nil {
		return "", fmt.Errorf("queue: monthly report %s: %w", month, err)
	}
	m := month.String()
	pipe := r.Redis.Pipeline()
	pipe.Set(ctx, r.reportKey(m, "html"), html.Bytes(), 0)
	pipe.Set(ctx, r.reportKey(m, "json"), js.Bytes(), 0)
	pipe.SAdd(ctx, r.indexKey(), m)
	if _, err := pipe.Exec(ctx); err != nil {
		return "", fmt.Errorf("queue: monthly report %s: store: %w", month, err)
	}
	return ReportPath(m), nil
}

// Analyze reads the counters of month and the one before and returns
// month's report; without data for month, an error wrapping
// report.ErrNoData that names the month.
func (r *Reports) Analyze(ctx context.Context, month report.Month) (*report.Report, error) {
	loc := r.location()
	counts := report.NewCounts(loc)
	from := time.Date(month.Year, month.Month-1, 1, 0, 0, 0, 0, loc)
	to := time.Date(month.Year, month.Month+1, 1, 0, 0, 0, 0, loc)
	if err := feedback.ReadRedisCounts(ctx, r.Redis, feedback.Keys{Prefix: r.Prefix}, from, to, counts); err != nil {
		return nil, fmt.Errorf("queue: monthly report %s: %w", month, err)
	}
	rep, err := report.Analyze(counts, report.Options{Month: month, Location: loc, Classifier: r.Classifier, Now: r.now()})
	if err != nil {
		return nil, fmt.Errorf("queue: monthly report %s: %w", month, err)
	}
	return rep, nil
}

// Months returns the months stored, newest first.
func (r *Reports) Months(ctx context.Context) ([]string, error) {
	ms, err := r.Redis.SMembers(ctx, r.indexKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: list reports: %w", err)
	}
	slices.Sort(ms)
	slices.Reverse(ms)
	return ms, nil
}

// Get returns month's stored report in format ("html" or "json"), and
// false when there is none.
func (r *Reports) Get(ctx context.Context, month, format string) ([]byte, bool, error) {
	b, err := r.Redis.Get(ctx, r.reportKey(month, format)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("queue: report %s: %w", month, err)
	}
	return b, true, nil
}

// reports returns the server's Reports.
func (s *Server) reports() *Reports {
	r := &Reports{Redis: s.o.Redis, Prefix: s.o.KeyPrefix}
	if loc, err := time.LoadLocation(s.o.Config.ReportZone); err == nil && s.o.Config.ReportZone != "" {
		r.Location = loc // validated with the config
	}
	if s.o.Handler != nil {
		r.Classifier = s.o.Handler.Classifier
	}
	return r
}

// runMonthlyReports runs asynq's scheduler of the monthly report task
// until ctx ends. Every serve process runs one; the task is unique for an
// hour, so one of them enqueues it. Call with s.wg.Add(1) done.
func (s *Stack) runMonthlyReports(ctx context.Context) {
	defer s.wg.Done()
	o := s.Server.o
	log := o.Log.With().Str("component", "scheduler").Logger()
	rep := s.Server.reports()
	sch := asynq.NewSchedulerFromRedisClient(o.Redis, &asynq.SchedulerOpts{
		Location: rep.location(),
		Logger:   schedulerLogger{asynqLogger{log}},
		LogLevel: asynqLevel(log.GetLevel()),
		EnqueueErrorHandler: func(t *asynq.Task, _ []asynq.Option, err error) {
			if !errors.Is(err, asynq.ErrDuplicateTask) {
				log.Warn().Err(err).Str("task", t.Type()).Msg("cannot enqueue the periodic task")
			}
		},
	})
	task, _ := NewMonthlyReportTask("")
	if _, err := sch.Register(MonthlyReportSpec, task,
		asynq.Unique(time.Hour), asynq.MaxRetry(3), asynq.Retention(monthlyReportRetention)); err != nil {
		log.Error().Err(err).Msg("cannot schedule the monthly report")
		return
	}
	if err := sch.Start(); err != nil {
		log.Error().Err(err).Msg("cannot start the scheduler")
		return
	}
	<-ctx.Done()
	sch.Shutdown()
}

// schedulerLogger drops the error asynq v0.25 logs on every Shutdown of a
// scheduler on a shared Redis client (it tries to close the client).
type schedulerLogger struct{ asynqLogger }

func (l schedulerLogger) Error(args ...any) {
	msg := fmt.Sprint(args...)
	if strings.Contains(msg, "connection is shared") {
		return
	}
	l.asynqLogger.Error(args...)
}
