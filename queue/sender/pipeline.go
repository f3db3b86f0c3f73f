package sender

import (
	"context"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// Command pipelining (RFC 2920). With a server that offers PIPELINING, a
// transaction takes two round trips instead of four: MAIL, RCPT and DATA
// go in one write and their three answers are read in order (each within
// its stage's timeout), then the message and its final dot go in one write
// and the last answer is read. Every answer is checked: the first refusal
// is the Result (its stage as without pipelining); a DATA accepted after a
// refused MAIL or RCPT is ended with a lone dot (RFC 2920 section 3.1) and
// the connection starts its next transaction with RSET. A server without
// PIPELINING gets go-smtp's one command at a time.

// maxReplyLine bounds a line of the server's answers (twice RFC 5321's
// 512, as go-smtp does), so that a server cannot grow our buffer without
// end.
const maxReplyLine = 2000

// errLongLine is returned for an answer line longer than maxReplyLine.
var errLongLine = errors.New("sender: answer line too long")

// lineLimitReader fails a read once a line grows past limit bytes.
type lineLimitReader struct {
	r     io.Reader
	limit int
	cur   int
}

// Read implements io.Reader.
func (l *lineLimitReader) Read(b []byte) (int, error) {
	n, err := l.r.Read(b)
	for _, c := range b[:n] {
		if c == '\n' {
			l.cur = 0
			continue
		}
		l.cur++
		if l.cur > l.limit {
			return 0, errLongLine
		}
	}
	return n, err
}

// pipeliner is a connection's own text stream for pipelined transactions,
// over the same connection as its go-smtp client (which keeps EHLO, AUTH
// and QUIT; the server says nothing unasked, so neither reads ahead of
// the other).
type pipeliner struct {
	tp         *textproto.Conn
	mailParams string // " BODY=8BITMIME" when the server offers 8BITMIME, as go-smtp sends it
}

// newPipeliner returns the pipeliner of a session whose EHLO offered
// PIPELINING, else nil.
func newPipeliner(client *smtp.Client, conn net.Conn) *pipeliner {
	if ok, _ := client.Extension("PIPELINING"); !ok {
		return nil
	}
	p := &pipeliner{tp: textproto.NewConn(struct {
		io.Reader
		io.Writer
		io.Closer
	}{&lineLimitReader{r: conn, limit: maxReplyLine}, conn, conn})}
	if ok, _ := client.Extension("8BITMIME"); ok {
		p.mailParams = " BODY=8BITMIME"
	}
	return p
}

// smtpErrOf turns a *textproto.Error into the *smtp.SMTPError go-smtp
// would have returned (enhanced code taken off the message's lines); other
// errors are returned as they are.
func smtpErrOf(err error) error {
	var te *textproto.Error
	if !errors.As(err, &te) {
		return err
	}
	se := &smtp.SMTPError{Code: te.Code, Message: te.Msg}
	first, rest, ok := strings.Cut(te.Msg, " ")
	if !ok {
		return se
	}
	parts := strings.Split(first, ".")
	if len(parts) != 3 {
		return se
	}
	var enh smtp.EnhancedCode
	for i, s := range parts {
		n, err := strconv.Atoi(s)
		if err != nil {
			return se
		}
		enh[i] = n
	}
	se.EnhancedCode = enh
	se.Message = strings.ReplaceAll(rest, "\n"+first+" ", "\n")
	return se
}

// isAnswer reports whether err is the server's answer (a refusal), not a
// failure to get one.
func isAnswer(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se)
}

