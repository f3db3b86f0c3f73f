package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/queue"
)

const ingestHelp = `Usage: bounceloop ingest [--input-format auto|ndjson|postfix|dsn] [flags] PATH|- ...

Applies later bounces to the queue's state in Redis, as serve applies the
answers of its own SMTP transactions and the webhook (POST /bounces) the
events pushed to it: each bounce is matched to the message it reports on
by its message id (the server keeps a record of each accepted message for
[queue] sent_record_ttl, default 5 days), diagnosed (a bounce message with
its full report: action, refused SMTP command) and counted (the monthly
report sees it); a hard invalid recipient or an ARF complaint is suppressed
(later campaigns get 605 for it), also when the bounce names no recipient
but its message matched; a message_too_large is remembered for its domain
(its messages use the small template from then on) and a matched message
is resent small as a new task linked to the first. A bounce with no
matching record is counted and suppresses by its own recipient, but cannot
be resent. Each bounce acts once: a file ingested again, or a bounce the
webhook took already, is a duplicate, neither acted on nor counted.

PATH is one of
  - a bounce message (DSN, ARF report, non-standard bounce), a folder of
    .eml files, a Maildir (cur/ and new/) or an mbox: format dsn;
  - NDJSON events in the design's format: format ndjson;
  - a Postfix mail log: format postfix;
  - - for standard input.
With --input-format auto (the default) a folder is mail, and a file (or
standard input) is mail when it starts with a message header or an mbox
"From " line, else NDJSON or a Postfix log as its first bytes tell. The wide
CSV export holds counts, not bounces: use "bounceloop report" for it.
Automatic replies are ignored (the message was delivered).

At the end a summary: events applied, by class, suppressed, ignored; matched
to a sent record, unmatched, duplicates, resent small, not resent and why;
and the records skipped with their locations (file:line, or the message).
Exit status 1 when any record was skipped or an input could not be read.

Redis: [redis] of the config, which must be the Redis the server uses;
without [redis] addrs ingest refuses to run (an embedded Redis would forget
everything on exit).

Flags:
`

// The formats ingest reads.
const (
	ingestAuto    = "auto"
	ingestNDJSON  = "ndjson"
	ingestPostfix = "postfix"
	ingestDSN     = "dsn"
)

// ingestSummary is the end-of-run summary (--json prints it). Events and
// Classes count the events applied, duplicates not; LateTally's counts
// are left out when 0.
type ingestSummary struct {
	Events  int            `json:"events"`
	Classes map[string]int `json:"classes"`
	queue.LateTally
	Ignored   int          `json:"ignored"`
	Skipped   []ingestSkip `json:"skipped"`
	DurationS float64      `json:"duration_s"`
}

type ingestSkip struct {
	Location string `json:"location"`
	Reason   string `json:"reason"`
}

// ingestFlushEvery is how many events ingest applies between two flushes
// of the counters; ingestBatch how many it applies at once (one Redis
// round trip to match and claim them).
const (
	ingestFlushEvery = 1000
	ingestBatch      = 500
)

// errIngestStop stops reading: Redis failed or the command was
// interrupted; ingester.fatal says why.
var errIngestStop = errors.New("stop")

