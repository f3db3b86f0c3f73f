// Command reportbench times `bounceloop report` on a month of per-message
// NDJSON events next to the same aggregation by DuckDB (the npm package
// @duckdb/node-api) and by the sqlite3 command-line tool, in the same run.
//
// It writes the events once (10,000,000 by default, about 2 GB; the file is
// reused while its parameters are the same), builds bounceloop, runs each
// tool as a child process and prints a table of wall time, peak RSS (the
// child's rusage) and the ratio to bounceloop. A missing tool is reported
// as skipped. Everything stays on this machine; only a missing DuckDB
// package is installed with npm into --cache.
//
//	go run ./cmd/reportbench                    # the 10M-event month
//	go run ./cmd/reportbench --events 200000    # a quick smoke run
//
// See docs/benchmarks.md for the figures.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/bounceloop/bounceloop/feedback/report"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("reportbench", flag.ContinueOnError)
	home, _ := os.UserCacheDir()
	dir := fs.String("dir", filepath.Join(os.TempDir(), "bounceloop-bench"), "folder for the events file (reused), the CSV and the sqlite database")
	events := fs.Int("events", 10_000_000, "events in the month")
	seed := fs.Uint64("seed", 1, "seed of the generator: the same seed writes the same file")
	monthFlag := fs.String("month", "2018-05", "the month of the events, YYYY-MM")
	tools := fs.String("tools", "bounceloop,duckdb,sqlite3", "the tools to time, comma-separated")
	cache := fs.String("cache", filepath.Join(home, "bounceloop-bench"), "folder where @duckdb/node-api is installed when missing")
	keep := fs.Bool("keep", false, "keep the CSV and the sqlite database")
	binary := fs.String("bounceloop", "", "time this bounceloop binary instead of building ./cmd/bounceloop")
	timeout := fs.Duration("timeout", 30*time.Minute, "the longest a tool may run")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: go run ./cmd/reportbench [flags]\n\nTimes bounceloop report against DuckDB and sqlite3 on a month of NDJSON events.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	month, err := report.ParseMonth(*monthFlag)
	if err != nil || *events <= 0 || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "reportbench: want --month YYYY-MM, --events > 0 and no arguments")
		return 2
	}
	want := map[string]bool{}
	for _, t := range strings.Split(*tools, ",") {
		want[strings.TrimSpace(t)] = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	b := &bench{
		dir: *dir, cache: *cache, keep: *keep, timeout: *timeout, tools: want, binary: *binary,
		params: genParams{month: month, events: *events, seed: *seed},
		out:    os.Stdout,
	}
	if err := b.run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "reportbench:", err)
		return 1
	}
	return 0
}
