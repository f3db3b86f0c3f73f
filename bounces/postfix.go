package bounces

import (
	"io"
	"strings"
	"time"
)

// PostfixReader reads the delivery records of a Postfix mail log: the lines
// a delivery agent (postfix/smtp, lmtp, local, virtual, pipe, error, ...)
// writes for each recipient, such as
//
//	May 17 08:03:11 mail postfix/smtp[4242]: 3F2A11C0412: to=<jan@azet.sk>, relay=mx.azet.sk[1.2.3.4]:25, delay=1.2, delays=0.1/0/0.6/0.5, dsn=5.1.1, status=bounced (host mx.azet.sk[1.2.3.4] said: 550 5.1.1 <jan@azet.sk>: Recipient address rejected: User unknown (in reply to RCPT TO command))
//
// Each becomes an Event with Source SourceLog, the Recipient of to=, its
// Domain, Enhanced from dsn=, Text the parenthesised text after the status
// and Code the basic reply code of the answer: the code after "said:" or
// "refused to talk to me:", or the code the text starts with (status=sent
// (250 2.0.0 Ok ...)). When no answer with a code was received (connection
// timeouts, DNS failures, local delivery), Code comes from the class of
// dsn=: 2.x.x gives 250, 4.x.x gives 450 and 5.x.x gives 550. MessageID
// stays empty: the queue id is not the Message-ID; QueueID returns it.
//
// Timestamps are the traditional syslog form ("May 17 08:03:11", read in
// the reader's year and location) or RFC 3339 as newer syslogs write
// ("2018-05-17T08:03:11.123456+02:00", also with a +0200 offset). Times are
// returned in UTC. A traditional timestamp whose month is more than six
// months before the previous line's (a Jan line after Dec lines) moves to
// the next year; an RFC 3339 timestamp sets the year for the lines after it.
//
// Lines of other programs and other Postfix lines (qmgr, cleanup, smtpd,
// warnings, ...) are not records and are skipped silently, as are the
// status=deliverable and status=undeliverable lines of address
// verification probes and qmgr's "from=<...>, status=expired, returned to
// sender", which names the sender, not a recipient (each recipient's last
// deferral is in its own status=deferred line). A status= line that cannot
// be read, and a line longer than MaxLineBytes, is a *RecordError.
//
// A PostfixReader streams: memory does not grow with the input. It is not
// safe for concurrent use.
type PostfixReader struct {
	lines     lineReader
	year      int
	loc       *time.Location
	lastMonth time.Month
	latest    time.Month // see SetLatestMonth
	queueID   string
	status    string
}

// NewPostfixReader returns a reader of the log in r; name is used in errors.
// year is the year of the first traditional timestamp (0 means the current
// year) and loc the time zone of traditional timestamps (nil means UTC).
func NewPostfixReader(r io.Reader, name string, year int, loc *time.Location) *PostfixReader {
	if year == 0 {
		year = time.Now().Year()
	}
	if loc == nil {
		loc = time.UTC
	}
	return &PostfixReader{lines: newLineReader(r, name), year: year, loc: loc}
}

// SetLatestMonth says that the log's first traditional timestamp is at
// most in month m of the reader's year: a first line of a later month is
// read in the year before. A report for January 2019 gives year 2019 and
// m January, so that a log that began on 31 December is read from 2018.
// m 0 (the default) reads the first line in the reader's year.
func (r *PostfixReader) SetLatestMonth(m time.Month) { r.latest = m }

// QueueID returns the Postfix queue id of the record Next returned last
// ("3F2A11C0412"), or "".
func (r *PostfixReader) QueueID() string { return r.queueID }

// Status returns the Postfix status of the record Next returned last, in
// lower case: "sent", "deferred", "bounced", "expired" or "softbounce".
func (r *PostfixReader) Status() string { return r.status }

// Next returns the next delivery record. At the end it returns io.EOF; for a
// bad record a *RecordError (call Next again to go on); for a read error,
// that error (wrapped). The event is zero whenever the error is not nil.
func (r *PostfixReader) Next() (Event, error) {
	r.queueID, r.status = "", ""
	for {
		line, tooLong, err := r.lines.read()
		if err != nil {
			return Event{}, err
		}
		if tooLong {
			return Event{}, r.lines.tooLongError()
		}
		ev, qid, status, reason, ok := r.parse(line)
		if reason != "" {
			return Event{}, r.lines.recordError("%s", reason)
		}
		if !ok {
			continue
		}
		r.queueID, r.status = qid, status
		return ev, nil
	}
}

