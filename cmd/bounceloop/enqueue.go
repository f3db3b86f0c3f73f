package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/queue"
)

const enqueueHelp = `Usage: bounceloop enqueue --campaign NAME --template NAME --recipients FILE.csv|- [flags]

Enqueues one message per recipient of a CSV file: a header row with an
"email" column; optional "message_id" and "from" columns; every other column
is a template field. A row without message_id gets one derived from the
campaign and the address, so enqueueing the same file again enqueues nothing
twice (those rows count as duplicates).

Each row is checked before it is enqueued: the address (syntax, no CR or LF,
a domain), the template (it must exist and render with the row's fields) and
the suppression list (suppressed recipients are refused and counted as 605).
At the end a summary: enqueued, duplicates, suppressed, invalid with line
numbers and reasons. Exit status 1 when any row was invalid or unreadable.

Redis: [redis] of the config (default 127.0.0.1:6379).

Flags:
`

// enqueueSummary is the end-of-run summary (--json prints it).
type enqueueSummary struct {
	Enqueued   int              `json:"enqueued"`
	Duplicates int              `json:"duplicates"`
	Suppressed int              `json:"suppressed"`
	Invalid    []enqueueInvalid `json:"invalid"`
	DurationS  float64          `json:"duration_s"`
}

type enqueueInvalid struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

func enqueueCommand(fs *flag.FlagSet) func(context.Context, *env, []string) int {
	campaign := fs.String("campaign", "", "the campaign's name (required)")
	template := fs.String("template", "", "the template's name (required)")
	recipients := fs.String("recipients", "", "the recipients CSV, or - for standard input (required)")
	from := fs.String("from", "", "sender address (default: [queue] from)")
	batch := fs.Int("batch", 500, "messages per Redis round trip")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), enqueueHelp)
		fs.PrintDefaults()
	}
	return func(ctx context.Context, e *env, args []string) int {
		switch {
		case *campaign == "" || *template == "" || *recipients == "":
			fmt.Fprintln(e.stderr, "bounceloop enqueue: --campaign, --template and --recipients are required")
			return exitUsage
		case len(args) > 0:
			fmt.Fprintf(e.stderr, "bounceloop enqueue: unexpected arguments %q\n", args)
			return exitUsage
		case *batch < 1 || *batch > 10000:
			fmt.Fprintln(e.stderr, "bounceloop enqueue: --batch must be in 1..10000")
			return exitUsage
		}
		cfg := e.cfg
		if *from != "" {
			if _, err := queue.CheckAddress(*from); err != nil {
				fmt.Fprintf(e.stderr, "bounceloop enqueue: --from: %v\n", err)
				return exitUsage
			}
			cfg.Queue.From = *from
		}
		tpl, err := cfg.Templates.Open()
		if err != nil {
			fmt.Fprintf(e.stderr, "bounceloop enqueue: %v\n", err)
			return exitUsage
		}
		var in io.Reader = e.stdin
		var size int64
		if *recipients != "-" {
			f, err := os.Open(*recipients)
			if err != nil {
				fmt.Fprintf(e.stderr, "bounceloop enqueue: %v\n", err)
				return exitUsage
			}
			defer f.Close()
			if st, err := f.Stat(); err == nil {
				size = st.Size()
			}
			in = f
		}
		rdb, rc, closeRedis, _, err := redisFor(e, cfg, false)
		if err != nil {
			e.log.Error().Err(err).Msg("cannot connect to Redis")
			return exitSkipped
		}
		defer closeRedis()
		keys := feedback.Keys{Prefix: rc.KeyPrefix()}
		rec := feedback.NewRecorder(rdb, keys)
		client := queue.NewClient(rdb, queue.ClientOptions{
			Config: cfg.Queue, Policy: cfg.Policy.WithDefaults(), Templates: tpl,
			Suppressions: feedback.NewSuppressions(rdb, keys), Recorder: rec,
		})

		p := newProgress(e.stderr, "enqueue", size)
		rr, err := queue.NewRecipientReader(p.reader(in), *recipients, *campaign, *template)
		if err != nil {
			p.finish()
			fmt.Fprintf(e.stderr, "bounceloop enqueue: %v\n", err)
			return exitUsage
		}
		rr.DefaultFrom = client.From()
		start := time.Now()
		sum := enqueueSummary{Invalid: []enqueueInvalid{}}
		var msgs []queue.Message
		var lines []int
		flush := func() error {
			if len(msgs) == 0 {
				return nil
			}
			res, err := client.EnqueueBatch(ctx, msgs)
			if err != nil {
				return err
			}
			for i, r := range res {
				switch r.Status {
				case queue.StatusEnqueued:
					sum.Enqueued++
				case queue.StatusDuplicate:
					sum.Duplicates++
				case queue.StatusSuppressed:
					sum.Suppressed++
				default:
					sum.Invalid = append(sum.Invalid, enqueueInvalid{Line: lines[i], Reason: r.Reason})
				}
			}
			msgs, lines = msgs[:0], lines[:0]
			return nil
		}
		failed := false
		for {
			m, line, err := rr.Next()
			if err == io.EOF {
				break
			}
			var re *bounces.RecordError
			if errors.As(err, &re) {
				sum.Invalid = append(sum.Invalid, enqueueInvalid{Line: re.Line, Reason: re.Reason})
				continue
			}
			if err != nil {
				e.log.Error().Err(err).Msg("cannot read the recipients")
				failed = true
				break
			}
			msgs, lines = append(msgs, m), append(lines, line)
			if len(msgs) >= *batch {
				if err := flush(); err != nil {
					e.log.Error().Err(err).Msg("cannot enqueue; rows before this batch are enqueued, run the same command again to finish (duplicates are skipped)")
					failed = true
					break
				}
			}
		}
		if !failed {
			if err := flush(); err != nil {
				e.log.Error().Err(err).Msg("cannot enqueue; run the same command again to finish (duplicates are skipped)")
				failed = true
			}
		}
		p.finish()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := rec.Flush(fctx); err != nil {
			e.log.Warn().Err(err).Msg("cannot count the suppressed recipients")
		}
		cancel()
		sum.DurationS = time.Since(start).Seconds()
		if *asJSON {
			enc := json.NewEncoder(e.stdout)
			_ = enc.Encode(sum)
		} else {
			fmt.Fprintf(e.stdout, "enqueued %d, duplicates %d, suppressed %d, invalid %d in %.1fs\n",
				sum.Enqueued, sum.Duplicates, sum.Suppressed, len(sum.Invalid), sum.DurationS)
			for _, inv := range sum.Invalid {
				fmt.Fprintf(e.stdout, "  line %d: %s\n", inv.Line, inv.Reason)
			}
		}
		if failed || len(sum.Invalid) > 0 {
			return exitSkipped
		}
		return exitOK
	}
}
