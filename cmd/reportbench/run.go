package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
)

//go:embed duckdb.js
var duckdbScript []byte

// bench is one run of the benchmark.
type bench struct {
	dir, cache string
	binary     string // a prebuilt bounceloop; "" to build one
	keep       bool
	timeout    time.Duration
	tools      map[string]bool
	params     genParams
	out        io.Writer

	rows []result
}

// result is one line of the table.
type result struct {
	tool    string
	wall    time.Duration
	maxRSS  int64 // bytes; 0 when not measured
	events  int64 // events the tool counted; -1 when not known
	skipped string
	note    string
	noRatio bool
}

func (b *bench) run(ctx context.Context) error {
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	events := filepath.Join(b.dir, b.params.fileName())
	t0 := time.Now()
	wrote, err := generate(ctx, events, b.params)
	if err != nil {
		return fmt.Errorf("write the events: %w", err)
	}
	st, err := os.Stat(events)
	if err != nil {
		return err
	}
	verb := "reused"
	if wrote {
		verb = fmt.Sprintf("written in %.1f s", time.Since(t0).Seconds())
	}
	fmt.Fprintf(b.out, "events: %s (%d events, %s, %s)\n", events, b.params.events, human(st.Size()), verb)
	fmt.Fprintf(b.out, "machine: %s, %d cores (GOMAXPROCS %d), %s\n", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())

	// Read the file once so that every tool finds it in the page cache.
	t0 = time.Now()
	if err := readAll(events); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "page cache warm-up: read in %.1f s\n\n", time.Since(t0).Seconds())

	month := fmt.Sprintf("%04d-%02d", b.params.month.Year, int(b.params.month.Month))
	add := func(rs ...result) {
		for _, r := range rs {
			if r.skipped != "" {
				fmt.Fprintf(os.Stderr, "%s: skipped: %s\n", r.tool, r.skipped)
			} else {
				fmt.Fprintf(os.Stderr, "%s: %.2f s\n", r.tool, r.wall.Seconds())
			}
		}
		b.rows = append(b.rows, rs...)
	}
	if b.tools["bounceloop"] {
		add(b.bounceloop(ctx, events, month))
	}
	if b.tools["duckdb"] {
		add(b.duckdb(ctx, events))
	}
	if b.tools["sqlite3"] {
		add(b.sqlite(ctx, events)...)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	b.table()
	return nil
}

// bounceloop builds the command and times its report.
func (b *bench) bounceloop(ctx context.Context, events, month string) result {
	r := result{tool: "bounceloop report --format json", events: -1}
	bin := b.binary
	if bin == "" {
		bin = filepath.Join(b.dir, "bounceloop")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/bounceloop/bounceloop/cmd/bounceloop")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			r.skipped = "go build failed: " + err.Error()
			return r
		}
	}
	cmd := exec.Command(bin, "report", "--month", month, "--format", "json", events)
	cmd.Env = append(os.Environ(), "BOUNCELOOP_CONFIG=")
	out, err := b.child(ctx, cmd, &r)
	if err != nil {
		r.skipped = err.Error()
		return r
	}
	var rep struct {
		Totals struct {
			Attempts int64 `json:"attempts"`
		} `json:"totals"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		r.skipped = "cannot read the JSON report: " + err.Error()
		return r
	}
	r.events = rep.Totals.Attempts
	return r
}

// duckdb times the aggregation by @duckdb/node-api, installing it into
// b.cache when it is missing.
func (b *bench) duckdb(ctx context.Context, events string) result {
	r := result{tool: "DuckDB (@duckdb/node-api)", events: -1}
	node, err := exec.LookPath("node")
	if err != nil {
		r.skipped = "node not found"
		return r
	}
	if _, err := os.Stat(filepath.Join(b.cache, "node_modules", "@duckdb", "node-api")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			r.skipped = "@duckdb/node-api not installed and npm not found"
			return r
		}
		if err := os.MkdirAll(b.cache, 0o755); err != nil {
			r.skipped = err.Error()
			return r
		}
		fmt.Fprintf(b.out, "installing @duckdb/node-api into %s\n", b.cache)
		ictx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		install := exec.CommandContext(ictx, npm, "install", "--no-audit", "--no-fund", "--prefix", b.cache, "@duckdb/node-api")
		install.Stdout, install.Stderr = os.Stderr, os.Stderr
		if err := install.Run(); err != nil {
			r.skipped = "npm install @duckdb/node-api failed: " + err.Error()
			return r
		}
	}
	script := filepath.Join(b.cache, "reportbench-duckdb.js")
	if err := os.WriteFile(script, duckdbScript, 0o644); err != nil {
		r.skipped = err.Error()
		return r
	}
	out, err := b.child(ctx, exec.Command(node, script, events), &r)
	if err != nil {
		r.skipped = err.Error()
		return r
	}
	var res struct {
		Events string `json:"events"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &res); err == nil {
		r.events, _ = strconv.ParseInt(res.Events, 10, 64)
	}
	return r
}

// sqliteScript imports the CSV and runs the original analysis' GROUP BY
// queries: failures per code, per code and domain, and per day, domain and
// code.
const sqliteScript = `PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
CREATE TABLE events(time TEXT, campaign TEXT, message_id TEXT, recipient TEXT, domain TEXT, code INTEGER, enhanced TEXT, text TEXT, source TEXT);
.import --csv --skip 1 %s events
SELECT count(*) FROM events;
.output /dev/null
SELECT code, count(*) FROM events WHERE code != 250 GROUP BY code ORDER BY 2 DESC;
SELECT code, domain, count(*) FROM events GROUP BY code, domain ORDER BY code, 3 DESC;
SELECT substr(time, 1, 10) AS day, domain, code, count(*) FROM events GROUP BY 1, 2, 3;
`

