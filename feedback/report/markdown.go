package report

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// mdMaxDomains is how many domains the Markdown lists per code and in the
// domain table; the JSON has all of them.
const mdMaxDomains = 25

// WriteMarkdown writes r as Markdown: the original analysis' sections as
// tables, for a terminal or a wiki.
func WriteMarkdown(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	p("# Bounce report %s (%s)\n\n", r.Month, r.Timezone)
	p("Generated %s. ", r.Generated.Format("2006-01-02 15:04 MST"))
	if r.Partial {
		p("The month is still running: days up to %s. ", r.Generated.Format("2006-01-02"))
	}
	p("Days are days in %s. An attempt is any answer: 2xx answers (200 in exports, 250 over SMTP) are delivered, every other code is a failed attempt, including 605 (the address was already suppressed and nothing was sent).\n\n", r.Timezone)
	if r.BucketNote != "" {
		p("> %s\n\n", r.BucketNote)
	}

	p("## Summary\n\n")
	t := r.Totals
	if pr := t.Previous; pr != nil {
		p("| | %s | %s (previous) |\n|---|---:|---:|\n", r.Month, pr.Month)
		p("| attempts | %s | %s |\n", num(t.Attempts), num(pr.Attempts))
		p("| delivered | %s | %s |\n", num(t.Delivered), num(pr.Delivered))
		p("| failed | %s | %s |\n", num(t.Failed), num(pr.Failed))
		p("| failure rate | %s | %s |\n\n", pct(t.FailureRate), pct(pr.FailureRate))
	} else {
		p("| | %s |\n|---|---:|\n", r.Month)
		p("| attempts | %s |\n| delivered | %s |\n| failed | %s |\n| failure rate | %s |\n\n",
			num(t.Attempts), num(t.Delivered), num(t.Failed), pct(t.FailureRate))
	}
	if len(r.Domains) > 0 && t.Attempts > 0 {
		// The analysis' question whether one receiver dominates the list.
		top := r.Domains[0] // sorted by attempts
		share := float64(top.Attempts) / float64(t.Attempts)
		p("Most attempts went to %s: %s of %s (%s)", mdEscape(top.Domain), num(top.Attempts), num(t.Attempts), pct(share))
		if 2*top.Attempts > t.Attempts {
			p(", more than all other domains together (%s)", num(t.Attempts-top.Attempts))
		}
		p(".\n\n")
	}

	p("## Codes\n\nEvery code seen, its class and meaning from the diagnosis rules (for the bare code).\n\n")
	p("| code | class | meaning | count | share of attempts |\n|---:|---|---|---:|---:|\n")
	codes := append([]CodeStat(nil), r.Codes...)
	sort.SliceStable(codes, func(i, j int) bool { return codes[i].Code < codes[j].Code })
	for _, c := range codes {
		p("| %d | %s | %s | %s | %s |\n", c.Code, c.Class, mdEscape(c.Meaning), num(c.Count), pct(c.Share))
	}
	p("\n")

	p("## Failure codes ranked\n\n")
	p("| # | code | class | count | share of failures | share of attempts |\n|---:|---:|---|---:|---:|---:|\n")
	rank := 0
	for _, c := range r.Codes {
		if delivered(c.Code) {
			continue
		}
		rank++
		p("| %d | %d | %s | %s | %s | %s |\n", rank, c.Code, c.Class, num(c.Count), pct(ratio(c.Count, t.Failed)), pct(c.Share))
	}
	if rank == 0 {
		p("| | | no failures | | | |\n")
	}
	p("\n")

	p("## Domains per code\n\nFor each failure code, the domains it hits: the count, its share of the code, and the code's rate among the domain's attempts.\n\n")
	for _, c := range r.Codes {
		if delivered(c.Code) {
			continue
		}
		p("### %d (%s): %s\n\n", c.Code, c.Class, num(c.Count))
		p("| domain | count | share of code | rate at domain |\n|---|---:|---:|---:|\n")
		for i, d := range c.Domains {
			if i == mdMaxDomains {
				p("| … %d more | | | |\n", len(c.Domains)-i)
				break
			}
			p("| %s | %s | %s | %s |\n", mdEscape(d.Domain), num(d.Count), pct(d.ShareOfCode), pct(d.Rate))
		}
		p("\n")
	}

	p("## Domains\n\n")
	p("| domain | attempts | delivered | failure rate |\n|---|---:|---:|---:|\n")
	for i, d := range r.Domains {
		if i == mdMaxDomains {
			p("| … %d more | | | |\n", len(r.Domains)-i)
			break
		}
		p("| %s | %s | %s | %s |\n", mdEscape(d.Domain), num(d.Attempts), num(d.Delivered), pct(d.FailureRate))
	}
	p("\n### Does a code follow the domain's volume?\n\n")
	p("rate r: Pearson's r between the domain's daily attempts and the code's daily rate there, over the days with ≥ %d attempts at the domain (rate days); ", corrMinAttempts)
	p("count r: between the daily attempts and the code's daily count over all the month's days; days: the days on which the code occurred there. – when undefined (fewer than 3 days, or a constant series).\n\n")
	p("| domain | code | count | days | rate days | rate r | count r |\n|---|---:|---:|---:|---:|---:|---:|\n")
	counts := map[string]map[int]int64{}
	for _, c := range r.Codes {
		for _, d := range c.Domains {
			if counts[d.Domain] == nil {
				counts[d.Domain] = map[int]int64{}
			}
			counts[d.Domain][c.Code] = d.Count
		}
	}
	for i, d := range r.Domains {
		if i == mdMaxDomains {
			break
		}
		keys := make([]int, 0, len(d.Correlation))
		for k := range d.Correlation {
			n, _ := strconv.Atoi(k)
			keys = append(keys, n)
		}
		sort.Slice(keys, func(a, b int) bool {
			ca, cb := counts[d.Domain][keys[a]], counts[d.Domain][keys[b]]
			if ca != cb {
				return ca > cb
			}
			return keys[a] < keys[b]
		})
		for _, k := range keys {
			c := d.Correlation[strconv.Itoa(k)]
			p("| %s | %d | %s | %d | %d | %s | %s |\n", mdEscape(d.Domain), k, num(counts[d.Domain][k]), c.Days, c.RateDays, fmtR(c.RateR), fmtR(c.CountR))
		}
	}
	p("\n")

	p("## Findings\n\n")
	if len(r.Findings) == 0 {
		p("None.\n\n")
	}
	for i, f := range r.Findings {
		p("%d. **%s**\n", i+1, findingTitle(f))
		if f.Summary != "" {
			p("    %s\n", mdEscape(f.Summary))
		} else {
			p("    Evidence: %s\n", evidenceText(f.Evidence))
		}
		p("    → %s\n\n", mdEscape(f.Action))
	}

	p("## Skipped records\n\n")
	if r.SkippedTotal == 0 && len(r.Skipped) == 0 {
		p("None.\n")
	} else {
		if r.SkippedTotal > int64(len(r.Skipped)) {
			p("%s records skipped; the first %d:\n\n", num(r.SkippedTotal), len(r.Skipped))
		} else {
			p("%s records skipped:\n\n", num(int64(len(r.Skipped))))
		}
		p("| source | location | reason |\n|---|---|---|\n")
		for _, s := range r.Skipped {
			p("| %s | %s | %s |\n", mdEscape(s.Source), mdEscape(s.Location), mdEscape(s.Reason))
		}
	}
	return bw.Flush()
}

// findingTitle is "554 concentrated at centrum.sk" and the like.
func findingTitle(f Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", f.Code, strings.ReplaceAll(string(f.Kind), "_", " "))
	if f.Domain != "" {
		fmt.Fprintf(&b, " at %s", f.Domain)
	}
	if f.Day != "" {
		fmt.Fprintf(&b, " on %s", f.Day)
	}
	fmt.Fprintf(&b, " (%s)", f.Class)
	return b.String()
}

// evidenceText lists the evidence as "name=value" sorted by name.
func evidenceText(e Evidence) string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.FormatFloat(e[k], 'g', -1, 64)
	}
	return strings.Join(parts, ", ")
}

func fmtR(r *float64) string {
	if r == nil {
		return "–"
	}
	return strconv.FormatFloat(*r, 'f', 2, 64)
}

// mdEscape keeps a value inside its table cell.
func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}
