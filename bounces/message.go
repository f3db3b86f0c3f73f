package bounces

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	netmail "net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode the charsets of real bounces (ISO-2022-JP, windows-1252, ...)
	"github.com/emersion/go-message/textproto"
)

// ErrNotBounce is returned (wrapped) by ParseMessage for a message that is
// neither a bounce, an ARF feedback report nor an automatic reply.
var ErrNotBounce = errors.New("bounces: not a bounce message")

// MaxMessageSize is the number of bytes of a message ParseMessage reads;
// the rest (usually a large returned original) is ignored. ReadMessages and
// ParseMessages skip a longer message instead, with a *RecordError ("message
// longer than 16 MiB; skipped").
const MaxMessageSize = 16 << 20

// Action is what a bounce message says happened to one recipient: the
// RFC 3464 Action field, plus complained for ARF feedback reports and
// auto_replied for RFC 3834 automatic replies. The zero value is
// ActionFailed. Its text form is the lower-case name.
type Action uint8

// The actions.
const (
	ActionFailed      Action = iota // delivery failed permanently (or the bounce does not say)
	ActionDelayed                   // delivery is delayed, the MTA keeps trying
	ActionDelivered                 // delivered (a positive DSN)
	ActionRelayed                   // relayed to a system that sends no DSN
	ActionExpanded                  // delivered and expanded to several addresses
	ActionComplained                // an ARF feedback report: the recipient complained
	ActionAutoReplied               // an automatic reply (vacation, out of office)
	numActions
)

var actionNames = [numActions]string{"failed", "delayed", "delivered", "relayed", "expanded", "complained", "auto_replied"}

