package smtpsim

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"

	"github.com/emersion/go-smtp"
)

// backend makes sessions for a provider.
type backend struct{ pr *provider }

// NewSession implements smtp.Backend; it is called at EHLO.
func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.pr.w.sleep(b.pr.delay)
	return &session{pr: b.pr, c: c}, nil
}

// outcome is what the world decided for a recipient.
type outcome int

const (
	outDeliver outcome = iota
	outUnknown
	outSpam
	outFull
	outSize
)

// rcpt is an accepted recipient of the current transaction.
type rcpt struct {
	addr, domain string
	out          outcome
	ds           *domainState
}

// session is one SMTP session.
type session struct {
	pr    *provider
	c     *smtp.Conn
	rcpts []rcpt
}

// Reset implements smtp.Session.
func (s *session) Reset() { s.rcpts = nil }

// Logout implements smtp.Session.
func (s *session) Logout() error { return nil }

// Mail implements smtp.Session.
func (s *session) Mail(string, *smtp.MailOptions) error {
	s.pr.w.sleep(s.pr.delay)
	return nil
}

// raw returns the provider's connection under TLS, if any.
func (s *session) raw() *conn {
	nc := s.c.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, _ := nc.(*conn)
	return c
}

// reject counts and returns an answer; a 421 closes the connection after it.
func (s *session) reject(domain string, e *smtp.SMTPError) error {
	s.pr.w.record(domain, e.Code, false, "", 0)
	if e.Code == 421 {
		if c := s.raw(); c != nil {
			c.closeAfter.Store(true)
		}
	}
	return e
}

// Rcpt implements smtp.Session: rate limit, temporary failures, unknown
// users and full mailboxes are answered here.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	w := s.pr.w
	addr := strings.ToLower(to)
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad recipient address syntax"}
	}
	local, domain := addr[:at], addr[at+1:]
	ds := w.state(domain)
	w.sleep(ds.beh.Delay)
	w.record(domain, 0, true, "", 0)
	if Fault(ds.fault.Load()) == FaultGarbage {
		if _, err := s.c.Conn().Write([]byte("?? this is not an SMTP reply\r\n")); err != nil {
			return err
		}
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "garbage sent"}
	}
	if ds.limiter != nil && !ds.limiter.Allow() {
		return s.reject(domain, ds.replies["rate"])
	}
	n := w.attempt(addr)
	temp := false
	switch {
	case strings.HasPrefix(local, "tempfail-"):
		temp = true
	case strings.HasPrefix(local, "flaky-"):
		temp = n == 1
	case strings.HasPrefix(local, "ok-"):
	default:
		// n goes first: FNV-1a barely mixes its last bytes, so with n last
		// a recipient drew nearly the same number at every attempt (and one
		// that failed once failed every time).
		temp = ds.beh.TempFailShare > 0 && w.unit(itoa(n), addr) < ds.beh.TempFailShare
	}
	if temp {
		return s.reject(domain, ds.replies["tempfail"])
	}
	out := s.decide(local, addr, ds.beh)
	switch out {
	case outUnknown:
		return s.reject(domain, ds.replies["unknown"])
	case outFull:
		return s.reject(domain, ds.replies["full"])
	}
	s.rcpts = append(s.rcpts, rcpt{addr: addr, domain: domain, out: out, ds: ds})
	return nil
}

// decide returns the recipient's fixed outcome.
func (s *session) decide(local, addr string, b Domain) outcome {
	for _, p := range []struct {
		prefix string
		out    outcome
	}{{"unknown-", outUnknown}, {"spam-", outSpam}, {"full-", outFull}, {"big-", outSize}, {"ok-", outDeliver}} {
		if strings.HasPrefix(local, p.prefix) {
			return p.out
		}
	}
	u := s.pr.w.unit(addr)
	for _, band := range []struct {
		share float64
		out   outcome
	}{{b.UnknownShare, outUnknown}, {b.SpamShare, outSpam}, {b.FullShare, outFull}, {b.SizeShare, outSize}} {
		if u < band.share {
			return band.out
		}
		u -= band.share
	}
	return outDeliver
}

// Data implements smtp.Session: faults, spam blocks and size limits are
// answered here, and accepted messages are recorded.
func (s *session) Data(r io.Reader) error {
	w := s.pr.w
	if len(s.rcpts) == 0 {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "No valid recipients"}
	}
	first := s.rcpts[0]
	switch Fault(first.ds.fault.Load()) {
	case FaultDrop:
		var buf [256]byte
		_, _ = io.ReadFull(r, buf[:])
		if c := s.raw(); c != nil {
			c.Close()
		}
		return errors.New("smtpsim: connection dropped")
	case FaultStall:
		_, _ = io.Copy(io.Discard, r)
		<-w.done
		return errors.New("smtpsim: stalled")
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	w.sleep(first.ds.beh.Delay)
	id := messageID(data)
	// One answer for the transaction: the first recipient's (the sender
	// sends one recipient per transaction).
	for _, rc := range s.rcpts {
		switch {
		case rc.out == outSpam:
			return s.reject(rc.domain, rc.ds.replies["spam"])
		case rc.out == outSize && len(data) > rc.ds.beh.SizeLimit:
			return s.reject(rc.domain, rc.ds.replies["size"])
		}
	}
	for _, rc := range s.rcpts {
		w.record(rc.domain, 250, false, id, len(data))
	}
	return nil
}

// messageID returns the Message-ID header of a message, without angle
// brackets, or "".
func messageID(data []byte) string {
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(data)
	} else {
		end += 4
	}
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(data[:end]))).ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return ""
	}
	return strings.Trim(h.Get("Message-Id"), "<> \t")
}

// itoa formats a small non-negative int.
func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

var _ net.Conn = (*conn)(nil)
