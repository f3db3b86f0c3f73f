package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/queue"
)

const domainsHelp = `Usage: bounceloop domains [--json]
       bounceloop domains resume QUEUE

Without arguments: every provider group's queue and rate key with its
configured rate, its current adaptive rate (the feedback loop's, shared
through Redis), when and why it last changed, and whether its queue is
paused and why (a review threshold, a suspension rule), and every domain
(key domain:<d>) or recipient (key recipient:<address>) a suspension rule
of scope domain or recipient holds back, until when and why. "resume QUEUE"
resumes a paused queue and clears its pause note (the web UI's resume does
the first half; the note then stays until this command or the next pause).
The review queue is paused from the first start on: flagged messages wait
there archived with their answer; one run from the web UI is sent when
"resume review" is given.

Redis: [redis] of the config (default 127.0.0.1:6379).

Flags:
`

// domainRow is one line of "domains".
type domainRow struct {
	Key        string  `json:"key"`
	Queue      string  `json:"queue"`
	Configured float64 `json:"configured_per_s"`
	Current    float64 `json:"current_per_s"`
	Changed    string  `json:"changed,omitempty"`
	Why        string  `json:"why,omitempty"`
	Paused     bool    `json:"paused"`
	PauseWhy   string  `json:"pause_reason,omitempty"`
	// HeldUntil and HeldWhy: a suspension rule holds the domain (key
	// "domain:<d>") or the recipient (key "recipient:<address>") back.
	HeldUntil string `json:"held_until,omitempty"`
	HeldWhy   string `json:"held_reason,omitempty"`
}

func domainsCommand(fs *flag.FlagSet) func(context.Context, *env, []string) int {
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), domainsHelp)
		fs.PrintDefaults()
	}
	return func(ctx context.Context, e *env, args []string) int {
		rdb, rc, closeRedis, _, err := redisFor(e, e.cfg, false)
		if err != nil {
			e.log.Error().Err(err).Msg("cannot connect to Redis")
			return exitSkipped
		}
		defer closeRedis()
		loop := feedback.NewLoop(rdb, feedback.Keys{Prefix: rc.KeyPrefix()}, nil)
		insp := asynq.NewInspectorFromRedisClient(rdb)
		defer insp.Close()
		if len(args) > 0 {
			if args[0] != "resume" || len(args) != 2 {
				fmt.Fprintln(e.stderr, "bounceloop domains: want no arguments or \"resume QUEUE\"")
				return exitUsage
			}
			q := args[1]
			if err := insp.UnpauseQueue(q); err != nil && !strings.Contains(err.Error(), "not paused") {
				e.log.Error().Err(err).Str("queue", q).Msg("cannot resume")
				return exitSkipped
			}
			if _, err := loop.ClearPause(ctx, q); err != nil {
				e.log.Warn().Err(err).Msg("cannot clear the pause note")
			}
			fmt.Fprintf(e.stdout, "resumed %s\n", q)
			return exitOK
		}
		keys, err := queue.KeyStates(ctx, e.cfg.Policy.WithDefaults(), loop)
		if err != nil {
			e.log.Error().Err(err).Msg("cannot read the rates")
			return exitSkipped
		}
		pauses, err := loop.Pauses(ctx)
		if err != nil {
			e.log.Error().Err(err).Msg("cannot read the pauses")
			return exitSkipped
		}
		rows := make([]*domainRow, 0, len(keys))
		for _, k := range keys {
			r := &domainRow{Key: k.Key, Queue: k.Queue, Configured: k.Configured.PerSecond(), Current: k.Current.PerSecond(), Why: k.Reason}
			if !k.Changed.IsZero() {
				r.Changed = k.Changed.UTC().Format(time.RFC3339)
			}
			if info, err := insp.GetQueueInfo(r.Queue); err == nil {
				r.Paused = info.Paused
			}
			if p, ok := pauses[r.Queue]; ok {
				r.PauseWhy = p.Reason
			}
			rows = append(rows, r)
		}
		holds, err := loop.Holds(ctx)
		if err != nil {
			e.log.Error().Err(err).Msg("cannot read the holds")
			return exitSkipped
		}
		rows = addHolds(rows, holds, e.cfg.Policy.WithDefaults())
		if *asJSON {
			_ = json.NewEncoder(e.stdout).Encode(rows)
			return exitOK
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tQUEUE\tCONFIGURED/s\tCURRENT/s\tCHANGED\tWHY\tPAUSED")
		for _, r := range rows {
			paused := "no"
			if r.Paused {
				paused = "yes: " + r.PauseWhy
			}
			if r.HeldUntil != "" {
				paused += "; held until " + r.HeldUntil + ": " + r.HeldWhy
			}
			fmt.Fprintf(tw, "%s\t%s\t%g\t%.3g\t%s\t%s\t%s\n", r.Key, r.Queue, r.Configured, r.Current, r.Changed, r.Why, paused)
		}
		_ = tw.Flush()
		return exitOK
	}
}