// String returns the action's name, or "action(N)" for an invalid value.
func (a Action) String() string {
	if a < numActions {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// ParseAction returns the action named s (case-insensitive). It accepts the
// RFC 3464 values and the names of String.
func ParseAction(s string) (Action, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for i, n := range actionNames {
		if n == s {
			return Action(i), nil
		}
	}
	return ActionFailed, fmt.Errorf("bounces: unknown action %q", s)
}

// MarshalText implements encoding.TextMarshaler.
func (a Action) MarshalText() ([]byte, error) {
	if a >= numActions {
		return nil, fmt.Errorf("bounces: invalid action %d", uint8(a))
	}
	return []byte(actionNames[a]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Action) UnmarshalText(b []byte) error {
	v, err := ParseAction(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Report is what a bounce message says about one recipient.
type Report struct {
	// Recipient is the Final-Recipient (or Original-Recipient, or the
	// address found in the text), without the "rfc822;" type. It may be
	// empty when the message names no recipient (a redacted ARF report).
	Recipient string
	// Action is what happened to the recipient.
	Action Action
	// Reply holds the basic code, the enhanced code (the Status field or one
	// found in the text) and the text (Diagnostic-Code without "smtp;", or
	// the best snippet of the human-readable part).
	Reply Reply
	// FeedbackType is the ARF Feedback-Type (abuse, fraud, opt-out,
	// auth-failure, ...), "" for other messages.
	FeedbackType string
	// MessageID is the Message-ID of the returned original message, without
	// angle brackets, "" when the bounce does not carry it.
	MessageID string
	// ReportingMTA is the Reporting-MTA without its "dns;" type, "" when
	// unknown.
	ReportingMTA string
	// Arrival is the Arrival-Date of the DSN or the Date of the bounce, zero
	// when neither is there.
	Arrival time.Time
	// Command is the SMTP command the remote server was answering when it
	// refused the message, as the bounce says ("in reply to MAIL FROM
	// command", "after RCPT TO:<...>", a ">>> DATA" transcript line): one of
	// "CONN" (the greeting), "EHLO", "HELO", "MAIL", "RCPT", "DATA"; "" when
	// the bounce does not say. Diagnose uses it (see there).
	Command string
}

// Event converts the report into an Event: SourceARF for complaints,
// SourceDSN otherwise, with the domain taken from the recipient and
// normalised (left empty when the recipient has no usable domain).
func (r Report) Event() Event {
	e := Event{
		Time:      r.Arrival,
		MessageID: r.MessageID,
		Recipient: r.Recipient,
		Code:      r.Reply.Code,
		Enhanced:  r.Reply.Enhanced,
		Text:      r.Reply.Text,
		Source:    SourceDSN,
	}
	if r.Action == ActionComplained {
		e.Source = SourceARF
	}
	if d, err := DomainOf(r.Recipient); err == nil {
		e.Domain = d
	}
	return e
}

// Diagnose returns the diagnosis of the report: complaints are
// ClassComplaint, automatic replies ClassAutoReply, delivered, relayed and
// expanded recipients ClassDelivered, and everything else is what c makes
// of the reply and the recipient's domain. One exception: when the server
// refused the session before any recipient was named (Command "CONN",
// "EHLO", "HELO" or "MAIL") and c says invalid_recipient or unknown, the
// answer is about our sender or host, so the diagnosis is policy_blocked
// (rule "command.mail-from" for MAIL FROM, "command.helo" for the others).
func (r Report) Diagnose(c *Classifier) Diagnosis {
	switch r.Action {
	case ActionComplained:
		ft := r.FeedbackType
		if ft == "" {
			ft = "abuse"
		}
		return Diagnosis{Class: ClassComplaint, Hard: true, Rule: "arf",
			Explanation: "ARF feedback report (" + ft + "): the recipient marked the message as spam"}
	case ActionAutoReplied:
		return Diagnosis{Class: ClassAutoReply, Rule: "rfc3834",
			Explanation: "automatic reply (RFC 3834): the message was delivered"}
	case ActionDelivered, ActionRelayed, ActionExpanded:
		return Diagnosis{Class: ClassDelivered, Rule: "dsn-" + r.Action.String(),
			Explanation: "delivery status notification: " + r.Action.String()}
	}
	dom, _ := DomainOf(r.Recipient)
	d := c.Classify(r.Reply, dom)
	switch r.Command {
	case "CONN", "EHLO", "HELO", "MAIL":
		// Refused before any recipient was named: an answer that reads as
		// "no such user/domain" (or says nothing) is about our sender
		// address or our host, not about the recipient.
		if d.Class == ClassInvalidRecipient || d.Class == ClassUnknown {
			rule := &commandSenderRule
			if r.Command != "MAIL" {
				rule = &commandHostRule
			}
			return Diagnosis{Class: rule.Class, Rule: rule.ID, Explanation: rule.Explanation + " (the text alone: " + d.Rule + ")"}
		}
	}
	return d
}

// The diagnoses Diagnose gives from the refused SMTP command.
var (
	commandSenderRule = Rule{ID: "command.mail-from", Class: ClassPolicyBlocked,
		Explanation: "refused in reply to MAIL FROM, before any recipient: the server refuses our sender address; review the sending setup"}
	commandHostRule = Rule{ID: "command.helo", Class: ClassPolicyBlocked,
		Explanation: "refused at the greeting or EHLO/HELO, before any recipient: the server refuses our host; review its name, IP and reputation"}
)

// ParseMessage reads one RFC 5322 message and returns one Report per
// recipient it reports on, in the order the message lists them. It
// understands RFC 3464 delivery status notifications, RFC 5965 ARF feedback
// reports, RFC 3834 automatic replies and the common non-standard bounces
// (Postfix, Exim, Sendmail, qmail, Exchange, Gmail, Yahoo, Amazon SES, ...).
// A message that is none of these gives an error wrapping ErrNotBounce; an
// unreadable header gives another error. It never returns reports together
// with an error. It is safe for concurrent use.
func ParseMessage(r io.Reader) ([]Report, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxMessageSize))
	if err != nil {
		return nil, fmt.Errorf("bounces: reading message: %w", err)
	}
	m, err := readMessage(data)
	if err != nil {
		return nil, err
	}
	reps, _ := m.reports()
	if len(reps) == 0 {
		return nil, fmt.Errorf("%w (subject %q)", ErrNotBounce, clipBytes(m.subject, 80))
	}
	for i := range reps {
		reps[i].Reply.Text = clipBytes(collapseSpace(reps[i].Reply.Text), maxReplyText)
		if reps[i].Arrival.IsZero() {
			reps[i].Arrival = m.date
		}
		if reps[i].MessageID == "" {
			reps[i].MessageID = m.origID
		}
	}
	return reps, nil
}

// maxReplyText bounds Reply.Text.
const maxReplyText = 1000

// msg is a bounce message taken apart: the header, the human-readable text
// outside the returned original, the machine-readable report parts and the
// header of the returned original.
type msg struct {
	header  textproto.Header
	subject string
	from    string // address of From
	to      string // address of To
	date    time.Time

	texts   []string // text/plain (and stripped text/html) parts, in order
	dsn     [][]byte // message/delivery-status parts
	arf     [][]byte // message/feedback-report parts
	orig    *textproto.Header
	origID  string
	hasOrig bool // a returned message or header part was seen

	innerRaw  []byte // the first message/rfc822 part
	innerText string // the text cut off a plain-text bounce, when it looks like a message
	depth     int    // how deep inside other bounces this one is
}

func readMessage(data []byte) (*msg, error) {
	// An mbox "From " line in front of the header.
	if bytes.HasPrefix(data, []byte("From ")) {
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		} else {
			data = nil
		}
	}
	data = bytes.TrimLeft(data, "\r\n")
	br := bufio.NewReader(bytes.NewReader(data))
	h, err := textproto.ReadHeader(br)
	if err != nil && h.Len() == 0 {
		return nil, fmt.Errorf("bounces: reading message header: %w", err)
	}
	m := &msg{header: h}
	if err != nil {
		// A malformed header line: keep the fields read so far and read the
		// rest as a plain text body.
		rest, _ := io.ReadAll(br)
		m.fillHeader()
		m.texts = append(m.texts, string(rest))
		return m, nil
	}
	m.fillHeader()
	body, _ := io.ReadAll(br)
	e, err := message.New(message.Header{Header: h}, bytes.NewReader(body))
	if e == nil {
		m.texts = append(m.texts, string(body))
		return m, nil
	}
	_ = err // unknown charset or encoding: the entity is still readable
	m.walk(e, body)
	return m, nil
}

func (m *msg) fillHeader() {
	h := message.Header{Header: m.header}
	if s, err := h.Text("Subject"); err == nil {
		m.subject = s
	} else {
		m.subject = m.header.Get("Subject")
	}
	m.from = firstAddress(m.header.Get("From"))
	m.to = firstAddress(m.header.Get("To"))
	if t, err := netmail.ParseDate(m.header.Get("Date")); err == nil {
		m.date = t.UTC()
	}
}

// walk collects the parts of e. body is the raw body, read as text when the
// MIME structure is broken beyond use.
func (m *msg) walk(e *message.Entity, body []byte) {
	seen := 0
	err := e.Walk(func(path []int, p *message.Entity, err error) error {
		seen++
		if p == nil {
			return nil
		}
		mt, params, _ := p.Header.ContentType()
		if mt == "" && len(path) == 0 || mt == "" {
			mt = "text/plain"
		}
		if strings.HasPrefix(mt, "multipart/") {
			return nil
		}
		b, _ := io.ReadAll(io.LimitReader(p.Body, MaxMessageSize))
		switch mt {
		case "message/delivery-status", "message/global-delivery-status", "text/delivery-status", "message/x-delivery-status":
			m.dsn = append(m.dsn, b)
		case "message/feedback-report", "text/feedback-report":
			m.arf = append(m.arf, b)
		case "message/rfc822", "message/global":
			if m.innerRaw == nil {
				m.innerRaw = b
			}
			m.original(b)
		case "text/rfc822-headers", "message/rfc822-headers", "message/global-headers", "message/partial":
			m.original(b)
		case "text/plain", "text/html", "text/enriched", "text":
			if isAttachment(p) && len(path) > 0 && m.hasOrig {
				return nil
			}
			s := string(b)
			if _, ok := params["charset"]; !ok && !isUTF8(b) {
				s = latin1(b)
			}
			if mt == "text/html" {
				s = htmlText(s)
			}
			m.texts = append(m.texts, s)
		default:
			// An attached original without a useful type ("application/octet-stream"
			// named *.eml) still gives the Message-ID; other parts are ignored.
			if strings.HasSuffix(strings.ToLower(params["name"]), ".eml") {
				m.original(b)
			}
		}
		return nil
	})
	if err == nil && (len(m.texts) > 0 || len(m.dsn) > 0 || len(m.arf) > 0 || m.hasOrig) {
		return
	}
	// Broken MIME (a wrong boundary, an unfolded parameter line): find the
	// report parts by their Content-Type line and read the raw body as text.
	if len(m.dsn) == 0 {
		m.dsn = rawParts(body, "message/delivery-status")
	}
	if len(m.arf) == 0 {
		m.arf = rawParts(body, "message/feedback-report")
	}
	if len(m.texts) == 0 {
		m.texts = append(m.texts, string(body))
	}
}

// rawParts returns the bodies of the parts of a broken multipart body whose
// Content-Type line names typ: from the blank line after it up to the next
// line starting with "--".
func rawParts(body []byte, typ string) [][]byte {
	var out [][]byte
	lower := bytes.ToLower(body)
	needle := []byte("content-type: " + typ)
	for off := 0; ; {
		i := bytes.Index(lower[off:], needle)
		if i < 0 {
			return out
		}
		start := off + i
		j := bytes.Index(body[start:], []byte("\n\n"))
		if k := bytes.Index(body[start:], []byte("\r\n\r\n")); k >= 0 && (j < 0 || k < j) {
			j = k
		}
		if j < 0 {
			return out
		}
		start += j
		end := len(body)
		if k := bytes.Index(body[start:], []byte("\n--")); k >= 0 {
			end = start + k
		}
		out = append(out, body[start:end])
		off = end
	}
}

func isAttachment(p *message.Entity) bool {
	d, _, _ := p.Header.ContentDisposition()
	return d == "attachment"
}

// original records the header of a returned original message.
func (m *msg) original(b []byte) {
	m.hasOrig = true
	if m.orig != nil {
		return
	}
	b = bytes.TrimLeft(b, " \t\r\n")
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(b)))
	if h.Len() == 0 {
		return
	}
	m.orig = &h
	m.origID = strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")
}

