package bounces

import (
	"encoding/json"
	"regexp"
	"strings"
	"time"

	"golang.org/x/net/html"
)

// This file reads the bounces whose answer is only in the human-readable
// text: Exim, qmail, Sendmail without a DSN part, Gmail, Yahoo, Exchange,
// DragonFly, OpenSMTPD and the many others in the corpus. The approach is
// the same for every family:
//
//  1. take the text parts outside the returned original and cut them at the
//     first sign of the returned original (a "copy of the message" marker
//     line or a block of header fields);
//  2. find the recipients: lines that start with an address ("<a@b>:",
//     "  a@b", "a@b (reason)"), else RCPT TO:<a@b> in a transcript, else any
//     address that is not the sender's or a mailer daemon's;
//  3. for each recipient take the answer: a line holding its address and a
//     reply code (a Sendmail transcript), else the text from its line up to
//     the next recipient, else the paragraph of the whole text that holds a
//     reply code.

// addressRE matches an e-mail address (generously).
var addressRE = regexp.MustCompile(`[A-Za-z0-9!#$%&'*+/=?^_{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+`)

// recipientLineRE matches a line that starts with a recipient address:
// "<a@b>:", "a@b", "  <a@b>", "a@b (reason)", "a@b: reason", "a@b on date",
// "a@b ... reason", "rfc822;a@b".
var recipientLineRE = regexp.MustCompile(`^\s*(?:>>>\s*)?(?:[245][0-9][0-9][ -](?:[245]\.[0-9]{1,3}\.[0-9]{1,3}\s+)?)?(?:[Rr][Ff][Cc]822;\s*)?(?:\*\s*)?["']?<?(?:mailto:)?([A-Za-z0-9!#$%&'*+/=?^_{|}~.-]+@[A-Za-z0-9.-]+[A-Za-z0-9])>?["']?(?:\s*$|\s*:|\s*\(|\s+on\s|\s*\.\.\.|\s+-|\s+<|\s*,\s*$|\s+\[|\s+\S+$)`)

// rcptToRE finds RCPT TO:<a@b> in a transcript.
var rcptToRE = regexp.MustCompile(`(?i)RCPT\s+TO:\s*<?([^\s<>]+@[^\s<>]+?)>?(?:[\s:>]|$)`)

// replyRE finds a basic reply code that starts an answer: at a line start,
// behind "said:", "<<<", ":" or "(", followed by a space, '-' or an
// enhanced code.
var replyRE = regexp.MustCompile(`(?:^|[\s:(\[>"'#])([245][0-9][0-9])(?:[ \-:,][^0-9]|[ \-:]\s*['"]?[245]\.[0-9]|\s*$)`)

// pairedRE finds a basic reply code directly followed by an enhanced code
// ("550 5.1.1", "550-5.7.1", "550-'5.2.2").
var pairedRE = regexp.MustCompile(`(?:^|[^0-9.])([245][0-9][0-9])[ \-:]\s*['"]?([245]\.[0-9]{1,3}\.[0-9]{1,3})(?:[^0-9.]|$)`)

// cutMarkers are lines (lower case, after trimming) that start the returned
// original in plain-text bounces.
var cutMarkers = []string{
	"------ this is a copy of the message",
	"--- below this line is a copy of the message",
	"message headers follow",
	"----- original message -----",
	"-----original message-----",
	"------ original message ------",
	"----- original message follows -----",
	"------- original message follows -------",
	"----- unsent message follows -----",
	"----- returned message follows -----",
	"------- returned message --------",
	"----- message header follows -----",
	"------ the header of the original message",
	"------ original message header",
	"--- the header of the original message is following. ---",
	"original message headers:",
	"original message header:",
	"----- the header of the original message is following. -----",
	"content-type: message/rfc822",
	"content-type: text/rfc822-headers",
	"------ this is a copy of your message",
	"--- original message ---",
	"--------original message-------",
	"the header of the original message is following",
	"the headers of your message",
	"--- original headers ---",
	"-------- original message --------",
	"----- original headers -----",
	"------ received headers ------",
	"----- message text follows -----",
	"------ failed message follows -------",
	"------ failed message headers ------",
	"------ the following is the message header",
	"below is a copy of the original message",
	"original message follows.",
	"this is a copy of the headers",
}

