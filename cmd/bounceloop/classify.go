package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/bounceloop/bounceloop/bounces"
)

const classifyHelp = `Usage: bounceloop classify [--json] [--domain DOMAIN] [--strict] [ANSWER ...]

Diagnoses SMTP answers such as
  550 5.1.1 <jan@azet.sk>: Recipient address rejected: User unknown
given as arguments, or one per line on standard input when there are none
(blank lines are ignored). Output, in input order, one line per answer:
  CLASS  hard|soft  RULE  ANSWER
or with --json one object per answer:
  {"input","code","enhanced","class","hard","rule","explanation"}
where code and enhanced are the codes the diagnosis read: the basic code
(also an export code such as 605 or 499; 0 when there is none) and the
enhanced status code ("" when there is none; the specific code the text
gives for an uninformative x.0.0).
The recipient domain of an answer, when given with --domain, lets
provider-specific rules apply (for example gmail.com).

Flags:
`

// classifyRecord is one line of "classify --json".
type classifyRecord struct {
	Input       string        `json:"input"`
	Code        int           `json:"code"`
	Enhanced    string        `json:"enhanced"`
	Class       bounces.Class `json:"class"`
	Hard        bool          `json:"hard"`
	Rule        string        `json:"rule"`
	Explanation string        `json:"explanation"`
}

// maxAnswerLine is the longest answer line classify reads; longer lines are
// skipped with their line number.
const maxAnswerLine = 64 << 10

func classifyCommand(fs *flag.FlagSet) func(context.Context, *env, []string) int {
	asJSON := fs.Bool("json", false, "print one JSON object per answer")
	domain := fs.String("domain", "", "recipient domain of the answers (enables provider rules)")
	strict := fs.Bool("strict", false, "stop at the first line that cannot be read")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), classifyHelp)
		fs.PrintDefaults()
	}
	return func(ctx context.Context, e *env, args []string) int {
		cl, err := newClassifier(e.cfg)
		if err != nil {
			e.log.Error().Err(err).Msg("cannot build the classifier")
			return exitUsage
		}
		dom, err := bounces.NormalizeDomain(*domain)
		if err != nil {
			e.log.Error().Err(err).Msg("--domain")
			return exitUsage
		}
		out := bufio.NewWriterSize(e.stdout, 64<<10)
		defer out.Flush()
		enc := json.NewEncoder(out)
		enc.SetEscapeHTML(false)
		emit := func(line string) error {
			r := bounces.ParseReply(line)
			d := cl.Classify(r, dom)
			if *asJSON {
				// The codes the classifier read: also an export code such
				// as 605, and the specific code behind an x.0.0 status.
				u := r.Effective()
				return enc.Encode(classifyRecord{Input: line, Code: u.Code, Enhanced: u.Enhanced, Class: d.Class, Hard: d.Hard, Rule: d.Rule, Explanation: d.Explanation})
			}
			hard := "soft"
			if d.Hard {
				hard = "hard"
			}
			_, err := fmt.Fprintf(out, "%s\t%s\t%s\t%s\n", d.Class, hard, d.Rule, line)
			return err
		}
		skips := &skipReporter{log: e.log, strict: *strict}
		if len(args) > 0 {
			for _, a := range args {
				if err := emit(a); err != nil {
					e.log.Error().Err(err).Msg("cannot write output")
					return exitSkipped
				}
			}
			return exitOK
		}
		sc := bufio.NewReaderSize(e.stdin, 64<<10)
		for line := 1; ; line++ {
			if line%4096 == 0 && ctx.Err() != nil {
				e.log.Warn().Msg("interrupted")
				return exitSkipped
			}
			text, err := readLine(sc, maxAnswerLine)
			if err == io.EOF {
				break
			}
			if err == errLongLine {
				if skips.skip(&bounces.RecordError{File: "-", Line: line, Offset: -1, Reason: fmt.Sprintf("line longer than %d bytes", maxAnswerLine)}) {
					return exitSkipped
				}
				continue
			}
			if err != nil {
				e.log.Error().Err(err).Msg("cannot read standard input")
				return exitSkipped
			}
			text = strings.TrimRight(text, "\r")
			if strings.TrimSpace(text) == "" {
				continue
			}
			if err := emit(text); err != nil {
				e.log.Error().Err(err).Msg("cannot write output")
				return exitSkipped
			}
		}
		return skips.status()
	}
}
