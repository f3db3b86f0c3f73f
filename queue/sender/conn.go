package sender

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// deadlineConn caps every deadline go-smtp sets at the caller's context
// deadline, and expires them all when the context ends, so that no stage
// outlives the Send that runs it.
type deadlineConn struct {
	net.Conn
	mu      sync.Mutex
	limit   time.Time // the context's deadline; zero = none
	aborted bool
}

var past = time.Unix(1, 0)

func (d *deadlineConn) clamp(t time.Time) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.aborted {
		return past
	}
	if !d.limit.IsZero() && (t.IsZero() || d.limit.Before(t)) {
		return d.limit
	}
	return t
}

// SetDeadline implements net.Conn.
func (d *deadlineConn) SetDeadline(t time.Time) error { return d.Conn.SetDeadline(d.clamp(t)) }

// SetReadDeadline implements net.Conn.
func (d *deadlineConn) SetReadDeadline(t time.Time) error { return d.Conn.SetReadDeadline(d.clamp(t)) }

// SetWriteDeadline implements net.Conn.
func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	return d.Conn.SetWriteDeadline(d.clamp(t))
}

// bind ties the connection to ctx until the returned func is called.
func (d *deadlineConn) bind(ctx context.Context) func() {
	d.mu.Lock()
	d.limit, _ = ctx.Deadline()
	d.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		d.mu.Lock()
		d.aborted = true
		d.mu.Unlock()
		_ = d.Conn.SetDeadline(past)
	})
	return func() {
		stop()
		d.mu.Lock()
		d.limit = time.Time{}
		d.mu.Unlock()
	}
}

// greetedConn replays a greeting before the real stream: the pool reads the
// server's greeting (and does STARTTLS) itself, then hands the connection to
// go-smtp, whose client insists on reading a greeting first.
type greetedConn struct {
	net.Conn
	prefix []byte
}

// Read implements net.Conn.
func (g *greetedConn) Read(b []byte) (int, error) {
	if len(g.prefix) > 0 {
		n := copy(b, g.prefix)
		g.prefix = g.prefix[n:]
		return n, nil
	}
	return g.Conn.Read(b)
}

// smtpConn is a pooled connection.
type smtpConn struct {
	addr     string
	dc       *deadlineConn
	base     net.Conn // dc, or the TLS connection over it
	client   *smtp.Client
	sent     int // transactions started on it
	lastUsed time.Time
	// dirty says the last transaction did not complete (no 250 after
	// DATA): the next one starts with RSET. After a completed transaction
	// MAIL follows directly (RFC 5321 3.3), saving RSET and the EHLO
	// go-smtp repeats after it.
	dirty bool
	// pipe runs the transactions when the server offers PIPELINING
	// (pipeline.go); nil: go-smtp's client, one command at a time.
	pipe *pipeliner
}

// close sends QUIT (bounded by timeout) and closes the connection.
func (c *smtpConn) close(timeout time.Duration) {
	c.client.CommandTimeout = timeout
	if err := c.client.Quit(); err != nil {
		_ = c.client.Close()
	}
}