func ingestCommand(fs *flag.FlagSet) func(context.Context, *env, []string) int {
	format := fs.String("input-format", ingestAuto, "format of the inputs: auto, ndjson, postfix or dsn")
	year := fs.Int("year", 0, "year of the traditional Postfix timestamps (no year in them; default the current year)")
	tz := fs.String("tz", "UTC", "IANA time zone of the traditional Postfix timestamps")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), ingestHelp)
		fs.PrintDefaults()
	}
	return func(ctx context.Context, e *env, args []string) int {
		switch *format {
		case ingestAuto, ingestNDJSON, ingestPostfix, ingestDSN:
		default:
			fmt.Fprintf(e.stderr, "bounceloop ingest: --input-format: unknown %q (want auto, ndjson, postfix or dsn)\n", *format)
			return exitUsage
		}
		if len(args) == 0 {
			fmt.Fprintln(e.stderr, "bounceloop ingest: no PATH given (use - for standard input)")
			return exitUsage
		}
		loc, err := time.LoadLocation(*tz)
		if err != nil {
			fmt.Fprintf(e.stderr, "bounceloop ingest: --tz: %v\n", err)
			return exitUsage
		}
		if len(e.cfg.Redis.Addrs) == 0 {
			fmt.Fprintln(e.stderr, "bounceloop ingest: [redis] addrs is empty: ingest writes suppressions and counters to the Redis the server uses; name it in the config (an embedded Redis would forget everything on exit)")
			return exitUsage
		}
		rdb, rc, closeRedis, _, err := redisFor(e, e.cfg, false)
		if err != nil {
			e.log.Error().Err(err).Msg("cannot connect to Redis")
			return exitSkipped
		}
		defer closeRedis()
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = rdb.Ping(pctx).Err()
		cancel()
		if err != nil {
			e.log.Error().Err(err).Strs("addrs", rc.Addrs).Msg("Redis does not answer")
			return exitSkipped
		}
		st, err := newStack(e, e.cfg, rdb, rc, false)
		if err != nil {
			e.log.Error().Err(err).Msg("cannot build the queue")
			return exitUsage
		}
		defer st.Shutdown()

		in := &ingester{e: e, st: st, year: *year, loc: loc, sum: ingestSummary{Classes: map[string]int{}, Skipped: []ingestSkip{}}}
		start := time.Now()
		for _, path := range args {
			if err := in.path(ctx, path, *format); err != nil {
				if errors.Is(err, errIngestStop) {
					break
				}
				var pe *os.PathError
				if errors.As(err, &pe) && pe.Path == path {
					err = pe.Err // the location says the path
				}
				in.skip(path, err.Error())
			}
		}
		if in.fatal == nil {
			in.drain(ctx)
		}
		in.flush(ctx)
		in.sum.DurationS = time.Since(start).Seconds()
		in.print(*asJSON)
		if in.fatal != nil {
			e.log.Error().Err(in.fatal).Int("applied", in.sum.Events).Msg("stopped; the events before the failure are applied, run the same command again for the rest")
			return exitSkipped
		}
		if len(in.sum.Skipped) > 0 {
			e.log.Warn().Int("skipped", len(in.sum.Skipped)).Msg("some records were skipped")
			return exitSkipped
		}
		return exitOK
	}
}

// ingester applies the inputs of one ingest run.
type ingester struct {
	e       *env
	st      *queue.Stack
	year    int
	loc     *time.Location
	sum     ingestSummary
	batch   []queue.Late // events read, not yet applied
	pending int          // events since the last flush
	fatal   error        // why reading stopped (Redis, interrupt)
}

func (in *ingester) skip(location, reason string) {
	in.sum.Skipped = append(in.sum.Skipped, ingestSkip{Location: location, Reason: strings.TrimPrefix(reason, "bounces: ")})
}

// skipErr records a parser's error: a *bounces.RecordError with its own
// location, any other error at location.
func (in *ingester) skipErr(location string, err error) {
	var re *bounces.RecordError
	if errors.As(err, &re) {
		in.skip(re.Location(), re.Reason)
		return
	}
	in.skip(location, err.Error())
}

// apply ingests one event found at location, with the report it came
// from for a bounce message (nil otherwise); events are applied in
// batches. An error (errIngestStop) stops the run.
func (in *ingester) apply(ctx context.Context, location string, ev bounces.Event, rep *bounces.Report) error {
	if err := ctx.Err(); err != nil {
		in.fatal = fmt.Errorf("interrupted: %w", err)
		return errIngestStop
	}
	if err := ev.Normalize(); err != nil {
		in.skip(location, err.Error())
		return nil
	}
	in.batch = append(in.batch, queue.Late{Event: ev, Report: rep})
	if len(in.batch) >= ingestBatch {
		if in.drain(ctx); in.fatal != nil {
			return errIngestStop
		}
	}
	return nil
}

