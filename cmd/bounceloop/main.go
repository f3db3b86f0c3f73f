// Command bounceloop is the drop-in sending queue and bounce analyser for
// email campaigns. Run "bounceloop help" for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rs/zerolog"
	"golang.org/x/term"

	_ "time/tzdata" // --tz works where the system has no zoneinfo

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/cmd/bounceloop/internal/config"
)

// Exit statuses, the same for every command.
const (
	exitOK      = 0 // everything was read
	exitSkipped = 1 // some records were skipped or an input could not be read
	exitUsage   = 2 // bad flags, arguments or config
)

const usage = `bounceloop — a sending queue for email campaigns that learns from its bounces.

Usage:
  bounceloop COMMAND [flags] [arguments]

Commands:
  classify   diagnose SMTP answers given as arguments or one per line on stdin
  dsn        parse bounce messages (files, .eml folders, Maildirs, mboxes, -)
  report     the monthly root-cause analysis (export CSV, NDJSON, Postfix logs, Redis)
  demo       send a campaign to a simulated world of SMTP servers, no setup
  serve      run the sending queue: workers, web UI, metrics
  enqueue    enqueue a campaign: one message per recipient of a CSV
  ingest     apply later bounces (DSN/ARF mail, Maildirs, mboxes, NDJSON, Postfix logs)
  domains    each rate key's configured and adaptive rate, pauses; "domains resume QUEUE"
  suppressions  list|add|remove|export the suppression list
  help       show this text, or "help COMMAND" for a command's flags

Flags may come before or after the arguments. Flags every command takes:
  --config FILE      config.toml to use (default: $BOUNCELOOP_CONFIG, else built-in defaults)
  --log-level LEVEL  debug, info, warn or error (default info); logs go to stderr,
                     human-readable on a terminal, JSON otherwise

Exit status: 0 everything was read, 1 some records were skipped or an input
could not be read, 2 usage or config error.
`

// command is one subcommand: its flag set is built by flags, run does the work.
type command struct {
	name  string
	short string
	flags func(fs *flag.FlagSet) func(ctx context.Context, env *env, args []string) int
}

// env is what main hands every command.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    zerolog.Logger
	cfg    config.Config
	// configPath is the file cfg came from ("" for the built-in defaults).
	configPath string
}

func commands() []command {
	return []command{
		{name: "classify", short: "diagnose SMTP answers", flags: classifyCommand},
		{name: "dsn", short: "parse bounce messages", flags: dsnCommand},
		{name: "report", short: "the monthly root-cause analysis", flags: reportCommand},
		{name: "serve", short: "run the sending queue", flags: serveCommand},
		{name: "enqueue", short: "enqueue a campaign from a CSV", flags: enqueueCommand},
		{name: "ingest", short: "apply later bounces: DSN/ARF mail, NDJSON, Postfix logs", flags: ingestCommand},
		{name: "demo", short: "a campaign to a simulated world, no setup", flags: demoCommand},
		{name: "domains", short: "rates and pauses of each domain; resume a queue", flags: domainsCommand},
		{name: "suppressions", short: "list, add, remove, export the suppression list", flags: suppressionsCommand},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it parses args, sets up logging and
// config, runs the command and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		if len(args) >= 2 && args[0] == "help" {
			return run(ctx, []string{args[1], "--help"}, stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == args[0] {
			cmd = &c
			break
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "bounceloop: unknown command %q (try \"bounceloop help\")\n", args[0])
		return exitUsage
	}
	fs := flag.NewFlagSet("bounceloop "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", os.Getenv("BOUNCELOOP_CONFIG"), "config.toml to use (default $BOUNCELOOP_CONFIG, else built-in defaults)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	runFn := cmd.flags(fs)
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	log, err := newLogger(*logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bounceloop: %v\n", err)
		return exitUsage
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "bounceloop: %v\n", err)
		return exitUsage
	}
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, log: log.With().Str("command", cmd.name).Logger(), cfg: cfg, configPath: *configPath}
	return runFn(ctx, e, positional)
}

// parseInterspersed parses flags anywhere among the arguments ("dsn
// box.mbox --json"); "--" ends the flags. It returns the positional
// arguments in order.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// newLogger builds the root logger: console output when w is a terminal,
// JSON lines otherwise; addresses in lines above debug are redacted.
func newLogger(level string, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || level == "" {
		return zerolog.Logger{}, fmt.Errorf("--log-level: unknown level %q (want debug, info, warn or error)", level)
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		w = zerolog.ConsoleWriter{Out: f, TimeFormat: "15:04:05"}
	}
	// Workers, the web side and the config watcher log at once: one write
	// at a time, whatever w is. No address above debug (redactWriter).
	return zerolog.New(zerolog.SyncWriter(redactWriter{w: w})).Level(lvl).With().Timestamp().Logger(), nil
}

// newClassifier builds the classifier from the built-in rules and the
// operator's rules in config.
func newClassifier(cfg config.Config) (*bounces.Classifier, error) {
	rules, err := cfg.Bounces.Rules()
	if err != nil {
		return nil, err
	}
	return bounces.NewClassifier(rules...)
}

// skipReporter logs skipped records and counts them; with strict set the
// first one is fatal.
type skipReporter struct {
	log    zerolog.Logger
	strict bool
	n      int
}

// skip records err and reports whether the command must stop.
func (s *skipReporter) skip(err error) (stop bool) {
	s.n++
	var re *bounces.RecordError
	if errors.As(err, &re) {
		s.log.Warn().Str("location", re.Location()).Str("reason", re.Reason).Msg("skipped record")
	} else {
		s.log.Warn().Err(err).Msg("skipped input")
	}
	return s.strict
}

// status is the exit status for a finished command.
func (s *skipReporter) status() int {
	if s.n > 0 {
		s.log.Warn().Int("skipped", s.n).Msg("some records were skipped")
		return exitSkipped
	}
	return exitOK
}