// Kinds of result of reports, in increasing confidence.
const (
	kindNone   = iota
	kindWeak   // a text bounce without a recognised recipient line
	kindAuto   // an automatic reply
	kindStrong // a report part, or recipient lines in the text
)

// maxDepth bounds the bounces read inside bounces (a forwarded bounce).
const maxDepth = 2

// reports dispatches on what the message is. When the message is a bounce
// whose text says little, a bounce returned inside it (a message/rfc822
// part or the text after the cut) is read instead.
func (m *msg) reports() ([]Report, int) {
	if len(m.arf) > 0 {
		if reps := m.arfReports(); len(reps) > 0 {
			return reps, kindStrong
		}
	}
	if reps := m.jmrpReports(); len(reps) > 0 {
		return reps, kindStrong
	}
	if reps := m.sesReports(); len(reps) > 0 {
		return reps, kindStrong
	}
	if len(m.dsn) > 0 {
		if reps := m.dsnReports(); len(reps) > 0 {
			// A DSN returned inside the DSN (a bounce of a bounce) reports
			// on its recipients too.
			if m.depth < maxDepth && bytes.Contains(bytes.ToLower(m.innerRaw), []byte("delivery-status")) {
				if im, err := readMessage(m.innerRaw); err == nil && len(im.dsn) > 0 {
					im.depth = m.depth + 1
					reps = append(reps, im.dsnReports()...)
				}
			}
			return reps, kindStrong
		}
	}
	reps, kind := m.textReports()
	if kind == kindStrong {
		return reps, kind
	}
	if m.depth < maxDepth {
		for _, raw := range [][]byte{m.innerRaw, []byte(m.innerText)} {
			if len(raw) == 0 {
				continue
			}
			im, err := readMessage(raw)
			if err != nil {
				continue
			}
			im.depth = m.depth + 1
			if ir, ik := im.reports(); ik == kindStrong {
				return ir, ik
			}
		}
	}
	if len(reps) > 0 {
		return reps, kind
	}
	if reps := m.autoReplyReports(); len(reps) > 0 {
		return reps, kindAuto
	}
	return nil, kindNone
}