// headerBlockKeys are field names whose block (two or more unindented
// fields in a row) marks a returned header.
var headerBlockKeys = map[string]bool{
	"return-path": true, "received": true, "message-id": true, "date": true, "from": true, "to": true,
	"subject": true, "mime-version": true, "content-type": true, "dkim-signature": true, "delivered-to": true,
	"reply-to": true, "cc": true, "references": true, "in-reply-to": true, "content-transfer-encoding": true,
	"x-mailer": true, "user-agent": true, "sender": true, "authentication-results": true, "received-spf": true,
	"x-original-to": true, "list-unsubscribe": true, "arc-seal": true,
}

// cutOriginal returns s up to the start of the returned original.
func cutOriginal(s string) string {
	lines := strings.SplitAfter(s, "\n")
	off := 0
	prevHeader := -1 // offset of a preceding header-like line
	prevIdx := -2
	sawMachine := false // the block has a field only a message header has
	for i, line := range lines {
		t := strings.ToLower(strings.TrimSpace(line))
		for _, mk := range cutMarkers {
			if strings.HasPrefix(t, mk) {
				return s[:off]
			}
		}
		if h, machine := isHeaderLine(line); h {
			if prevIdx == i-1 && prevHeader >= 0 && (machine || sawMachine) {
				return s[:prevHeader]
			}
			if prevIdx != i-1 {
				prevHeader = off
				sawMachine = false
			}
			sawMachine = sawMachine || machine
			prevIdx = i
		} else if (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) && prevIdx == i-1 && prevHeader >= 0 && strings.TrimSpace(line) != "" {
			prevIdx = i // a folded header line
		}
		off += len(line)
	}
	return s
}

// isHeaderLine reports whether line is a header field of a returned
// message, and whether its name is one that a human-readable summary
// ("To:", "Subject:", "Date:") does not use.
func isHeaderLine(line string) (header, machine bool) {
	i := strings.IndexByte(line, ':')
	if i <= 0 || i > 40 {
		return false, false
	}
	k := strings.ToLower(line[:i])
	if strings.ContainsAny(k, " \t") {
		return false, false
	}
	switch {
	case k == "to" || k == "from" || k == "subject" || k == "date" || k == "cc" || k == "sent":
		return true, false
	case headerBlockKeys[k]:
		return true, true
	case strings.HasPrefix(k, "x-") && k != "x-postfix-sender" && k != "x-actual-recipient":
		return true, true
	}
	return false, false
}

// pos is a recipient found in the text and the line it was found on.
type pos struct {
	addr string
	line int
}

// textResult holds the recipients and answers found in the text of a
// bounce.
type textResult struct {
	strong    bool   // recipients were found on recipient lines or in RCPT TO
	text      string // cut text
	rcpts     []textRecipient
	global    Reply  // the best answer of the whole text
	globalCmd string // the SMTP command the whole text names, when it names one only
}

type textRecipient struct {
	addr  string
	reply Reply
	cmd   string // the SMTP command answered, "" when not said
}

// command returns the SMTP command the text says was answered for the
// recipient addr, the i-th of n, matched as lookup matches answers.
func (t *textResult) command(addr string, i, n int) string {
	if t == nil {
		return ""
	}
	for _, r := range t.rcpts {
		if strings.EqualFold(r.addr, addr) && r.cmd != "" {
			return r.cmd
		}
	}
	if len(t.rcpts) == n && i < n && t.rcpts[i].cmd != "" {
		return t.rcpts[i].cmd
	}
	if n > 1 {
		return ""
	}
	return t.globalCmd
}

// commandRE finds the SMTP command an answer was given to, as MTAs write
// it: Postfix "(in reply to MAIL FROM command)", Exim "SMTP error from
// remote mail server after MAIL FROM:<...>:" or "... for TEXT command",
// and the like.
var commandRE = regexp.MustCompile(`(?i)\b(in\s+reply\s+to|after|for)\s+(?:the\s+)?(?:pipelined\s+)?(mail\s+from|rcpt\s+to|end\s+of\s+data|data|ehlo|helo|lhlo|initial\s+connection|initial\s+greeting|text)\b(\s+command)?`)