// sqlite converts the events to CSV (timed as a row of its own), then times
// sqlite3's import and queries.
func (b *bench) sqlite(ctx context.Context, events string) []result {
	conv := result{tool: "events to CSV (for sqlite3, in Go)", events: -1, noRatio: true}
	r := result{tool: "sqlite3 (.import + 3 GROUP BY)", events: -1}
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		r.skipped = "sqlite3 not found"
		return []result{r}
	}
	csvPath := filepath.Join(b.dir, "events.csv")
	db := filepath.Join(b.dir, "events.sqlite")
	if !b.keep {
		defer os.Remove(csvPath)
		defer os.Remove(db)
	}
	os.Remove(db)
	t0 := time.Now()
	n, err := toCSV(ctx, events, csvPath)
	conv.wall = time.Since(t0)
	if err != nil {
		conv.skipped = err.Error()
		return []result{conv}
	}
	conv.events = n
	if strings.ContainsAny(csvPath, " \"'") {
		r.skipped = "the CSV path holds spaces or quotes; use another --dir"
		return []result{conv, r}
	}
	cmd := exec.Command(bin, db)
	cmd.Stdin = strings.NewReader(fmt.Sprintf(sqliteScript, csvPath))
	out, err := b.child(ctx, cmd, &r)
	if err != nil {
		r.skipped = err.Error()
		return []result{conv, r}
	}
	// The output is "off" (the journal mode), then the count.
	lines := strings.Fields(string(out))
	if len(lines) > 0 {
		r.events, _ = strconv.ParseInt(lines[len(lines)-1], 10, 64)
	}
	return []result{conv, r}
}

// toCSV writes the events of the NDJSON file in to a CSV file with a
// header, the domain taken from the recipient. It returns the rows written.
func toCSV(ctx context.Context, in, out string) (int64, error) {
	f, err := os.Open(in)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	o, err := os.Create(out)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(o, 1<<20)
	w := csv.NewWriter(bw)
	if err := w.Write([]string{"time", "campaign", "message_id", "recipient", "domain", "code", "enhanced", "text", "source"}); err != nil {
		o.Close()
		return 0, err
	}
	r := bounces.NewNDJSONReader(bufio.NewReaderSize(f, 1<<20), in)
	var n int64
	rec := make([]string, 9)
	for {
		if n%100_000 == 0 && ctx.Err() != nil {
			o.Close()
			return n, ctx.Err()
		}
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			o.Close()
			return n, err
		}
		rec[0] = e.Time.Format(time.RFC3339)
		rec[1], rec[2], rec[3], rec[4] = e.Campaign, e.MessageID, e.Recipient, e.Domain
		rec[5] = strconv.Itoa(e.Code)
		rec[6], rec[7], rec[8] = e.Enhanced, e.Text, e.Source.String()
		if err := w.Write(rec); err != nil {
			o.Close()
			return n, err
		}
		n++
	}
	w.Flush()
	if err := w.Error(); err != nil {
		o.Close()
		return n, err
	}
	if err := bw.Flush(); err != nil {
		o.Close()
		return n, err
	}
	return n, o.Close()
}

// child runs cmd with b.timeout, filling r's wall time and peak RSS, and
// returns its standard output.
func (b *bench) child(ctx context.Context, cmd *exec.Cmd, r *result) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	c.Env, c.Stdin, c.Dir = cmd.Env, cmd.Stdin, cmd.Dir
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	t0 := time.Now()
	err := c.Run()
	r.wall = time.Since(t0)
	if c.ProcessState != nil {
		if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.maxRSS = int64(ru.Maxrss) * 1024 // KiB on Linux
		}
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 500 {
			msg = msg[:500] + "..."
		}
		return nil, fmt.Errorf("%s failed: %v: %s", filepath.Base(cmd.Path), err, msg)
	}
	return stdout.Bytes(), nil
}

// table prints the results as a Markdown table.
func (b *bench) table() {
	var base time.Duration
	for _, r := range b.rows {
		if r.tool == "bounceloop report --format json" && r.skipped == "" {
			base = r.wall
		}
	}
	fmt.Fprintln(b.out, "| tool | wall s | peak RSS | × bounceloop | events counted |")
	fmt.Fprintln(b.out, "|---|--:|--:|--:|--:|")
	for _, r := range b.rows {
		if r.skipped != "" {
			fmt.Fprintf(b.out, "| %s | skipped: %s | | | |\n", r.tool, r.skipped)
			continue
		}
		rss, ratio, n := "–", "–", "–"
		if r.maxRSS > 0 {
			rss = human(r.maxRSS)
		}
		if base > 0 && !r.noRatio {
			ratio = fmt.Sprintf("%.2f", r.wall.Seconds()/base.Seconds())
		}
		if r.events >= 0 {
			n = strconv.FormatInt(r.events, 10)
		}
		fmt.Fprintf(b.out, "| %s | %.2f | %s | %s | %s |\n", r.tool, r.wall.Seconds(), rss, ratio, n)
	}
	if base > 0 {
		fmt.Fprintf(b.out, "\nbounceloop: %.2f M events/s\n", float64(b.params.events)/base.Seconds()/1e6)
	}
	for _, r := range b.rows {
		if r.skipped == "" && r.events >= 0 && r.events != int64(b.params.events) {
			fmt.Fprintf(b.out, "warning: %s counted %d events, want %d\n", r.tool, r.events, b.params.events)
		}
	}
}

func readAll(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// cpuModel returns the CPU's model name from /proc/cpuinfo, or "unknown CPU".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