// field is one "Name: value" line of a DSN or ARF part, unfolded; group is
// the number of the blank-line separated group it belongs to.
type field struct {
	key   string // lower case
	value string
	group int
}

// parseFields reads RFC 822 style fields in groups separated by blank lines.
// It is lenient: lines without a colon continue the previous field.
func parseFields(s string) []field {
	var fs []field
	group := 0
	blank := true
	for line := range strings.Lines(s) {
		line = strings.TrimRight(line, "\r\n")
		if strings.TrimSpace(line) == "" {
			if !blank {
				group++
			}
			blank = true
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(fs) > 0 && !blank {
				fs[len(fs)-1].value += " " + strings.TrimSpace(line)
			}
			continue
		}
		i := strings.IndexByte(line, ':')
		if i <= 0 || strings.ContainsAny(line[:i], " \t") {
			if len(fs) > 0 && !blank && fs[len(fs)-1].key == "diagnostic-code" {
				fs[len(fs)-1].value += " " + strings.TrimSpace(line)
			}
			continue
		}
		blank = false
		fs = append(fs, field{key: strings.ToLower(line[:i]), value: strings.TrimSpace(line[i+1:]), group: group})
	}
	return fs
}

// dsnBlock is one per-recipient block of a delivery-status part.
type dsnBlock map[string]string