// dialOne connects to addr and prepares a session: greeting, EHLO,
// STARTTLS, AUTH. It returns the connection bound to ctx (call the returned
// unbind before pooling it), or a Result saying why not.
func (p *Pool) dialOne(ctx context.Context, addr string) (*smtpConn, func(), Result, bool) {
	t := p.cfg.Timeouts
	d := net.Dialer{Timeout: t.Connect}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return nil, nil, fail(StageConnect, EnhancedNoDomain, "connect to %s: no MX or address record (%s)", addr, de.Err), false
		}
		return nil, nil, resultOf(ctx, StageConnect, addr, t.Connect, err), false
	}
	dc := &deadlineConn{Conn: raw}
	unbind := dc.bind(ctx)
	bad := func(r Result) (*smtpConn, func(), Result, bool) {
		unbind()
		_ = raw.Close()
		return nil, nil, r, false
	}
	host, _, _ := net.SplitHostPort(addr)

	// Greeting and, unless STARTTLS is off, a first EHLO: read here, so
	// that each has its own deadline and STARTTLS can be opportunistic.
	br := bufio.NewReaderSize(dc, 1024) // answers only; the server says nothing after them
	tp := textproto.NewConn(struct {
		io.Reader
		io.Writer
		io.Closer
	}{br, dc, dc})
	_ = dc.SetDeadline(time.Now().Add(t.Greeting))
	if _, _, err := tp.ReadResponse(220); err != nil {
		return bad(resultOf(ctx, StageGreeting, addr, t.Greeting, err))
	}
	base := net.Conn(dc)
	if p.cfg.StartTLS != StartTLSOff {
		_ = dc.SetDeadline(time.Now().Add(t.Ehlo))
		ext, err := ehlo(tp, p.cfg.HeloName)
		if err != nil {
			return bad(resultOf(ctx, StageEhlo, addr, t.Ehlo, err))
		}
		_, offered := ext["STARTTLS"]
		switch {
		case offered:
			_ = dc.SetDeadline(time.Now().Add(t.StartTLS))
			id, err := tp.Cmd("STARTTLS")
			if err == nil {
				tp.StartResponse(id)
				_, _, err = tp.ReadResponse(220)
				tp.EndResponse(id)
			}
			var te *textproto.Error
			if errors.As(err, &te) && p.cfg.StartTLS == StartTLSOpportunistic {
				break // refused: go on in plain text
			}
			if err != nil {
				return bad(resultOf(ctx, StageStartTLS, addr, t.StartTLS, err))
			}
			if br.Buffered() > 0 {
				return bad(fail(StageStartTLS, EnhancedProtocol, "bad answer from %s at starttls: data after the 220 answer", addr))
			}
			tc := tls.Client(dc, &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12,
				// Opportunistic TLS encrypts without authenticating (RFC 7435,
				// as MTAs do); "required" verifies the certificate.
				InsecureSkipVerify: p.cfg.InsecureSkipVerify || p.cfg.StartTLS != StartTLSRequired})
			if err := tc.HandshakeContext(ctx); err != nil {
				return bad(resultOf(ctx, StageStartTLS, addr, t.StartTLS, err))
			}
			base = tc
		case p.cfg.StartTLS == StartTLSRequired:
			_ = dc.SetDeadline(time.Now().Add(t.Quit))
			_, _ = tp.Cmd("QUIT")
			return bad(fail(StageStartTLS, EnhancedSecurity, "%s does not offer STARTTLS (smtp.starttls = required)", addr))
		}
	}
	_ = dc.SetDeadline(time.Time{})

	client := smtp.NewClient(&greetedConn{Conn: base, prefix: []byte("220 greeted\r\n")})
	client.CommandTimeout = t.Ehlo
	client.SubmissionTimeout = t.DataEnd
	if err := client.Hello(p.cfg.HeloName); err != nil {
		return bad(resultOf(ctx, StageEhlo, addr, t.Ehlo, err))
	}
	sc := &smtpConn{addr: addr, dc: dc, base: base, client: client}
	if p.cfg.Mode == ModeRelay && p.cfg.Username != "" {
		_, isTLS := base.(*tls.Conn)
		if !isTLS && !isLoopback(host) {
			sc.close(t.Quit)
			unbind()
			return nil, nil, fail(StageAuth, EnhancedSecurity, "relay %s did not offer STARTTLS: AUTH refused over plain text", addr), false
		}
		if !client.SupportsAuth(sasl.Plain) {
			sc.close(t.Quit)
			unbind()
			return nil, nil, fail(StageAuth, EnhancedSecurity, "relay %s does not offer AUTH PLAIN", addr), false
		}
		client.CommandTimeout = t.Auth
		if err := client.Auth(sasl.NewPlainClient("", p.cfg.Username, p.cfg.Password)); err != nil {
			r := resultOf(ctx, StageAuth, addr, t.Auth, err)
			sc.close(t.Quit)
			unbind()
			return nil, nil, r, false
		}
	}
	sc.pipe = newPipeliner(client, base)
	return sc, unbind, Result{}, true
}