// addHolds marks the rows of held domains and adds a row for every other
// hold: "domain:<d>" or "recipient:<address>".
func addHolds(rows []*domainRow, holds map[string]feedback.Hold, pol policy.Config) []*domainRow {
	byKey := map[string]*domainRow{}
	for _, r := range rows {
		byKey[r.Key] = r
	}
	fields := make([]string, 0, len(holds))
	for f := range holds {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		h := holds[f]
		key, queue := f, ""
		if d, ok := strings.CutPrefix(f, "domain:"); ok {
			queue = pol.Route(d).Queue
		} else if a, ok := strings.CutPrefix(f, "rcpt:"); ok {
			key = "recipient:" + a
			if at := strings.LastIndexByte(a, '@'); at >= 0 {
				queue = pol.Route(a[at+1:]).Queue
			}
		}
		r := byKey[key]
		if r == nil {
			r = &domainRow{Key: key, Queue: queue}
			rows = append(rows, r)
			byKey[key] = r
		}
		r.HeldUntil = h.Until.UTC().Format(time.RFC3339)
		r.HeldWhy = "rule " + h.Rule + ": " + h.Reason
	}
	return rows
}

const suppressionsHelp = `Usage: bounceloop suppressions list [--csv]
       bounceloop suppressions add ADDRESS [--class CLASS] [--reason TEXT]
       bounceloop suppressions remove ADDRESS
       bounceloop suppressions export --csv

The suppression list (Redis, shared by every process): an address on it is
refused at enqueue and skipped before sending (counted as 605). The loop adds
invalid recipients, complaints and addresses that stayed full. list prints
address, class, code, time, campaign and answer; --csv (and export) writes
CSV with a header.

Redis: [redis] of the config (default 127.0.0.1:6379).

Flags:
`

func suppressionsCommand(fs *flag.FlagSet) func(context.Context, *env, []string) int {
	asCSV := fs.Bool("csv", false, "CSV output (list, export)")
	class := fs.String("class", "invalid_recipient", "class of an added address")
	reason := fs.String("reason", "added by an operator", "answer text of an added address")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), suppressionsHelp)
		fs.PrintDefaults()
	}
	return func(ctx context.Context, e *env, args []string) int {
		if len(args) == 0 {
			fmt.Fprintln(e.stderr, "bounceloop suppressions: want list, add ADDRESS, remove ADDRESS or export")
			return exitUsage
		}
		sub, rest := args[0], args[1:]
		rdb, rc, closeRedis, _, err := redisFor(e, e.cfg, false)
		if err != nil {
			e.log.Error().Err(err).Msg("cannot connect to Redis")
			return exitSkipped
		}
		defer closeRedis()
		sup := feedback.NewSuppressions(rdb, feedback.Keys{Prefix: rc.KeyPrefix()})
		switch sub {
		case "list", "export":
			if sub == "export" {
				*asCSV = true
			}
			var w *csv.Writer
			var tw *tabwriter.Writer
			if *asCSV {
				w = csv.NewWriter(e.stdout)
				_ = w.Write(feedback.SuppressionCSVHeader)
			} else {
				tw = tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "ADDRESS\tCLASS\tCODE\tTIME\tCAMPAIGN\tANSWER")
			}
			n := 0
			err := sup.List(ctx, func(a feedback.SuppressedAddress) error {
				n++
				at := ""
				if !a.Time.IsZero() {
					at = a.Time.UTC().Format(time.RFC3339)
				}
				if w != nil {
					return w.Write(a.CSVRecord())
				}
				_, err := fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", a.Address, a.Class, a.Code, at, a.Campaign, a.Answer)
				return err
			})
			if w != nil {
				w.Flush()
			} else {
				_ = tw.Flush()
			}
			if err != nil {
				e.log.Error().Err(err).Msg("cannot list the suppressions")
				return exitSkipped
			}
			return exitOK
		case "add", "remove":
			if len(rest) != 1 {
				fmt.Fprintf(e.stderr, "bounceloop suppressions %s: want one ADDRESS\n", sub)
				return exitUsage
			}
			addr := rest[0]
			if _, err := queue.CheckAddress(addr); err != nil {
				fmt.Fprintf(e.stderr, "bounceloop suppressions %s: %v\n", sub, err)
				return exitUsage
			}
			if sub == "remove" {
				ok, err := sup.Remove(ctx, addr)
				if err != nil {
					e.log.Error().Err(err).Msg("cannot remove")
					return exitSkipped
				}
				if !ok {
					fmt.Fprintln(e.stdout, "not suppressed")
					return exitSkipped
				}
				fmt.Fprintln(e.stdout, "removed")
				return exitOK
			}
			c, err := bounces.ParseClass(*class)
			if err != nil {
				fmt.Fprintf(e.stderr, "bounceloop suppressions add: --class: %v\n", err)
				return exitUsage
			}
			if err := sup.Add(ctx, addr, feedback.Suppression{Class: c, Code: 605, Answer: *reason, Time: time.Now()}); err != nil {
				e.log.Error().Err(err).Msg("cannot add")
				return exitSkipped
			}
			fmt.Fprintln(e.stdout, "added")
			return exitOK
		}
		fmt.Fprintf(e.stderr, "bounceloop suppressions: unknown subcommand %q\n", sub)
		return exitUsage
	}
}