// transcriptCommandRE matches a Sendmail transcript line ">>> MAIL From:<...>".
var transcriptCommandRE = regexp.MustCompile(`(?i)^\s*>>>\s*(mail\s+from|rcpt\s+to|data|ehlo|helo|lhlo|quit)\b`)

// findCommand returns the SMTP command s says was answered ("CONN",
// "EHLO", "HELO", "MAIL", "RCPT", "DATA"), or "".
func findCommand(s string) string {
	for _, mm := range commandRE.FindAllStringSubmatch(s, 8) {
		verb := strings.ToLower(mm[1])
		if verb == "for" && mm[3] == "" {
			continue // "for data" in prose; "for TEXT command" is Exim's
		}
		if c := commandName(mm[2]); c != "" {
			return c
		}
	}
	return ""
}

// commandName normalises a command as written ("MAIL From", "end of data").
func commandName(s string) string {
	s = strings.ToLower(strings.Join(strings.Fields(s), " "))
	switch s {
	case "mail from":
		return "MAIL"
	case "rcpt to":
		return "RCPT"
	case "data", "end of data", "text":
		return "DATA"
	case "ehlo", "lhlo":
		return "EHLO"
	case "helo":
		return "HELO"
	case "initial connection", "initial greeting":
		return "CONN"
	}
	return ""
}

// transcriptCommand returns the command of the Sendmail transcript line
// (">>> MAIL From:<...>") right above line, with only the server's "<<<"
// answer lines between them, and the index of the first of those answer
// lines; or "" and line.
func transcriptCommand(lines []string, line int) (string, int) {
	for j := line - 1; j >= 0 && j >= line-8; j-- {
		l := strings.TrimSpace(lines[j])
		if strings.HasPrefix(l, "<<<") {
			continue
		}
		if mm := transcriptCommandRE.FindStringSubmatch(l); mm != nil && !strings.EqualFold(mm[1], "quit") {
			return commandName(mm[1]), j + 1
		}
		break
	}
	return "", line
}

// lookup returns the answer for the recipient addr, the i-th of n: the one
// found for the same address, else the i-th one when the counts agree,
// else the whole text's best answer.
func (t *textResult) lookup(addr string, i, n int) (r Reply, specific bool) {
	if t == nil {
		return Reply{}, false
	}
	for _, r := range t.rcpts {
		if strings.EqualFold(r.addr, addr) && r.reply.Text != "" {
			return r.reply, true
		}
	}
	if len(t.rcpts) == n && i < n && t.rcpts[i].reply.Text != "" {
		return t.rcpts[i].reply, true
	}
	if n > 1 {
		return Reply{}, false
	}
	return t.global, false
}

// bodyText returns the human-readable text of the message, cut before the
// returned original. It records the Message-ID of a returned original
// found in the cut-off text.
func (m *msg) bodyText() string {
	var b strings.Builder
	for _, t := range m.texts {
		t = strings.ReplaceAll(t, "\r\n", "\n")
		c := cutOriginal(t)
		b.WriteString(c)
		b.WriteString("\n\n")
		rest := strings.TrimLeft(t[len(c):], " \t\n")
		if m.origID == "" {
			if mm := messageIDRE.FindStringSubmatch(rest); mm != nil {
				m.origID = mm[1]
			}
		}
		if m.innerText == "" && len(rest) > 0 {
			if h, _ := isHeaderLine(rest); h {
				m.innerText = rest
			}
		}
	}
	return b.String()
}

var messageIDRE = regexp.MustCompile(`(?im)^\s*Message-ID:\s*<([^<>\s]+)>`)

