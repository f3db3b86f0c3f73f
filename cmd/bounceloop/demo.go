package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"

	"golang.org/x/term"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback/report"
	"github.com/bounceloop/bounceloop/queue"
)

const demoHelp = `Usage: bounceloop demo [--messages N] [--second=false] [--report=false] [--json] [--serve]

One command, no setup: an embedded Redis (or the config's [redis], whose
asynq queues it then fills: use a database of its own), a simulated receiving world of real
SMTP servers on loopback scripted from the original analysis (Gmail defers
above a hidden rate, centrum.sk blocks as spam, yahoo.com answers "552 ...
mailbox not found", each domain refuses unknown users in its own words),
the config (--config, default the built-in defaults, which are the shipped
config.toml) and the shipped templates. A campaign of N recipients over the
analysis' domains in its proportions is enqueued and sent; time is
compressed (rates ×--speedup, retry delays ÷--speedup) so that the default
run ends in a minute or so. At the end a per-domain summary: attempts,
delivered, answers by class, effective rate.

Then (--second, on by default) a second campaign goes to the same list:
the addresses the first suppressed get 605 — refused at enqueue, or right
before sending for those suppressed meanwhile — and Gmail starts at the
rate the loop learned. Last (--report, on by default) the monthly
root-cause report of the demo's own counters (this month, UTC), as
"bounceloop report" builds it, in Markdown.

With --json the output is one object:
  {"messages","delivered","by_class":{CLASS:N},
   "domains":{DOMAIN:{"attempts","delivered","by_class","rate_per_s"}},"duration_s",
   "suppressed","resent_small","review","paused":[QUEUE],"rates":{DOMAIN:RATE_PER_S},
   "second":{"campaign","messages","enqueued","delivered","suppressed_at_enqueue",
             "suppressed_at_send","by_class","duration_s"},
   "report":{the report's JSON, as "bounceloop report --format json"}}
With --serve the web UI ([web] listen, default 127.0.0.1:8080/monitoring)
stays up after the run until SIGINT: open on a loopback listener when no
credentials are configured (the demo's own data), else behind [web]'s.

Flags:
`

func demoCommand(fs *flag.FlagSet) func(context.Context, *env, []string) int {
	messages := fs.Int("messages", 20000, "recipients of the demo campaign")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object")
	serve := fs.Bool("serve", false, "keep the web UI up after the run, until SIGINT")
	speedup := fs.Float64("speedup", 120, "time compression: rates are multiplied, retry delays divided by it")
	seed := fs.Int64("seed", 1, "seed of the simulated world and the campaign")
	second := fs.Bool("second", true, "send a second campaign to the same list (605 for the suppressed)")
	withReport := fs.Bool("report", true, "print the monthly report of the demo's own counters")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), demoHelp)
		fs.PrintDefaults()
	}
	return func(ctx context.Context, e *env, args []string) int {
		switch {
		case len(args) > 0:
			fmt.Fprintf(e.stderr, "bounceloop demo: unexpected arguments %q\n", args)
			return exitUsage
		case *messages < 1 || *messages > 1000000:
			fmt.Fprintln(e.stderr, "bounceloop demo: --messages must be in 1..1000000")
			return exitUsage
		case *speedup <= 0 || *speedup > 1000:
			fmt.Fprintln(e.stderr, "bounceloop demo: --speedup must be in (0, 1000]")
			return exitUsage
		}
		cfg := e.cfg
		rdb, rc, closeRedis, embedded, err := redisFor(e, cfg, true)
		if err != nil {
			e.log.Error().Err(err).Msg("cannot start the embedded Redis")
			return exitSkipped
		}
		defer closeRedis()
		cl, err := newClassifier(cfg)
		if err != nil {
			e.log.Error().Err(err).Msg("cannot build the classifier")
			return exitUsage
		}
		tpl, err := cfg.Templates.Open()
		if err != nil {
			e.log.Error().Err(err).Msg("cannot open the templates")
			return exitUsage
		}
		web := cfg.Web
		if !*serve {
			web.Listen = "off"
		} else if openDemoUI(web) {
			// The demo's own data on loopback, nobody else's: the UI opens
			// without credentials unless some are configured.
			web.Open = true
		}
		opts := queue.DemoOptions{
			Messages: *messages, Seed: *seed, Speedup: *speedup, Policy: cfg.Policy, Queue: cfg.Queue, Web: web,
			Templates: tpl, Classifier: cl, Log: e.log, SingleProcess: embedded, Second: *second,
		}
		if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			opts.Progress = func(final, total int) {
				fmt.Fprintf(e.stderr, "\r\033[Kdemo: %d of %d messages in a final state", final, total)
			}
		}
		d, err := queue.StartDemo(rdb, queue.RedisConnOpt(rc), opts)
		if err != nil {
			e.log.Error().Err(err).Msg("cannot start the demo")
			return exitSkipped
		}
		defer d.Close()
		sum, err := d.Run(ctx, opts)
		if opts.Progress != nil {
			fmt.Fprint(e.stderr, "\r\033[K")
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			e.log.Error().Err(err).Msg("demo failed")
			return exitSkipped
		}
		var rep *report.Report
		if *withReport && err == nil {
			if rep, err = d.Report(ctx); err != nil {
				e.log.Error().Err(err).Msg("cannot build the demo's report")
				return exitSkipped
			}
		}
		if *asJSON {
			out := struct {
				queue.DemoSummary
				Report json.RawMessage `json:"report,omitempty"`
			}{DemoSummary: sum}
			if rep != nil {
				var b bytes.Buffer
				if err := report.WriteJSON(&b, rep); err != nil {
					return exitSkipped
				}
				out.Report = b.Bytes()
			}
			if err := json.NewEncoder(e.stdout).Encode(out); err != nil {
				return exitSkipped
			}
		} else {
			printDemo(e, sum)
			if rep != nil {
				fmt.Fprint(e.stdout, "\n")
				if err := report.WriteMarkdown(e.stdout, rep); err != nil {
					return exitSkipped
				}
			}
		}
		if *serve && ctx.Err() == nil {
			e.log.Info().Str("ui", "http://"+d.Stack.Server.Addr()+"/monitoring/").Msg("the web UI stays up; SIGINT to stop")
			<-ctx.Done()
		}
		if ctx.Err() != nil && !*serve {
			return exitSkipped
		}
		return exitOK
	}
}