// drain applies the batch of events read; a failure sets fatal.
func (in *ingester) drain(ctx context.Context) {
	if len(in.batch) == 0 {
		return
	}
	results, err := in.st.Handler.IngestBatch(ctx, in.batch)
	in.batch = in.batch[:0]
	for _, r := range results {
		in.sum.Add(r)
		if r.Duplicate {
			continue
		}
		in.sum.Events++
		in.sum.Classes[r.Diagnosis.Class.String()]++
		in.pending++
	}
	if err != nil {
		in.fatal = err
		return
	}
	if in.pending >= ingestFlushEvery {
		in.flush(ctx)
	}
}

// flush writes the counters to Redis.
func (in *ingester) flush(ctx context.Context) {
	in.pending = 0
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := in.st.Recorder.Flush(fctx); err != nil && in.fatal == nil {
		in.fatal = fmt.Errorf("write the counters: %w", err)
	}
}

// path ingests one PATH argument in format (ingestAuto detects it).
func (in *ingester) path(ctx context.Context, path, format string) error {
	if path == "-" {
		br := bufio.NewReaderSize(in.e.stdin, 64<<10)
		f, err := in.detect(br, format)
		if err != nil {
			return err
		}
		if f == ingestDSN {
			return in.dsnStream(ctx, br)
		}
		return in.stream(ctx, "-", br, f)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		if format != ingestAuto && format != ingestDSN {
			return fmt.Errorf("a folder holds mail: --input-format %s reads files only", format)
		}
		return in.dsn(ctx, path, path)
	}
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	br := bufio.NewReaderSize(fh, 64<<10)
	f, err := in.detect(br, format)
	if err != nil {
		return err
	}
	if f == ingestDSN {
		return in.dsn(ctx, path, path)
	}
	return in.stream(ctx, path, br, f)
}

// mailStart matches the first line of a message (a header field) or of
// an mbox.
var mailStart = regexp.MustCompile(`^(?:From |[A-Za-z][A-Za-z0-9-]*:)`)

// detect returns the format of br from its first bytes unless format
// says it.
func (in *ingester) detect(br *bufio.Reader, format string) (string, error) {
	if format != ingestAuto {
		return format, nil
	}
	head, err := br.Peek(64 << 10)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return "", err
	}
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(head)) == 0 {
		return "", errors.New("empty input")
	}
	if mailStart.Match(head) {
		return ingestDSN, nil
	}
	f, ok := feedback.DetectFormat(head)
	switch {
	case ok && f == feedback.FormatNDJSON:
		return ingestNDJSON, nil
	case ok && f == feedback.FormatPostfix:
		return ingestPostfix, nil
	case ok && f == feedback.FormatExport:
		return "", errors.New("the wide CSV export holds counts, not bounces of single recipients: use bounceloop report for it")
	}
	return "", errors.New("cannot tell the format (not mail, NDJSON or a Postfix log); use --input-format")
}

// stream ingests NDJSON events or a Postfix log.
func (in *ingester) stream(ctx context.Context, name string, r io.Reader, format string) error {
	var next func() (bounces.Event, error)
	var line func() string
	switch format {
	case ingestNDJSON:
		nr := bounces.NewNDJSONReader(r, name)
		next, line = nr.Next, func() string { return fmt.Sprintf("%s:%d", name, nr.Lines()) }
	case ingestPostfix:
		pr := bounces.NewPostfixReader(r, name, in.year, in.loc)
		next, line = pr.Next, func() string { return name }
	default:
		return fmt.Errorf("unknown format %q", format)
	}
	for {
		ev, err := next()
		switch {
		case err == io.EOF:
			return nil
		case errors.Is(err, bounces.ErrSkipped):
			in.skipErr(name, err)
			continue
		case err != nil:
			return err
		}
		if err := in.apply(ctx, line(), ev, nil); err != nil {
			return err
		}
	}
}

