package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/bounceloop/bounceloop/bounces"
)

const dsnHelp = `Usage: bounceloop dsn [--json] [--strict] PATH ...

Parses bounce messages and prints one record per recipient a message reports
on (failed, delayed, delivered, complained about, auto-replied), in the order
the message lists them. PATH is a message file, a folder of .eml files, a
Maildir (cur/ and new/), an mbox, or - for one message on standard input.
RFC 3464 delivery status notifications, the common non-standard bounces
(Postfix, Exim, Sendmail, qmail, Exchange, Gmail, Yahoo, Amazon SES, ...),
ARF feedback reports (complaints) and automatic replies are understood.

Output, one line per recipient:
  FILE  RECIPIENT  ACTION  CLASS  hard|soft  RULE  TEXT
or with --json one object per recipient:
  {"file","recipient","code","enhanced","text","class","hard","rule","action","feedback_type"}
A message that is not a bounce, or cannot be read, is reported on stderr with
its location and skipped (exit status 1), and reading goes on with the next
one: a file of a folder or Maildir that cannot be opened (a broken symbolic
link, a file a mail program moved away meanwhile), a message longer than
16 MiB (skipped, not truncated), and a folder with no .eml file ("no
messages in DIR"). An empty Maildir is not an error: it is noted on stderr
and the status stays 0.

Flags:
`

// dsnRecord is one line of "dsn --json".
type dsnRecord struct {
	File         string         `json:"file"`
	Recipient    string         `json:"recipient"`
	Code         int            `json:"code"`
	Enhanced     string         `json:"enhanced"`
	Text         string         `json:"text"`
	Class        bounces.Class  `json:"class"`
	Hard         bool           `json:"hard"`
	Rule         string         `json:"rule"`
	Action       bounces.Action `json:"action"`
	FeedbackType string         `json:"feedback_type"`
}

func dsnCommand(fs *flag.FlagSet) func(context.Context, *env, []string) int {
	asJSON := fs.Bool("json", false, "print one JSON object per recipient")
	strict := fs.Bool("strict", false, "stop at the first message that cannot be read")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), dsnHelp)
		fs.PrintDefaults()
	}
	return func(ctx context.Context, e *env, args []string) int {
		if len(args) == 0 {
			fmt.Fprintln(e.stderr, "bounceloop dsn: no PATH given (use - for standard input)")
			return exitUsage
		}
		cl, err := newClassifier(e.cfg)
		if err != nil {
			e.log.Error().Err(err).Msg("cannot build the classifier")
			return exitUsage
		}
		out := bufio.NewWriterSize(e.stdout, 64<<10)
		defer out.Flush()
		enc := json.NewEncoder(out)
		enc.SetEscapeHTML(false)
		skips := &skipReporter{log: e.log, strict: *strict}
		errStop := errors.New("stop")
		for _, path := range args {
			seen := 0 // messages and records of path
			err := bounces.ParseMessages(path, func(name string, reports []bounces.Report, err error) error {
				seen++
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err != nil {
					if skips.skip(err) {
						return errStop
					}
					return nil
				}
				for _, rep := range reports {
					d := rep.Diagnose(cl)
					if *asJSON {
						err = enc.Encode(dsnRecord{File: name, Recipient: rep.Recipient, Code: rep.Reply.Code, Enhanced: rep.Reply.Enhanced,
							Text: rep.Reply.Text, Class: d.Class, Hard: d.Hard, Rule: d.Rule, Action: rep.Action, FeedbackType: rep.FeedbackType})
					} else {
						hard := "soft"
						if d.Hard {
							hard = "hard"
						}
						_, err = fmt.Fprintf(out, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, rep.Recipient, rep.Action, d.Class, hard, d.Rule, rep.Reply.Text)
					}
					if err != nil {
						return fmt.Errorf("write output: %w", err)
					}
				}
				return nil
			})
			switch {
			case errors.Is(err, errStop):
				return exitSkipped
			case ctx.Err() != nil:
				e.log.Warn().Msg("interrupted")
				return exitSkipped
			case err != nil:
				if skips.skip(fmt.Errorf("%s: %w", path, err)) {
					return exitSkipped
				}
			case seen == 0:
				// Only an empty Maildir gives nothing at all (a folder
				// without .eml files is a skipped record).
				e.log.Info().Str("path", path).Msg("no messages (an empty Maildir)")
			}
		}
		return skips.status()
	}
}