// extractText finds the recipients and answers in the human-readable text.
func (m *msg) extractText() *textResult {
	text := dropDSNFields(m.bodyText())
	res := &textResult{text: text}
	lines := strings.Split(text, "\n")

	exclude := map[string]bool{}
	for _, a := range []string{m.from, m.to, firstAddress(m.header.Get("Return-Path")), firstAddress(m.header.Get("Reply-To"))} {
		if a != "" {
			exclude[strings.ToLower(a)] = true
		}
	}
	if m.orig != nil {
		for _, k := range []string{"From", "Return-Path", "Sender"} {
			if a := firstAddress(m.orig.Get(k)); a != "" {
				exclude[strings.ToLower(a)] = true
			}
		}
	}
	for _, mf := range mailFromRE.FindAllStringSubmatch(text, 100) {
		exclude[strings.ToLower(strings.Trim(mf[1], "<>"))] = true
	}
	usable := func(a string) bool {
		la := strings.ToLower(a)
		if daemonAddress(la) {
			return false
		}
		return !exclude[la]
	}

	// Recipient lines.
	var found []pos
	seen := map[string]bool{}
	for i, l := range lines {
		mm := recipientLineRE.FindStringSubmatch(l)
		if mm == nil {
			continue
		}
		a := strings.TrimRight(mm[1], ".")
		la := strings.ToLower(a)
		if !usable(a) || seen[la] {
			continue
		}
		seen[la] = true
		found = append(found, pos{a, i})
	}
	if len(found) == 0 {
		for _, mm := range rcptToRE.FindAllStringSubmatch(text, maxTextRecipients) {
			a := strings.TrimRight(mm[1], ".>")
			la := strings.ToLower(a)
			if usable(a) && !seen[la] {
				seen[la] = true
				found = append(found, pos{a, lineOf(lines, a)})
			}
		}
	}
	res.strong = len(found) > 0
	if len(found) == 0 {
		for i, l := range lines {
			if len(found) >= maxTextRecipients {
				break
			}
			for _, a := range addressRE.FindAllString(l, maxTextRecipients) {
				a = strings.TrimRight(a, ".")
				la := strings.ToLower(a)
				if usable(a) && !seen[la] && !strings.Contains(strings.ToLower(l), "from:") {
					seen[la] = true
					found = append(found, pos{a, i})
				}
			}
		}
	}

	res.global = bestReply(text)
	for _, mm := range commandRE.FindAllStringSubmatch(text, 20) {
		c := findCommand(mm[0])
		if c == "" {
			continue
		}
		if res.globalCmd != "" && res.globalCmd != c {
			res.globalCmd = ""
			break
		}
		res.globalCmd = c
	}
	if len(found) > maxTextRecipients {
		found = found[:maxTextRecipients]
	}
	// The addresses on each line, and for each found recipient the first
	// line holding it and a reply code, computed once.
	foundSet := make(map[string]bool, len(found))
	for _, p := range found {
		foundSet[strings.ToLower(p.addr)] = true
	}
	lineAddrs := make([][]string, len(lines))
	codeLine := map[string]int{}
	for i, l := range lines {
		if !strings.Contains(l, "@") {
			continue
		}
		as := addressRE.FindAllString(strings.ToLower(l), 20)
		for j := range as {
			as[j] = strings.TrimRight(as[j], ".")
		}
		lineAddrs[i] = as
		if replyRE.MatchString(l) && !rcptToRE.MatchString(l) {
			for _, a := range as {
				if _, ok := codeLine[a]; !ok && foundSet[a] {
					codeLine[a] = i
				}
			}
		}
	}
	mentionsOther := func(j int, self string) bool {
		for _, a := range lineAddrs[j] {
			if a != self && foundSet[a] {
				return true
			}
		}
		return false
	}
	for k, p := range found {
		la := strings.ToLower(p.addr)
		// The segment: from the recipient's line up to the next line naming
		// another recipient.
		end := len(lines)
		if p.line >= 0 {
			for j := p.line + 1; j < len(lines) && j < p.line+maxSegmentLines; j++ {
				if mentionsOther(j, la) {
					end = j
					break
				}
			}
		}
		var r Reply
		cmd := ""
		if p.line >= 0 && p.line < len(lines) {
			seg := segment(lines, p.line, end)
			tcmd, answer := transcriptCommand(lines, p.line)
			if answer < p.line {
				// The server's answer in the transcript ("<<< 550 ...")
				// comes right above the recipient's line.
				seg = strings.Join(lines[answer:p.line], "\n") + "\n" + seg
			}
			r = bestReply(seg)
			if cmd = findCommand(seg); cmd == "" {
				cmd = tcmd
			}
		}
		if i, ok := codeLine[la]; ok && r.Code == 0 && r.Enhanced == "" {
			// A line with the address and a reply code (a transcript), with
			// its continuation lines.
			j := i + 1
			for j < len(lines) && j < i+6 && strings.TrimSpace(lines[j]) != "" && !mentionsOther(j, la) {
				j++
			}
			r = bestReply(strings.Join(lines[i:j], "\n"))
		}
		if r.Code == 0 && r.Enhanced == "" && !meaningful(r.Text, p.addr) && p.line > 0 {
			// The reason may stand above the address ("User not listed ...\n<a@b>").
			if before := paragraphBefore(lines, p.line, found, k); meaningful(before, "") {
				r2 := bestReply(before + "\n" + lines[p.line])
				if r2.Code != 0 || r2.Enhanced != "" || r.Code == 0 {
					r = r2
				}
			}
		}
		if r.Code == 0 && r.Enhanced == "" && (res.global.Code != 0 || res.global.Enhanced != "") {
			if !meaningful(r.Text, p.addr) {
				r = res.global
			} else {
				r.Code, r.Enhanced = res.global.Code, res.global.Enhanced
				r.Text = r.Text + " " + res.global.Text
			}
		}
		r.Text = clipBytes(r.Text, 4*maxReplyText)
		if cmd == "" && len(found) == 1 {
			cmd = res.globalCmd
		}
		res.rcpts = append(res.rcpts, textRecipient{addr: p.addr, reply: r, cmd: cmd})
	}
	return res
}