var recipientKeys = map[string]bool{"final-recipient": true, "original-recipient": true}

// splitDSN splits the fields of a delivery-status part into the per-message
// fields and the per-recipient blocks. A new block starts at a recipient
// field when the current block already has that field or was in another
// group; blocks without a blank line between them are thus split too.
func splitDSN(fs []field) (dsnBlock, []dsnBlock) {
	perMsg := dsnBlock{}
	var blocks []dsnBlock
	var cur dsnBlock
	curGroup := -1
	// Per-recipient fields written before the recipient field of their
	// group wait for it.
	var pending dsnBlock
	pendingGroup := -1
	for _, f := range fs {
		if recipientKeys[f.key] {
			if cur == nil || cur[f.key] != "" || curGroup != f.group {
				cur = dsnBlock{}
				blocks = append(blocks, cur)
				curGroup = f.group
				if pendingGroup == f.group {
					for k, v := range pending {
						cur[k] = v
					}
				}
				pending, pendingGroup = nil, -1
			}
			cur[f.key] = f.value
			continue
		}
		if (cur == nil || curGroup != f.group) && !perMessageKey(f.key) && recipientFieldKey(f.key) {
			if pendingGroup != f.group {
				pending, pendingGroup = dsnBlock{}, f.group
			}
			if _, ok := pending[f.key]; !ok {
				pending[f.key] = f.value
			}
			continue
		}
		if cur == nil || curGroup != f.group && perMessageKey(f.key) {
			if _, ok := perMsg[f.key]; !ok {
				perMsg[f.key] = f.value
			}
			continue
		}
		if _, ok := cur[f.key]; !ok || f.key == "diagnostic-code" && cur[f.key] == "" {
			cur[f.key] = f.value
		}
	}
	return perMsg, blocks
}

func recipientFieldKey(k string) bool {
	switch k {
	case "action", "status", "diagnostic-code", "remote-mta", "last-attempt-date", "will-retry-until", "x-actual-recipient", "final-log-id":
		return true
	}
	return false
}

func perMessageKey(k string) bool {
	switch k {
	case "reporting-mta", "arrival-date", "received-from-mta", "dsn-gateway", "original-envelope-id", "x-postfix-queue-id", "x-postfix-sender":
		return true
	}
	return false
}

// stripType removes an RFC 3464 type prefix ("rfc822;", "smtp;", "dns;").
func stripType(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, ';'); i > 0 && i <= 20 && !strings.ContainsAny(s[:i], " \t<@") {
		s = strings.TrimSpace(s[i+1:])
	}
	return s
}

// cleanAddress returns the bare address of a recipient field value.
func cleanAddress(s string) string {
	s = stripType(s)
	if i := strings.IndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			s = s[i+1 : i+j]
		}
	}
	s = strings.Trim(strings.TrimSpace(s), "<>\"' ")
	if i := strings.IndexAny(s, " \t"); i > 0 && strings.Contains(s[:i], "@") {
		s = s[:i]
	}
	return s
}