// dsn ingests the messages at path (a file, an mbox, a folder), naming
// them after shown in place of path.
func (in *ingester) dsn(ctx context.Context, path, shown string) error {
	rename := func(s string) string {
		if shown == path {
			return s
		}
		return shown + strings.TrimPrefix(s, path)
	}
	err := bounces.ParseMessages(path, func(name string, reps []bounces.Report, err error) error {
		name = rename(name)
		if err != nil {
			var re *bounces.RecordError
			if errors.As(err, &re) {
				re.File = rename(re.File)
			}
			in.skipErr(name, err)
			return nil
		}
		for i, rep := range reps {
			loc := name
			if len(reps) > 1 {
				loc = fmt.Sprintf("%s (report %d of %d)", name, i+1, len(reps))
			}
			ev, ok, err := queue.ReportEvent(rep)
			switch {
			case err != nil:
				in.skip(loc, err.Error())
			case !ok:
				in.sum.Ignored++
			default:
				if err := in.apply(ctx, loc, ev, &rep); err != nil { // rep is this iteration's copy
					return err
				}
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errIngestStop) {
		return errors.New(rename(strings.TrimPrefix(err.Error(), "bounces: ")))
	}
	return err
}

// dsnStream ingests mail on standard input (one message or an mbox): it is
// spooled to a temporary file, which bounces.ParseMessages splits.
func (in *ingester) dsnStream(ctx context.Context, r io.Reader) error {
	f, err := os.CreateTemp("", "bounceloop-ingest-*.mbox")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("spool standard input: %w", err)
	}
	return in.dsn(ctx, f.Name(), "-")
}

func (in *ingester) print(asJSON bool) {
	out := in.e.stdout
	if asJSON {
		_ = json.NewEncoder(out).Encode(in.sum)
		return
	}
	classes := make([]string, 0, len(in.sum.Classes))
	for c := range in.sum.Classes {
		classes = append(classes, c)
	}
	sort.Slice(classes, func(i, j int) bool {
		a, b := in.sum.Classes[classes[i]], in.sum.Classes[classes[j]]
		return a > b || a == b && classes[i] < classes[j]
	})
	var by []string
	for _, c := range classes {
		by = append(by, fmt.Sprintf("%s %d", c, in.sum.Classes[c]))
	}
	fmt.Fprintf(out, "events %d, suppressed %d, ignored %d, skipped %d in %.1fs\n",
		in.sum.Events, in.sum.Suppressed, in.sum.Ignored, len(in.sum.Skipped), in.sum.DurationS)
	if len(by) > 0 {
		fmt.Fprintf(out, "  by class: %s\n", strings.Join(by, ", "))
	}
	fmt.Fprintf(out, "  matched to a sent message %d, unmatched %d, duplicates %d (not applied again), resent small %d\n",
		in.sum.Matched, in.sum.Unmatched, in.sum.Duplicates, in.sum.Resent)
	if in.sum.Flagged > 0 {
		fmt.Fprintf(out, "  flagged for review %d (copies in the review queue)\n", in.sum.Flagged)
	}
	if len(in.sum.NotResent) > 0 {
		why := make([]string, 0, len(in.sum.NotResent))
		for w := range in.sum.NotResent {
			why = append(why, w)
		}
		sort.Strings(why)
		for i, w := range why {
			why[i] = fmt.Sprintf("%s %d", w, in.sum.NotResent[w])
		}
		fmt.Fprintf(out, "  too large, not resent: %s\n", strings.Join(why, ", "))
	}
	for _, s := range in.sum.Skipped {
		fmt.Fprintf(out, "  skipped %s: %s\n", s.Location, s.Reason)
	}
}