// Bounds of the text extraction.
const (
	maxTextRecipients = 1000 // recipients read from one text
	maxSegmentLines   = 25   // lines of a recipient's answer
)

// paragraphBefore returns up to three non-blank lines above line (blank
// lines right above it skipped), stopping at the previous recipient's line.
func paragraphBefore(lines []string, line int, found []pos, k int) string {
	stop := -1
	if k > 0 {
		stop = found[k-1].line
	}
	j := line - 1
	for j > stop && strings.TrimSpace(lines[j]) == "" {
		j--
	}
	end := j + 1
	for j > stop && end-j <= 3 && strings.TrimSpace(lines[j]) != "" && !strings.HasPrefix(strings.TrimSpace(lines[j]), "---") {
		j--
	}
	if j+1 >= end {
		return ""
	}
	return strings.Join(lines[j+1:end], "\n")
}

var mailFromRE = regexp.MustCompile(`(?i)(?:MAIL\s+FROM:\s*|envelope-from\s*|return-path:\s*)(<?[^\s<>]+@[^\s<>]+>?)`)

// daemonAddress reports whether a (lower case) is a mailer daemon's address.
func daemonAddress(a string) bool {
	local, _, _ := strings.Cut(a, "@")
	switch local {
	case "mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "maildaemon", "root", "noreply", "no-reply", "daemon", "mail_daemon":
		return true
	}
	return false
}

func lineOf(lines []string, a string) int {
	la := strings.ToLower(a)
	for i, l := range lines {
		if strings.Contains(strings.ToLower(l), la) {
			return i
		}
	}
	return -1
}

// segment returns the lines [from, to), at most 25 lines, joined.
func segment(lines []string, from, to int) string {
	if to > from+maxSegmentLines {
		to = from + maxSegmentLines
	}
	if to > len(lines) {
		to = len(lines)
	}
	return strings.Join(lines[from:to], "\n")
}

// meaningful reports whether t says more than the address.
func meaningful(t, addr string) bool {
	t = strings.ReplaceAll(strings.ToLower(t), strings.ToLower(addr), "")
	letters := 0
	for _, c := range t {
		if c >= 'a' && c <= 'z' {
			letters++
		}
	}
	return letters >= 12
}