// transactPipelined is transact over c.pipe. It returns the same triple:
// the Result, whether c may be reused, and whether the failure is a stale
// pooled connection's.
func (p *Pool) transactPipelined(ctx context.Context, c *smtpConn, env Envelope, reused bool) (res Result, keep, stale bool) {
	t := p.cfg.Timeouts
	tp := c.pipe.tp
	defer func() { _ = c.base.SetDeadline(time.Time{}) }()
	read := func(expect int, timeout time.Duration) (string, error) {
		_ = c.base.SetReadDeadline(time.Now().Add(timeout))
		_, msg, err := tp.ReadResponse(expect)
		return msg, smtpErrOf(err)
	}
	if reused && c.dirty {
		_ = c.base.SetWriteDeadline(time.Now().Add(t.Rset))
		err := tp.PrintfLine("RSET")
		if err == nil {
			_, err = read(250, t.Rset)
		}
		if err != nil {
			return resultOf(ctx, StageMail, c.addr, t.Rset, err), false, ctx.Err() == nil
		}
	}
	c.dirty = true
	c.sent++

	// MAIL, RCPT, DATA in one write.
	_ = c.base.SetWriteDeadline(time.Now().Add(t.Mail))
	w := tp.W
	w.WriteString("MAIL FROM:<")
	w.WriteString(env.From)
	w.WriteString(">")
	w.WriteString(c.pipe.mailParams)
	w.WriteString("\r\nRCPT TO:<")
	w.WriteString(env.To)
	w.WriteString(">\r\nDATA\r\n")
	if err := w.Flush(); err != nil {
		return resultOf(ctx, StageMail, c.addr, t.Mail, err), false, reused && ctx.Err() == nil
	}
	steps := [3]struct {
		stage   string
		expect  int
		timeout time.Duration
	}{{StageMail, 250, t.Mail}, {StageRcpt, 25, t.Rcpt}, {StageData, 354, t.DataInit}}
	refused, refusedAt, dataAccepted := error(nil), 0, false
	for i, s := range steps {
		_, err := read(s.expect, s.timeout)
		switch {
		case err == nil:
			dataAccepted = i == 2
		case isAnswer(err):
			if refused == nil {
				refused, refusedAt = err, i
			}
		case refused != nil:
			// The session is lost after a refusal: report the refusal.
			return resultOf(ctx, steps[refusedAt].stage, c.addr, steps[refusedAt].timeout, refused), false, false
		default:
			// No answer (timeout, closed, garbage). A pooled connection that
			// fails before its first answer was closed by the server while
			// idle: the caller tries a new one.
			return resultOf(ctx, s.stage, c.addr, s.timeout, err), false, i == 0 && reused && ctx.Err() == nil
		}
	}
	if refused != nil {
		keep = true
		var se *smtp.SMTPError
		if errors.As(refused, &se) && se.Code == 421 {
			keep = false // the server closes the session
		}
		if dataAccepted && keep {
			// DATA was accepted without a recipient: end it with a lone
			// dot; the next transaction starts with RSET.
			_ = c.base.SetWriteDeadline(time.Now().Add(t.DataBlock))
			err := tp.PrintfLine(".")
			if err == nil {
				_, err = read(250, t.DataEnd)
			}
			keep = err == nil || isAnswer(err)
		}
		return resultOf(ctx, steps[refusedAt].stage, c.addr, steps[refusedAt].timeout, refused), keep, false
	}

	// The message and its final dot in one write.
	_ = c.base.SetWriteDeadline(time.Now().Add(t.DataBlock))
	dw := tp.DotWriter()
	if _, err := dw.Write(env.Data); err != nil {
		return resultOf(ctx, StageData, c.addr, t.DataBlock, err), false, false
	}
	err := dw.Close()
	var msg string
	if err == nil {
		msg, err = read(250, t.DataEnd)
	}
	if err != nil {
		if !isAnswer(err) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				// The dot may still be in flight: the write deadline
				// (DataBlock) or the answer's (DataEnd) expired.
				return fail(StageData, EnhancedNoAnswer, "no answer from %s within %v after the end of data", c.addr, t.DataEnd), false, false
			}
			return resultOf(ctx, StageData, c.addr, t.DataEnd, err), false, false
		}
		var se *smtp.SMTPError
		keep = errors.As(err, &se) && se.Code != 421
		return resultOf(ctx, StageData, c.addr, t.DataEnd, err), keep, false
	}
	c.dirty = false
	return Result{Stage: StageData, Sent: true, Reply: okReply(msg)}, true, false
}