func (m *msg) dsnReports() []Report {
	var perMsg dsnBlock
	var blocks []dsnBlock
	for _, part := range m.dsn {
		pm, bs := splitDSN(parseFields(string(part)))
		if perMsg == nil {
			perMsg = pm
		}
		blocks = append(blocks, bs...)
	}
	if len(blocks) == 0 {
		return nil
	}
	mta := stripType(perMsg["reporting-mta"])
	var arrival time.Time
	if t, err := netmail.ParseDate(perMsg["arrival-date"]); err == nil {
		arrival = t.UTC()
	}
	var text *textResult // lazily extracted human-readable answers
	reps := make([]Report, 0, len(blocks))
	for i, b := range blocks {
		rcpt := cleanAddress(b["final-recipient"])
		if !strings.Contains(rcpt, "@") {
			for _, k := range []string{"original-recipient", "x-actual-recipient"} {
				if a := cleanAddress(b[k]); strings.Contains(a, "@") {
					rcpt = a
					break
				}
			}
			if rcpt == "" {
				rcpt = cleanAddress(b["original-recipient"])
			}
		}
		status, _ := FindEnhanced(b["status"])
		diag := stripType(b["diagnostic-code"])
		if diag == "" {
			// "Status: 4.0.0 (cat.example.net: host name lookup failure)"
			if i := strings.IndexByte(b["status"], '('); i > 0 {
				diag = strings.Trim(strings.TrimSpace(b["status"][i:]), "()")
			}
		}
		reply := ParseReply(diag)
		if reply.Code != 0 && reply.Code < 300 {
			if r := findReply(diag); r.Code >= 400 {
				reply.Code, reply.Enhanced = r.Code, r.Enhanced
			}
		}
		if reply.Code == 0 && diag != "" {
			if r := findReply(diag); r.Code != 0 {
				reply.Code = r.Code
				reply.Enhanced = r.Enhanced
			}
		}
		if !usefulDiagnostic(diag) {
			// The human-readable part often says more than an empty or bare
			// Diagnostic-Code.
			if text == nil {
				text = m.extractText()
			}
			if t, specific := text.lookup(rcpt, i, len(blocks)); t.Text != "" && (specific || len(blocks) == 1 || diag == "") {
				if diag == "" || len(t.Text) > len(diag) {
					reply.Text = t.Text
				}
				if reply.Code == 0 {
					reply.Code = t.Code
				}
				if reply.Enhanced == "" {
					reply.Enhanced = t.Enhanced
				}
			}
		}
		switch {
		case reply.Enhanced == "":
			reply.Enhanced = status
		case status != "" && strings.HasSuffix(reply.Enhanced, ".0.0") && !strings.HasSuffix(status, ".0.0"):
			reply.Enhanced = status
		}
		act, ok := dsnAction(b["action"])
		if !ok {
			switch {
			case strings.HasPrefix(status, "2"):
				act = ActionDelivered
			case strings.HasPrefix(status, "4"):
				act = ActionDelayed
			}
		}
		rep := Report{
			Recipient:    rcpt,
			Action:       act,
			Reply:        reply,
			ReportingMTA: mta,
			Arrival:      arrival,
			Command:      findCommand(diag),
		}
		if rep.Command == "" && (act == ActionFailed || act == ActionDelayed) {
			// Postfix and Exim name the command in the human-readable
			// part only.
			if text == nil {
				text = m.extractText()
			}
			rep.Command = text.command(rcpt, i, len(blocks))
		}
		if t, err := netmail.ParseDate(b["arrival-date"]); err == nil {
			rep.Arrival = t.UTC()
		}
		reps = append(reps, rep)
	}
	return reps
}

// usefulDiagnostic reports whether a Diagnostic-Code says more than a bare
// code.
func usefulDiagnostic(d string) bool {
	r := ParseReply(d)
	t := r.Text
	if r.Code != 0 {
		t = strings.TrimSpace(strings.TrimLeft(t[min(3, len(t)):], " -"))
	}
	if r.Enhanced != "" {
		t = strings.Replace(t, r.Enhanced, "", 1)
	}
	letters := 0
	for _, c := range t {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			letters++
		}
	}
	return letters >= 8
}

// dsnAction maps an Action field to an Action; ok is false when the field
// is missing or unknown.
func dsnAction(s string) (Action, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.IndexAny(s, " ;("); i > 0 {
		s = s[:i]
	}
	switch s {
	case "failed", "failure", "fail", "error":
		return ActionFailed, true
	case "delayed", "delay", "deferred", "transient":
		return ActionDelayed, true
	case "delivered", "success", "deliverable":
		return ActionDelivered, true
	case "relayed":
		return ActionRelayed, true
	case "expanded":
		return ActionExpanded, true
	}
	return ActionFailed, false
}

