package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/feedback/report"
)

const reportHelp = `Usage: bounceloop report --month YYYY-MM [flags] [SOURCE ...]

Writes the monthly root-cause analysis: totals, the codes seen with their
meaning and class, failure codes ranked, the domains each code hits, per
domain whether failures follow the volume sent, and findings (concentrated,
volume_correlated, not_volume_correlated, spike, onset) each with its
evidence and a recommended action.

SOURCE is a file (or - for standard input): the wide CSV export, NDJSON
events or a Postfix log, detected by content (--input-format forces one).
With no SOURCE the daily counters the server keeps in Redis are read
(--redis ADDR, else the [redis] section of the config).

Days are days of --tz; a month is selected by bucket (or event) time in that
zone. Postfix timestamps carry no year: a log is taken to end in --month at
the latest (a log that began on 31 December is read from the year before
for a January report), in the zone of --tz. Bad records are listed in the report and counted (exit status 1).

Flags:
`

func reportCommand(fs *flag.FlagSet) func(context.Context, *env, []string) int {
	monthFlag := fs.String("month", "", "the month to report on, YYYY-MM (required)")
	tz := fs.String("tz", "UTC", "IANA time zone the days are counted in, e.g. Europe/Bratislava")
	format := fs.String("format", "md", "output format: md, html or json")
	outPath := fs.String("out", "", "write the report to FILE instead of standard output")
	inFormat := fs.String("input-format", "auto", "format of the SOURCE files: auto, export, ndjson or postfix")
	redisAddr := fs.String("redis", "", "read the counters from the Redis at host:port (default: the config's [redis])")
	strict := fs.Bool("strict", false, "stop at the first record that cannot be read")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), reportHelp)
		fs.PrintDefaults()
	}
	return func(ctx context.Context, e *env, args []string) int {
		usageErr := func(format string, a ...any) int {
			fmt.Fprintf(e.stderr, "bounceloop report: "+format+"\n", a...)
			return exitUsage
		}
		if *monthFlag == "" {
			return usageErr("--month is required (YYYY-MM)")
		}
		month, err := report.ParseMonth(*monthFlag)
		if err != nil {
			return usageErr("--month: %v", err)
		}
		loc, err := time.LoadLocation(*tz)
		if err != nil {
			return usageErr("--tz: %v", err)
		}
		write, ok := map[string]func(io.Writer, *report.Report) error{
			"md": report.WriteMarkdown, "markdown": report.WriteMarkdown, "html": report.WriteHTML, "json": report.WriteJSON,
		}[*format]
		if !ok {
			return usageErr("--format: unknown format %q (want md, html or json)", *format)
		}
		inFmt, err := feedback.ParseFormat(*inFormat)
		if err != nil {
			return usageErr("--input-format: %v", err)
		}
		if len(args) > 0 && *redisAddr != "" {
			return usageErr("give SOURCE files or --redis, not both")
		}
		cl, err := newClassifier(e.cfg)
		if err != nil {
			return usageErr("%v", err)
		}

		counts := report.NewCounts(loc)
		var read []string
		if len(args) == 0 {
			opts := e.cfg.Redis.UniversalOptions()
			if *redisAddr != "" {
				opts.Addrs = []string{*redisAddr}
			}
			rdb := redis.NewUniversalClient(opts)
			defer rdb.Close()
			from := time.Date(month.Year, month.Month-1, 1, 0, 0, 0, 0, loc) // the previous month too, for the comparison
			to := time.Date(month.Year, month.Month+1, 1, 0, 0, 0, 0, loc)
			keys := feedback.Keys{Prefix: e.cfg.Redis.KeyPrefix()}
			if err := feedback.ReadRedisCounts(ctx, rdb, keys, from, to, counts); err != nil {
				e.log.Error().Err(err).Strs("addrs", opts.Addrs).Msg("cannot read the counters from Redis")
				return exitSkipped
			}
			read = append(read, "redis "+strings.Join(opts.Addrs, ","))
		}
		failed := false
		for _, src := range args {
			if err := readReportSource(ctx, e, src, inFmt, counts, month); err != nil {
				e.log.Error().Err(err).Str("source", src).Msg("cannot read source")
				failed = true
				if *strict || ctx.Err() != nil {
					return exitSkipped
				}
				continue
			}
			read = append(read, src)
			if *strict && counts.SkippedTotal() > 0 {
				e.log.Error().Str("source", src).Msg("a record was skipped (--strict)")
				return exitSkipped
			}
		}

		rep, err := report.Analyze(counts, report.Options{Month: month, Location: loc, Classifier: cl})
		if errors.Is(err, report.ErrNoData) {
			ev := e.log.Error().Err(err).Str("sources", strings.Join(read, ", "))
			if n := counts.SkippedTotal(); n > 0 {
				ev = ev.Int64("skipped", n)
				ev.Msgf("no data for %s in the sources read; %d records could not be read (wrong --input-format?)", month, n)
				return exitSkipped
			}
			ev.Msgf("no data for %s in the sources read", month)
			return exitSkipped
		}
		if err != nil {
			e.log.Error().Err(err).Msg("cannot analyse")
			return exitSkipped
		}
		if err := writeOut(*outPath, e.stdout, func(w io.Writer) error { return write(w, rep) }); err != nil {
			e.log.Error().Err(err).Msg("cannot write the report")
			return exitSkipped
		}
		if n := counts.SkippedTotal(); n > 0 {
			e.log.Warn().Int64("skipped", n).Msg("some records were skipped; they are listed in the report")
			return exitSkipped
		}
		if failed {
			return exitSkipped
		}
		return exitOK
	}
}

// readReportSource opens src ("-" for stdin) and counts it, with a
// progress bar on a terminal. A regular file is read with
// feedback.ReadSourceAt, in parallel when it is large NDJSON.
func readReportSource(ctx context.Context, e *env, src string, f feedback.Format, c *report.Counts, month report.Month) error {
	var r io.Reader = e.stdin
	var size int64
	if src != "-" {
		file, err := os.Open(src)
		if err != nil {
			return err
		}
		defer file.Close()
		if st, err := file.Stat(); err == nil {
			if st.IsDir() {
				return fmt.Errorf("%s is a folder; give the files", src)
			}
			if st.Mode().IsRegular() {
				p := newProgress(e.stderr, filepath.Base(src), st.Size())
				defer p.finish()
				var opts feedback.ReadOptions
				if p != nil {
					opts.ProgressFunc = func(n int64) { p.read.Add(n) }
				}
				return feedback.ReadSourceAt(ctx, src, file, st.Size(), f, c, month, opts)
			}
			size = st.Size()
		}
		r = file
	}
	p := newProgress(e.stderr, filepath.Base(src), size)
	defer p.finish()
	return feedback.ReadSource(ctx, src, p.reader(r), f, c, month)
}

// writeOut writes through fn to the file at path, or to stdout when path
// is empty. A file is written beside its final name and renamed, so a
// failed run leaves no half report.
func writeOut(path string, stdout io.Writer, fn func(io.Writer) error) error {
	if path == "" {
		return fn(stdout)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := fn(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// CreateTemp makes the file 0600: give it the mode of the file it
	// replaces, or the usual 0644 of a new report.
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