// ehlo sends EHLO (HELO when the server refuses EHLO with 500/502) and
// returns the extensions offered.
func ehlo(tp *textproto.Conn, name string) (map[string]string, error) {
	id, err := tp.Cmd("EHLO %s", name)
	if err != nil {
		return nil, err
	}
	tp.StartResponse(id)
	_, msg, err := tp.ReadResponse(250)
	tp.EndResponse(id)
	var te *textproto.Error
	if errors.As(err, &te) && (te.Code == 500 || te.Code == 502) {
		id, err = tp.Cmd("HELO %s", name)
		if err != nil {
			return nil, err
		}
		tp.StartResponse(id)
		_, _, err = tp.ReadResponse(250)
		tp.EndResponse(id)
		return map[string]string{}, err
	}
	if err != nil {
		return nil, err
	}
	ext := map[string]string{}
	lines := strings.Split(msg, "\n")
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		ext[strings.ToUpper(k)] = v
	}
	return ext, nil
}

// isLoopback reports whether host is a loopback address or "localhost".
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// transact sends one message on c. reused says c carried a message
// before (RSET first when that one did not complete). It returns the Result, whether c may be reused, and
// whether the failure is a stale pooled connection's (the caller then
// retries on a fresh one).
func (p *Pool) transact(ctx context.Context, c *smtpConn, env Envelope, reused bool) (res Result, keep, stale bool) {
	if c.pipe != nil {
		return p.transactPipelined(ctx, c, env, reused)
	}
	t := p.cfg.Timeouts
	cl := c.client
	if reused && c.dirty {
		cl.CommandTimeout = t.Rset
		if err := cl.Reset(); err != nil {
			return resultOf(ctx, StageMail, c.addr, t.Rset, err), false, ctx.Err() == nil
		}
	}
	c.dirty = true
	c.sent++
	answered := func(stage string, timeout time.Duration, err error) (Result, bool, bool) {
		r := resultOf(ctx, stage, c.addr, timeout, err)
		var se *smtp.SMTPError
		// An answer leaves the session usable (RSET before the next
		// message), except a 421, after which the server closes it.
		keep := errors.As(err, &se) && se.Code != 421
		return r, keep, false
	}
	cl.CommandTimeout = t.Mail // also bounds the EHLO go-smtp repeats after RSET
	if err := cl.Mail(env.From, nil); err != nil {
		var se *smtp.SMTPError
		if reused && !errors.As(err, &se) && ctx.Err() == nil {
			return resultOf(ctx, StageMail, c.addr, t.Mail, err), false, true
		}
		return answered(StageMail, t.Mail, err)
	}
	cl.CommandTimeout = t.Rcpt
	if err := cl.Rcpt(env.To, nil); err != nil {
		return answered(StageRcpt, t.Rcpt, err)
	}
	cl.CommandTimeout = t.DataInit
	w, err := cl.Data()
	if err != nil {
		return answered(StageData, t.DataInit, err)
	}
	_ = c.base.SetDeadline(time.Now().Add(t.DataBlock))
	if _, err := w.Write(env.Data); err != nil {
		return resultOf(ctx, StageData, c.addr, t.DataBlock, err), false, false
	}
	cl.SubmissionTimeout = t.DataEnd
	resp, err := w.CloseWithResponse()
	if err != nil {
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				// The dot may still be in flight: the write deadline
				// (DataBlock) or the answer's (DataEnd) expired.
				return fail(StageData, EnhancedNoAnswer, "no answer from %s within %v after the end of data", c.addr, t.DataEnd), false, false
			}
		}
		return answered(StageData, t.DataEnd, err)
	}
	c.dirty = false
	return Result{Stage: StageData, Sent: true, Reply: okReply(resp.StatusText)}, true, false
}

var errPoolClosed = errors.New("sender: pool closed")

// String-typed check that Durations print in texts.
var _ fmt.Stringer = time.Duration(0)