// arfReports reads RFC 5965 feedback reports.
func (m *msg) arfReports() []Report {
	var fs []field
	for _, p := range m.arf {
		fs = append(fs, parseFields(string(p))...)
	}
	var ftype, mta string
	var arrival time.Time
	var rcpts []string
	for _, f := range fs {
		switch f.key {
		case "feedback-type":
			if ftype == "" {
				ftype = strings.ToLower(strings.TrimSpace(f.value))
			}
		case "reporting-mta":
			if mta == "" {
				mta = stripType(f.value)
			}
		case "arrival-date", "received-date":
			if t, err := netmail.ParseDate(f.value); err == nil && arrival.IsZero() {
				arrival = t.UTC()
			}
		case "original-rcpt-to", "removal-recipient":
			if a := cleanAddress(f.value); a != "" {
				rcpts = appendUnique(rcpts, a)
			}
		}
	}
	if len(rcpts) == 0 && m.orig != nil {
		for _, k := range []string{"X-HmXmrOriginalRecipient", "X-Original-To", "To"} {
			if a := firstAddress(m.orig.Get(k)); strings.Contains(a, "@") {
				rcpts = append(rcpts, a)
				break
			}
		}
	}
	if len(rcpts) == 0 {
		rcpts = []string{""}
	}
	if ftype == "" {
		ftype = "abuse"
	}
	reps := make([]Report, len(rcpts))
	for i, a := range rcpts {
		reps[i] = Report{Recipient: a, Action: ActionComplained, FeedbackType: ftype,
			Reply: Reply{Text: "feedback report: " + ftype}, ReportingMTA: mta, Arrival: arrival}
	}
	return reps
}

// jmrpReports reads Microsoft's JMRP complaints: a returned message carrying
// X-HmXmrOriginalRecipient, without a feedback-report part.
func (m *msg) jmrpReports() []Report {
	if m.orig == nil {
		return nil
	}
	a := firstAddress(m.orig.Get("X-HmXmrOriginalRecipient"))
	if a == "" {
		return nil
	}
	return []Report{{Recipient: a, Action: ActionComplained, FeedbackType: "abuse",
		Reply: Reply{Text: "feedback report: abuse (" + clipBytes(m.subject, 100) + ")"}}}
}

// autoReplyReports recognises RFC 3834 automatic replies and the common
// vacation messages; the recipient is the address that replied.
func (m *msg) autoReplyReports() []Report {
	if !m.isAutoReply() {
		return nil
	}
	rcpt := m.from
	if a := firstAddress(m.header.Get("Reply-To")); rcpt == "" && a != "" {
		rcpt = a
	}
	return []Report{{Recipient: rcpt, Action: ActionAutoReplied, Reply: Reply{Text: m.subject}}}
}

func (m *msg) isAutoReply() bool {
	h := m.header
	as := strings.ToLower(h.Get("Auto-Submitted"))
	if strings.HasPrefix(as, "auto-replied") {
		return true
	}
	for _, k := range []string{"X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Vacation", "X-Auto-Reply"} {
		if v := strings.ToLower(strings.TrimSpace(h.Get(k))); v != "" && v != "no" && v != "false" {
			return true
		}
	}
	p := strings.ToLower(strings.TrimSpace(h.Get("Precedence")))
	if p == "auto_reply" || p == "auto-reply" {
		return true
	}
	s := strings.ToLower(m.subject)
	for _, w := range autoReplySubjects {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

var autoReplySubjects = []string{
	"out of office", "out of the office", "automatic reply", "auto reply", "autoreply", "auto-reply",
	"auto response", "autoresponse", "auto-response", "vacation", "away from my", "on leave", "on holiday",
	"abwesenheit", "automatische antwort", "réponse automatique", "absence", "respuesta automática",
	"risposta automatica", "automatické odpověď", "automatická odpoveď", "automatická odpověď", "nepřítomnost", "neprítomnosť",
}

// firstAddress returns the first address of an address header, or "".
func firstAddress(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if a, err := netmail.ParseAddress(s); err == nil {
		return a.Address
	}
	if as, err := netmail.ParseAddressList(s); err == nil && len(as) > 0 {
		return as[0].Address
	}
	if a := addressRE.FindString(s); a != "" {
		return a
	}
	return ""
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return list
		}
	}
	return append(list, s)
}

// clip shortens s to at most n bytes without splitting a UTF-8 sequence.
func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// collapseSpace replaces runs of white space with one space.
func collapseSpace(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func isUTF8(b []byte) bool {
	return utf8.Valid(b)
}

// latin1 decodes bytes without a declared charset as ISO-8859-1 when they are
// not valid UTF-8.
func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}