// parse reads one line. ok is false for a line that is not a record;
// reason is set for a record that cannot be read.
func (r *PostfixReader) parse(b []byte) (ev Event, qid, status, reason string, ok bool) {
	// Cheap filter first: most lines of a busy log are not records.
	si := indexStatus(b)
	if si < 0 {
		return Event{}, "", "", "", false
	}
	line := string(b)
	t, prog, msg, reason := r.header(line)
	if reason != "" {
		if !strings.Contains(line, "postfix") {
			return Event{}, "", "", "", false // not ours, whatever it is
		}
		return Event{}, "", "", reason, false
	}
	if !isPostfixProgram(prog) {
		return Event{}, "", "", "", false
	}
	// msg: "QUEUEID: to=<addr>, ..., dsn=5.1.1, status=bounced (text)"
	colon := strings.Index(msg, ": ")
	if colon <= 0 || !isQueueID(msg[:colon]) {
		return Event{}, "", "", "", false // warnings, NOQUEUE, ...
	}
	qid, fields := msg[:colon], msg[colon+2:]
	i := strings.Index(fields, "status=")
	if i < 0 || i > 0 && fields[i-1] != ' ' {
		return Event{}, "", "", "", false
	}
	rest := fields[i+len("status="):]
	fields = fields[:i]
	end := strings.IndexByte(rest, ' ')
	if end < 0 {
		end = len(rest)
	}
	status = strings.ToLower(strings.TrimRight(rest[:end], ","))
	text := strings.TrimSpace(rest[end:])
	switch status {
	case "sent", "deferred", "bounced", "expired", "softbounce":
	case "deliverable", "undeliverable":
		return Event{}, "", "", "", false // address verification probes
	default:
		return Event{}, "", "", "status: unknown " + quote(status), false
	}
	if len(text) >= 2 && text[0] == '(' && text[len(text)-1] == ')' {
		text = text[1 : len(text)-1]
	}
	rcpt, hasTo := postfixAddr(fields, "to=<")
	if !hasTo {
		if strings.HasPrefix(fields, "from=<") {
			return Event{}, "", "", "", false // qmgr: status=expired, returned to sender
		}
		return Event{}, "", "", `no "to=<...>" recipient`, false
	}
	if rcpt == "" {
		return Event{}, "", "", "empty recipient", false
	}
	ev = Event{Time: t, Recipient: rcpt, Text: text, Source: SourceLog}
	ev.Enhanced = postfixField(fields, "dsn=")
	if e := ev.Enhanced; e != "" && (e[0] != '2' && e[0] != '4' && e[0] != '5' || enhancedLen(e) != len(e)) {
		return Event{}, "", "", "dsn: bad status code " + quote(ev.Enhanced), false
	}
	ev.Code = answerCode(text)
	if ev.Code == 0 {
		if ev.Enhanced == "" {
			ev.Enhanced, _ = FindEnhanced(text)
		}
		if ev.Enhanced == "" {
			return Event{}, "", "", "no reply code in the answer and no dsn=", false
		}
		ev.Code = int(ev.Enhanced[0]-'0')*100 + 50
	} else if ev.Enhanced == "" {
		ev.Enhanced = ParseReply(text).Enhanced
	}
	if err := ev.Normalize(); err != nil {
		return Event{}, "", "", "recipient: " + quote(rcpt) + " has no valid domain", false
	}
	return ev, qid, status, "", true
}

// indexStatus finds " status=" in b without allocating.
func indexStatus(b []byte) int {
	for i := 0; i+8 <= len(b); i++ {
		if b[i] == 's' && b[i+6] == '=' && i > 0 && b[i-1] == ' ' && string(b[i:i+7]) == "status=" {
			return i
		}
	}
	return -1
}

func quote(s string) string { return `"` + clip(s) + `"` }

// header splits a syslog line into its time, program name and message.
func (r *PostfixReader) header(line string) (t time.Time, prog, msg, reason string) {
	var rest string
	if len(line) >= 4 && isDigit(line[0]) && isDigit(line[1]) && isDigit(line[2]) && isDigit(line[3]) {
		sp := strings.IndexByte(line, ' ')
		if sp < 0 {
			return time.Time{}, "", "", "no syslog header"
		}
		var err error
		t, err = time.Parse(time.RFC3339, line[:sp])
		if err != nil {
			t, err = time.Parse("2006-01-02T15:04:05.999999999-0700", line[:sp])
		}
		if err != nil || t.IsZero() {
			return time.Time{}, "", "", "time: bad RFC 3339 timestamp " + quote(line[:sp])
		}
		t = t.UTC()
		r.year, r.lastMonth = t.Year(), t.Month()
		rest = line[sp+1:]
	} else {
		var reason string
		if t, reason = r.syslogTime(line); reason != "" {
			return time.Time{}, "", "", reason
		}
		rest = line[15:]
	}
	rest = strings.TrimLeft(rest, " ")
	sp := strings.IndexByte(rest, ' ') // after the host
	if sp < 0 {
		return time.Time{}, "", "", "no syslog header"
	}
	rest = rest[sp+1:]
	colon := strings.Index(rest, ": ")
	if colon <= 0 {
		return time.Time{}, "", "", "no program in syslog header"
	}
	prog = rest[:colon]
	if b := strings.IndexByte(prog, '['); b >= 0 {
		prog = prog[:b]
	}
	return t, prog, rest[colon+2:], ""
}