// bestReply returns the answer in s: the text from the first line holding a
// 4xx/5xx (else 2xx) reply code or an enhanced code, with the code and the
// enhanced code; without either, the whole of s as text.
func bestReply(s string) Reply {
	s = strings.TrimSpace(s)
	if s == "" {
		return Reply{}
	}
	code, at := 0, -1
	for _, mm := range replyRE.FindAllStringSubmatchIndex(s, 100) {
		c := int(s[mm[2]]-'0')*100 + int(s[mm[2]+1]-'0')*10 + int(s[mm[2]+2]-'0')
		if c >= 400 {
			code, at = c, mm[2]
			break
		}
		if code == 0 {
			code, at = c, mm[2]
		}
	}
	enh, eat := findEnhancedClass(s)
	if mm := pairedRE.FindStringSubmatchIndex(s); mm != nil && s[mm[2]] != '2' {
		// A code followed by its enhanced code is the answer itself.
		code = int(s[mm[2]]-'0')*100 + int(s[mm[2]+1]-'0')*10 + int(s[mm[2]+2]-'0')
		at, enh, eat = mm[2], s[mm[4]:mm[5]], mm[4]
	}
	start := at
	if start < 0 || eat >= 0 && eat < start {
		start = eat
	}
	r := Reply{Code: code, Enhanced: enh, Text: s}
	if start > 0 {
		// Keep the line the answer starts on, for the context.
		ls := strings.LastIndexByte(s[:start], '\n') + 1
		r.Text = s[ls:]
	}
	return r
}

// findEnhancedClass returns the first 4.x.x or 5.x.x enhanced code in s,
// else the first 2.x.x one, and its offset.
func findEnhancedClass(s string) (string, int) {
	first, fat := "", -1
	off := 0
	for off < len(s) {
		e, i := FindEnhanced(s[off:])
		if i < 0 {
			break
		}
		if e[0] != '2' {
			return e, off + i
		}
		if first == "" {
			first, fat = e, off+i
		}
		off += i + len(e)
	}
	return first, fat
}

// findReply returns the first reply code and enhanced code in s.
func findReply(s string) Reply {
	r := bestReply(s)
	r.Text = s
	return r
}

// bounceSubjects are subject words of non-standard bounces (lower case).
var bounceSubjects = []string{
	"undeliver", "undelivered", "delivery status notification", "failure notice", "returned mail",
	"mail delivery failed", "delivery failure", "mail delivery failure", "delivery failed", "nondeliverable",
	"non-deliverable", "non remis", "unzustellbar", "returned to sender", "delivery problem", "could not send message",
	"mail system error", "delivery notification", "message not delivered", "rejected", "warning: could not",
	"delayed mail", "delivery delayed", "mail could not be delivered", "not delivered", "error sending message",
	"nicht zustellbar", "no se puede entregar", "non recapitabile", "nedoručiteľn", "nedoručiteln", "returned",
	"failed delivery", "delivery error", "message delivery", "mail failure", "error", "failure",
}

// bounceMarkers are body phrases of non-standard bounces (lower case).
var bounceMarkers = []string{
	"mail delivery software", "qmail-send program", "transcript of session follows", "could not be delivered",
	"delivery to the following recipient", "this is the mail system at", "undeliverable", "permanent error",
	"delivery has failed", "was not delivered", "unable to deliver", "couldn't be delivered", "delivery failed",
	"smtp error from remote", "message could not be delivered", "following address", "did not reach",
	"error delivering", "not be delivered", "returned to you", "failed permanently", "delivery status notification",
	"mailer-daemon", "rejected", "user unknown", "does not exist", "unknown user", "no such user",
}

// isBounce reports whether a message without a DSN part looks like a bounce.
func (m *msg) isBounce(text string) bool {
	if m.fromDaemon() {
		return true
	}
	if strings.Contains(strings.ToLower(m.header.Get("Content-Type")), "multipart/report") {
		return true
	}
	rp := strings.TrimSpace(m.header.Get("Return-Path"))
	if rp == "<>" {
		return true
	}
	s := strings.ToLower(m.subject)
	for _, w := range bounceSubjects {
		if strings.Contains(s, w) {
			return true
		}
	}
	t := strings.ToLower(text)
	n := 0
	for _, w := range bounceMarkers {
		if strings.Contains(t, w) {
			n++
		}
	}
	return n >= 2
}

// delayedWords say that the MTA keeps trying (lower case).
var delayedWords = []string{
	"will retry", "will continue trying", "still trying", "has been delayed", "delivery delayed", "is delayed",
	"warning: message", "will keep trying", "still undelivered", "not yet been delivered", "delivery attempts will continue",
	"this is only a warning", "temporarily deferred", "delayed mail",
}

