package queue

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"html/template"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy"
)

// The operators' pages, next to /monitoring behind the same basic auth:
//
//	GET /suppressions          the suppression list; ?q= keeps the entries containing q
//	GET /suppressions.csv      the same, as CSV (all matching entries)
//	GET /domains               each rate key: configured and adaptive rate, last change, pause
//	GET /reports               the stored monthly reports
//	GET /reports/YYYY-MM       a stored report (HTML), /reports/YYYY-MM.json its JSON
//
// Everything shown goes through html/template; the pages load nothing else.

// maxSuppressionRows is the most suppression rows a page shows; the CSV
// export has every matching entry.
const maxSuppressionRows = 1000

// pageTimeout bounds the Redis work of one page.
const pageTimeout = 10 * time.Second

var monthName = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}$`)

// pages registers the operators' pages on mux.
func (s *Server) pages(mux *http.ServeMux) {
	mux.HandleFunc("GET /suppressions", s.suppressionsPage)
	mux.HandleFunc("GET /suppressions.csv", s.suppressionsCSV)
	mux.HandleFunc("GET /domains", s.domainsPage)
	mux.HandleFunc("GET /reports", s.reportsPage)
	mux.HandleFunc("GET /reports/{name}", s.reportPage)
}

func (s *Server) keys() feedback.Keys { return feedback.Keys{Prefix: s.o.KeyPrefix} }

func (s *Server) suppressions() *feedback.Suppressions {
	if s.o.Handler != nil && s.o.Handler.Suppressions != nil {
		return s.o.Handler.Suppressions
	}
	return feedback.NewSuppressions(s.o.Redis, s.keys())
}

func (s *Server) loop() *feedback.Loop {
	if s.o.Handler != nil && s.o.Handler.Loop != nil {
		return s.o.Handler.Loop
	}
	return feedback.NewLoop(s.o.Redis, s.keys(), nil)
}

// matchSuppression reports whether q (lower-cased) is in e's address,
// class, campaign or answer.
func matchSuppression(e feedback.SuppressedAddress, q string) bool {
	if q == "" {
		return true
	}
	for _, f := range []string{e.Address, e.Class.String(), e.Campaign, e.Answer} {
		if strings.Contains(strings.ToLower(f), q) {
			return true
		}
	}
	return false
}

type suppressionRow struct {
	Address, Class, Code, Time, Campaign, Answer string
	t                                            time.Time
}

func (s *Server) suppressionsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	lq := strings.ToLower(q)
	var rows []suppressionRow
	total, matched := 0, 0
	err := s.suppressions().List(ctx, func(e feedback.SuppressedAddress) error {
		total++
		if !matchSuppression(e, lq) {
			return nil
		}
		matched++
		rows = append(rows, suppressionRow{
			Address: e.Address, Class: e.Class.String(), Code: codeText(e.Code), Time: timeText(e.Time),
			Campaign: e.Campaign, Answer: e.Answer, t: e.Time,
		})
		return nil
	})
	if err != nil {
		s.pageError(w, err)
		return
	}
	slices.SortFunc(rows, func(a, b suppressionRow) int {
		return cmp.Or(b.t.Compare(a.t), strings.Compare(a.Address, b.Address)) // newest first
	})
	if len(rows) > maxSuppressionRows {
		rows = rows[:maxSuppressionRows]
	}
	s.render(w, "suppressions", map[string]any{
		"Title": "Suppressions", "Q": q, "Rows": rows, "Total": total, "Matched": matched,
		"Shown": len(rows),
	})
}

func (s *Server) suppressionsCSV(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	lq := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="suppressions.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write(feedback.SuppressionCSVHeader)
	err := s.suppressions().List(ctx, func(e feedback.SuppressedAddress) error {
		if !matchSuppression(e, lq) {
			return nil
		}
		return cw.Write(e.CSVRecord())
	})
	cw.Flush()
	if err != nil {
		// The header is sent: the export ends short, and the log says why.
		s.o.Log.Warn().Err(err).Msg("suppressions export")
	}
}

type domainRow struct {
	Key, Queue, Configured, Current, Changed, Reason string
	Paused                                           string // "" when the queue runs
}

type pauseRow struct {
	Queue, Reason, Since, Until string
}

type holdRow struct {
	What, Rule, Reason, Since, Until string
}

func (s *Server) domainsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	loop := s.loop()
	pauses, err := loop.Pauses(ctx)
	if err != nil {
		s.pageError(w, err)
		return
	}
	var pol policy.Config
	if s.o.Handler != nil {
		pol = s.o.Handler.policy()
	}
	keys, err := KeyStates(ctx, pol, loop)
	if err != nil {
		s.pageError(w, err)
		return
	}
	rows := make([]domainRow, 0, len(keys))
	for _, k := range keys {
		row := domainRow{Key: k.Key, Queue: k.Queue, Configured: "—", Current: "configured", Changed: "—", Reason: "—"}
		if !k.Configured.IsZero() {
			row.Configured = k.Configured.String()
		}
		if k.Adapted {
			row.Current = k.Current.String()
			row.Changed = timeText(k.Changed)
			row.Reason = k.Reason
		}
		if p, ok := pauses[k.Queue]; ok {
			row.Paused = pauseText(p)
		}
		rows = append(rows, row)
	}
	prows := make([]pauseRow, 0, len(pauses))
	for q, p := range pauses {
		prows = append(prows, pauseRow{Queue: q, Reason: p.Reason, Since: timeText(p.Since), Until: untilText(p)})
	}
	slices.SortFunc(prows, func(a, b pauseRow) int { return strings.Compare(a.Queue, b.Queue) })
	holds, err := loop.Holds(ctx)
	if err != nil {
		s.pageError(w, err)
		return
	}
	hrows := make([]holdRow, 0, len(holds))
	for f, h := range holds {
		hrows = append(hrows, holdRow{What: f, Rule: h.Rule, Reason: h.Reason, Since: timeText(h.Since), Until: timeText(h.Until)})
	}
	slices.SortFunc(hrows, func(a, b holdRow) int { return strings.Compare(a.What, b.What) })
	s.render(w, "domains", map[string]any{"Title": "Domains", "Rows": rows, "Pauses": prows, "Holds": hrows})
}

func (s *Server) reportsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	rep := s.reports()
	months, err := rep.Months(ctx)
	if err != nil {
		s.pageError(w, err)
		return
	}
	s.render(w, "reports", map[string]any{
		"Title": "Reports", "Months": months, "Zone": rep.location().String(), "Spec": MonthlyReportSpec,
	})
}

func (s *Server) reportPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	name := r.PathValue("name")
	month, format := name, "html"
	if m, ok := strings.CutSuffix(name, ".json"); ok {
		month, format = m, "json"
	}
	if !monthName.MatchString(month) {
		http.NotFound(w, r)
		return
	}
	b, ok, err := s.reports().Get(ctx, month, format)
	if err != nil {
		s.pageError(w, err)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if format == "json" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(withNav(b))
}

// withNav puts the navigation bar at the top of a stored report's body.
func withNav(page []byte) []byte {
	i := bytes.Index(page, []byte("<body"))
	if i < 0 {
		return page
	}
	j := bytes.IndexByte(page[i:], '>')
	if j < 0 {
		return page
	}
	at := i + j + 1
	var nav bytes.Buffer
	_ = pageTpl.ExecuteTemplate(&nav, "nav", nil)
	out := make([]byte, 0, len(page)+nav.Len())
	out = append(out, page[:at]...)
	out = append(out, nav.Bytes()...)
	return append(out, page[at:]...)
}

func (s *Server) render(w http.ResponseWriter, name string, data any) {
	var b bytes.Buffer
	if err := pageTpl.ExecuteTemplate(&b, name, data); err != nil {
		s.pageError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = b.WriteTo(w)
}

func (s *Server) pageError(w http.ResponseWriter, err error) {
	s.o.Log.Warn().Err(err).Msg("operators' page")
	status := http.StatusInternalServerError
	if errors.Is(err, context.DeadlineExceeded) {
		status = http.StatusServiceUnavailable
	}
	http.Error(w, "cannot read the data: "+err.Error(), status)
}

// pauseText is a pause in one line: why and until when.
func pauseText(p feedback.Pause) string {
	return p.Reason + " (" + untilText(p) + ")"
}

func untilText(p feedback.Pause) string {
	if p.Until.IsZero() {
		return "until an operator resumes it"
	}
	return "until " + timeText(p.Until)
}

func codeText(c int) string {
	if c == 0 {
		return ""
	}
	return strconv.Itoa(c)
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

var pageTpl = template.Must(template.New("pages").Parse(`
{{define "nav"}}<nav style="font:14px sans-serif;background:#223;padding:.5em 1em;margin:0 0 1em"><a style="color:#fff;margin-right:1.2em" href="/suppressions">Suppressions</a><a style="color:#fff;margin-right:1.2em" href="/domains">Domains</a><a style="color:#fff;margin-right:1.2em" href="/reports">Reports</a><a style="color:#fff;margin-right:1.2em" href="/monitoring/">Queues (asynq)</a></nav>{{end}}
{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · bounceloop</title>
<style>
body{font:14px/1.4 sans-serif;margin:0;color:#222}
main{padding:0 1em 2em}
table{border-collapse:collapse;margin:.5em 0}
th,td{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f6}
td.answer{max-width:40em;word-break:break-word;font-family:monospace;font-size:12px}
.muted{color:#777}
</style></head><body>{{template "nav"}}<main><h1>{{.Title}}</h1>{{end}}
{{define "foot"}}</main></body></html>{{end}}

{{define "suppressions"}}{{template "head" .}}
<form method="get" action="/suppressions"><input type="search" name="q" value="{{.Q}}" placeholder="address, class, campaign or answer" size="40"> <button>Search</button> <a href="/suppressions.csv{{if .Q}}?q={{.Q}}{{end}}">Export CSV</a></form>
<p class="muted">{{.Matched}} of {{.Total}} addresses{{if .Q}} match “{{.Q}}”{{end}}{{if lt .Shown .Matched}}; the {{.Shown}} newest are shown (the CSV has all){{end}}.</p>
<table><tr><th>Address</th><th>Class</th><th>Code</th><th>Time (UTC)</th><th>Campaign</th><th>Answer</th></tr>
{{range .Rows}}<tr><td>{{.Address}}</td><td>{{.Class}}</td><td>{{.Code}}</td><td>{{.Time}}</td><td>{{.Campaign}}</td><td class="answer">{{.Answer}}</td></tr>
{{else}}<tr><td colspan="6" class="muted">none</td></tr>{{end}}</table>
{{template "foot"}}{{end}}

{{define "domains"}}{{template "head" .}}
<table><tr><th>Rate key</th><th>Queue</th><th>Configured rate</th><th>Current rate</th><th>Last change (UTC)</th><th>Why</th><th>Queue paused</th></tr>
{{range .Rows}}<tr><td>{{.Key}}</td><td>{{.Queue}}</td><td>{{.Configured}}</td><td>{{.Current}}</td><td>{{.Changed}}</td><td>{{.Reason}}</td><td>{{with .Paused}}paused: {{.}}{{else}}no{{end}}</td></tr>
{{else}}<tr><td colspan="7" class="muted">no rate keys</td></tr>{{end}}</table>
<h2>Paused queues</h2>
<table><tr><th>Queue</th><th>Why</th><th>Since (UTC)</th><th>Until (UTC)</th></tr>
{{range .Pauses}}<tr><td>{{.Queue}}</td><td>{{.Reason}}</td><td>{{.Since}}</td><td>{{.Until}}</td></tr>
{{else}}<tr><td colspan="4" class="muted">none</td></tr>{{end}}</table>
<h2>Held back by suspension rules</h2>
<table><tr><th>Domain or recipient</th><th>Rule</th><th>Answer</th><th>Since (UTC)</th><th>Until (UTC)</th></tr>
{{range .Holds}}<tr><td>{{.What}}</td><td>{{.Rule}}</td><td>{{.Reason}}</td><td>{{.Since}}</td><td>{{.Until}}</td></tr>
{{else}}<tr><td colspan="5" class="muted">none</td></tr>{{end}}</table>
{{template "foot"}}{{end}}

{{define "reports"}}{{template "head" .}}
<p class="muted">Built from the server's own counters at {{.Spec}} (cron) on the 1st of each month for the month before, in {{.Zone}}.</p>
<ul>{{range .Months}}<li><a href="/reports/{{.}}">{{.}}</a> (<a href="/reports/{{.}}.json">JSON</a>)</li>
{{else}}<li class="muted">no report stored yet</li>{{end}}</ul>
{{template "foot"}}{{end}}
`))