// printDemo writes the summary as a table.
func printDemo(e *env, s queue.DemoSummary) {
	var classes []string
	for c := range s.ByClass {
		classes = append(classes, c)
	}
	sort.Slice(classes, func(i, j int) bool {
		ci, _ := bounces.ParseClass(classes[i])
		cj, _ := bounces.ParseClass(classes[j])
		return ci < cj
	})
	fmt.Fprintf(e.stdout, "%d messages in %.1fs: %d delivered, %d suppressed, %d resent small, %d flagged for review",
		s.Messages, s.DurationS, s.Delivered, s.Suppressed, s.ResentSmall, s.Review)
	if len(s.Paused) > 0 {
		fmt.Fprintf(e.stdout, "; paused for review: %s", strings.Join(s.Paused, ", "))
	}
	fmt.Fprint(e.stdout, "\n\n")
	fmt.Fprintf(e.stdout, "%-12s %9s %9s %8s %9s  %s\n", "domain", "attempts", "delivered", "sent/s", "rate now", "answers by class")
	for _, d := range s.DomainsByAttempts() {
		dd := s.Domains[d]
		var parts []string
		for _, c := range classes {
			if n := dd.ByClass[c]; n > 0 && c != "delivered" {
				parts = append(parts, fmt.Sprintf("%s %d", c, n))
			}
		}
		fmt.Fprintf(e.stdout, "%-12s %9d %9d %8.1f %9.1f  %s\n", d, dd.Attempts, dd.Delivered, dd.RatePerS, s.Rates[d], strings.Join(parts, ", "))
	}
	if sec := s.Second; sec != nil {
		fmt.Fprintf(e.stdout, "\nsecond campaign %s to the same %d recipients in %.1fs: %d refused at enqueue as suppressed (605), %d suppressed before sending (605), %d enqueued, %d delivered\n",
			sec.Campaign, sec.Messages, sec.DurationS, sec.SuppressedAtEnqueue, sec.SuppressedAtSend, sec.Enqueued, sec.Delivered)
	}
}

// openDemoUI reports whether demo --serve may open its web UI without
// credentials: none is configured (file or environment) and the listener
// is on loopback.
func openDemoUI(w queue.WebConfig) bool {
	d := w.WithDefaults()
	if d.Open || d.Username != "" || d.Password != "" || d.Token != "" || d.ViewerUsername != "" || d.ViewerPassword != "" || d.ViewerToken != "" {
		return false
	}
	host, _, err := net.SplitHostPort(d.Listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