// textReports reads a non-standard bounce.
func (m *msg) textReports() ([]Report, int) {
	text := m.bodyText()
	if !m.isBounce(text) {
		return nil, kindNone
	}
	if m.isAutoReply() && !m.strongBounce(text) {
		return nil, kindNone
	}
	// DSN fields written inline in the text.
	if strings.Contains(strings.ToLower(text), "final-recipient:") {
		inline := &msg{header: m.header, texts: m.texts, dsn: [][]byte{[]byte(text)}, orig: m.orig, from: m.from, to: m.to}
		if reps := inline.dsnReports(); len(reps) > 0 {
			return reps, kindStrong
		}
	}
	res := m.extractText()
	delayed := false
	ls := strings.ToLower(text + " " + m.subject)
	for _, w := range delayedWords {
		if strings.Contains(ls, w) {
			delayed = true
			break
		}
	}
	mk := func(a string, r Reply, cmd string) Report {
		rep := Report{Recipient: a, Reply: r, Command: cmd}
		switch {
		case delayed && r.Code < 500:
			rep.Action = ActionDelayed
		case r.Code >= 200 && r.Code < 300 && (r.Enhanced == "" || r.Enhanced[0] == '2'):
			rep.Action = ActionDelivered
		}
		return rep
	}
	var reps []Report
	for _, r := range res.rcpts {
		reps = append(reps, mk(r.addr, r.reply, r.cmd))
	}
	if len(reps) > 0 && res.strong {
		return reps, kindStrong
	}
	if len(reps) == 0 && strings.TrimSpace(text) != "" {
		// No recipient in the text: the X-Failed-Recipients header (Exim,
		// Gmail, Google Groups) names it.
		rcpt := ""
		if xs := addressRE.FindAllString(m.header.Get("X-Failed-Recipients"), 2); len(xs) == 1 {
			rcpt = strings.TrimRight(xs[0], ".")
		}
		reps = append(reps, mk(rcpt, res.global, res.globalCmd))
	}
	return reps, kindWeak
}

// strongBounce reports whether the text has the wording of a delivery
// failure (to tell a bounce with Auto-Submitted from a vacation reply).
func (m *msg) strongBounce(text string) bool {
	t := strings.ToLower(text)
	for _, w := range []string{"mail delivery software", "qmail-send", "transcript of session", "could not be delivered", "undeliverable", "delivery has failed", "failed permanently", "permanent error", "smtp error", "error sending", "trouble delivering", "returned mail"} {
		if strings.Contains(t, w) {
			return true
		}
	}
	return m.fromDaemon()
}

// fromDaemon reports whether the message comes from a mailer daemon.
func (m *msg) fromDaemon() bool {
	f := strings.ToLower(m.header.Get("From"))
	return daemonAddress(strings.ToLower(m.from)) || strings.Contains(f, "mailer-daemon") || strings.Contains(f, "postmaster") ||
		strings.Contains(f, "mail delivery")
}

// sesReports reads Amazon SES notifications (JSON in the body, as SNS
// e-mails them).
func (m *msg) sesReports() []Report {
	for _, t := range m.texts {
		i := strings.Index(t, `"notificationType"`)
		if i < 0 {
			i = strings.Index(t, `"eventType"`)
		}
		if i < 0 {
			continue
		}
		start := strings.LastIndexByte(t[:i], '{')
		if start < 0 {
			continue
		}
		body := t[start:]
		var n sesNotification
		dec := json.NewDecoder(strings.NewReader(body))
		if err := dec.Decode(&n); err != nil {
			// SNS wraps long lines with "!\n " in some copies.
			fixed := strings.NewReplacer("!\r\n ", "", "!\n ", "", "\r\n", "", "\n", "").Replace(body)
			if err := json.NewDecoder(strings.NewReader(fixed)).Decode(&n); err != nil {
				continue
			}
		}
		if reps := n.reports(); len(reps) > 0 {
			return reps
		}
	}
	return nil
}