var monthNames = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// syslogTime reads "Mon DD HH:MM:SS " (DD space-padded or zero-padded).
func (r *PostfixReader) syslogTime(line string) (time.Time, string) {
	if len(line) < 16 || line[3] != ' ' || line[6] != ' ' || line[9] != ':' || line[12] != ':' || line[15] != ' ' {
		return time.Time{}, "no syslog header"
	}
	var month time.Month
	for i, n := range monthNames {
		if line[:3] == n {
			month = time.Month(i + 1)
			break
		}
	}
	day, ok1 := num2(line[4:6])
	hour, ok2 := num2(line[7:9])
	minute, ok3 := num2(line[10:12])
	sec, ok4 := num2(line[13:15])
	if month == 0 || !ok1 || !ok2 || !ok3 || !ok4 || day < 1 || hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, "time: bad syslog timestamp " + quote(line[:15])
	}
	year, advance := r.year, true
	switch {
	case r.lastMonth == 0:
		if r.latest != 0 && month > r.latest {
			year--
		}
	case month+6 < r.lastMonth: // Jan after Dec: a new year
		year++
	case r.lastMonth+6 < month: // a late Dec line after Jan lines
		year, advance = year-1, false
	}
	t := time.Date(year, month, day, hour, minute, sec, 0, r.loc)
	if t.Day() != day && sec < 60 {
		return time.Time{}, "time: no such day " + quote(line[:6])
	}
	if advance {
		r.year, r.lastMonth = year, month
	}
	return t.UTC(), ""
}

// num2 reads two digits, the first of which may be a space.
func num2(s string) (int, bool) {
	if !isDigit(s[1]) || !(isDigit(s[0]) || s[0] == ' ') {
		return 0, false
	}
	n := int(s[1] - '0')
	if s[0] != ' ' {
		n += int(s[0]-'0') * 10
	}
	return n, true
}

// isPostfixProgram accepts "postfix/smtp", "postfix-out/smtp",
// "postfix/submission/smtp" and the like.
func isPostfixProgram(p string) bool {
	return strings.HasPrefix(p, "postfix") && strings.IndexByte(p, '/') > 0
}

// isQueueID accepts Postfix queue ids: short (hex) and long (base 52) ones.
func isQueueID(s string) bool {
	if len(s) < 5 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && !isLetter(s[i]) {
			return false
		}
	}
	return s != "NOQUEUE" && s != "warning"
}

// postfixAddr returns the address of a "to=<...>" field at the start of
// fields or after ", ".
func postfixAddr(fields, key string) (string, bool) {
	i := fieldIndex(fields, key)
	if i < 0 {
		return "", false
	}
	v := fields[i+len(key):]
	end := strings.Index(v, ">, ")
	if end < 0 {
		end = strings.LastIndexByte(v, '>')
		if end < 0 {
			return "", false
		}
	}
	return v[:end], true
}

// postfixField returns the value of a "key=value," field.
func postfixField(fields, key string) string {
	i := fieldIndex(fields, key)
	if i < 0 {
		return ""
	}
	v := fields[i+len(key):]
	if end := strings.IndexByte(v, ','); end >= 0 {
		v = v[:end]
	}
	return strings.TrimSpace(v)
}

func fieldIndex(fields, key string) int {
	if strings.HasPrefix(fields, key) {
		return 0
	}
	i := strings.Index(fields, ", "+key)
	if i < 0 {
		return -1
	}
	return i + 2
}

// answerCode returns the basic reply code of the SMTP answer in a Postfix
// status text, or 0.
func answerCode(text string) int {
	for _, marker := range [...]string{" said: ", " refused to talk to me: "} {
		if i := strings.Index(text, marker); i >= 0 {
			return ParseReply(text[i+len(marker):]).Code
		}
	}
	return ParseReply(text).Code
}