type sesNotification struct {
	NotificationType string `json:"notificationType"`
	EventType        string `json:"eventType"`
	Bounce           struct {
		BounceType        string `json:"bounceType"`
		BounceSubType     string `json:"bounceSubType"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Action         string `json:"action"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
		Timestamp    string `json:"timestamp"`
		ReportingMTA string `json:"reportingMTA"`
	} `json:"bounce"`
	Complaint struct {
		ComplainedRecipients []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
		ComplaintFeedbackType string `json:"complaintFeedbackType"`
		Timestamp             string `json:"timestamp"`
	} `json:"complaint"`
	Delivery struct {
		Recipients   []string `json:"recipients"`
		SMTPResponse string   `json:"smtpResponse"`
		Timestamp    string   `json:"timestamp"`
		ReportingMTA string   `json:"reportingMTA"`
	} `json:"delivery"`
	Mail struct {
		MessageID string `json:"messageId"`
	} `json:"mail"`
}

func (n *sesNotification) reports() []Report {
	typ := n.NotificationType
	if typ == "" {
		typ = n.EventType
	}
	ts := func(s string) time.Time {
		t, _ := time.Parse(time.RFC3339Nano, s)
		return t.UTC()
	}
	var reps []Report
	switch strings.ToLower(typ) {
	case "bounce":
		for _, r := range n.Bounce.BouncedRecipients {
			diag := stripType(r.DiagnosticCode)
			rep := ParseReply(diag)
			if r.Status != "" {
				if e, _ := FindEnhanced(r.Status); e != "" && (rep.Enhanced == "" || strings.HasSuffix(rep.Enhanced, ".0.0")) {
					rep.Enhanced = e
				}
			}
			if rep.Text == "" {
				rep.Text = strings.TrimSpace(n.Bounce.BounceType + " " + n.Bounce.BounceSubType)
			}
			act, ok := dsnAction(r.Action)
			if !ok && strings.EqualFold(n.Bounce.BounceType, "Transient") {
				act = ActionDelayed
			}
			reps = append(reps, Report{Recipient: r.EmailAddress, Action: act, Reply: rep,
				ReportingMTA: stripType(n.Bounce.ReportingMTA), Arrival: ts(n.Bounce.Timestamp)})
		}
	case "complaint":
		ft := strings.ToLower(n.Complaint.ComplaintFeedbackType)
		if ft == "" {
			ft = "abuse"
		}
		for _, r := range n.Complaint.ComplainedRecipients {
			reps = append(reps, Report{Recipient: r.EmailAddress, Action: ActionComplained, FeedbackType: ft,
				Reply: Reply{Text: "feedback report: " + ft}, Arrival: ts(n.Complaint.Timestamp)})
		}
	case "delivery":
		for _, a := range n.Delivery.Recipients {
			reps = append(reps, Report{Recipient: a, Action: ActionDelivered, Reply: ParseReply(n.Delivery.SMTPResponse),
				ReportingMTA: stripType(n.Delivery.ReportingMTA), Arrival: ts(n.Delivery.Timestamp)})
		}
	}
	for i := range reps {
		reps[i].MessageID = n.Mail.MessageID
	}
	return reps
}

// htmlText returns the text of an HTML part, with line breaks for block
// elements.
func htmlText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	skip := 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			if skip == 0 {
				b.Write(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style", "head":
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
			case "br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "table", "pre", "blockquote":
				b.WriteByte('\n')
			case "td", "th":
				b.WriteByte(' ')
			}
		}
	}
}

// dropDSNFields removes the lines of DSN fields written inline in the text
// (they are read by the DSN parser).
func dropDSNFields(s string) string {
	if !strings.Contains(s, "Final-Recipient:") && !strings.Contains(s, "Reporting-MTA:") && !strings.Contains(strings.ToLower(s), "final-recipient:") {
		return s
	}
	var b strings.Builder
	for l := range strings.Lines(s) {
		if i := strings.IndexByte(l, ':'); i > 0 && dsnFieldNames[strings.ToLower(l[:i])] {
			continue
		}
		b.WriteString(l)
	}
	return b.String()
}

var dsnFieldNames = map[string]bool{
	"reporting-mta": true, "received-from-mta": true, "arrival-date": true, "final-recipient": true,
	"original-recipient": true, "x-actual-recipient": true, "action": true, "status": true, "remote-mta": true,
	"last-attempt-date": true, "will-retry-until": true, "x-postfix-queue-id": true, "x-postfix-sender": true,
	"dsn-gateway": true, "original-envelope-id": true,
}
