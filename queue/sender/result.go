package sender

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strings"
	"syscall"

	"github.com/emersion/go-smtp"

	"github.com/bounceloop/bounceloop/bounces"
)

// The stages of Result.Stage.
const (
	StageConnect  = "connect"  // DNS, TCP connect, a free connection slot
	StageGreeting = "greeting" // the server's 220
	StageEhlo     = "ehlo"
	StageStartTLS = "starttls" // the STARTTLS command and the TLS handshake
	StageAuth     = "auth"
	StageMail     = "mail"
	StageRcpt     = "rcpt"
	StageData     = "data" // DATA, the message, and the answer to its end
	StageQuit     = "quit"
)

// Enhanced status codes (RFC 3463) of the answers the pool makes up when
// the server gave none. All are temporary (4.x.x) except where the domain
// cannot receive mail at all, so the classifier reads them as transient
// (TLS handshake failures are 4.4.2, a bad connection, and so transient).
const (
	EnhancedNoAnswer   = "4.4.1"  // connection refused, connect or answer timed out
	EnhancedDropped    = "4.4.2"  // the connection was closed or reset
	EnhancedDNS        = "4.4.3"  // the MX lookup failed (temporarily)
	EnhancedExpired    = "4.4.7"  // the caller's context ended
	EnhancedProtocol   = "4.5.0"  // an answer that is not SMTP (garbage)
	EnhancedSecurity   = "4.7.0"  // STARTTLS missing when required, or AUTH over plain text refused
	EnhancedShutdown   = "4.3.2"  // the pool is closed
	EnhancedNoDomain   = "5.1.2"  // the domain has neither MX nor address records
	EnhancedNullMX     = "5.1.10" // the domain publishes a null MX (RFC 7505)
	EnhancedBadAddress = "5.1.3"  // an envelope address with CR, LF or NUL
)

// Result is the outcome of one Send: the server's answer to the stage that
// failed, or to the end of DATA. When there was no answer (connection
// failure, timeout, TLS failure, garbage), Reply.Code is 0, Reply.Enhanced
// one of the Enhanced* codes and Reply.Text says what happened ("connect to
// 127.0.0.1:2525: connection refused"); it never holds the recipient's
// address. Texts of real answers are the answer's lines as given, joined by
// one space ("550 5.1.1 The email account ...").
type Result struct {
	Reply bounces.Reply
	Stage string // one of the Stage* constants
	Sent  bool   // a 2xx answer to the end of DATA
}

// fail is a Result without an answer from the server.
func fail(stage, enhanced, format string, args ...any) Result {
	return Result{Stage: stage, Reply: bounces.Reply{Enhanced: enhanced, Text: fmt.Sprintf(format, args...)}}
}

// replyOf builds the Reply of an answer: code, the lines of msg (go-smtp
// strips the code and, on the first line, the enhanced code).
func replyOf(code int, enh smtp.EnhancedCode, msg string) bounces.Reply {
	r := bounces.Reply{Code: code}
	if enh[0] >= 2 && enh[0] <= 5 && enh[1] >= 0 && enh[2] >= 0 {
		r.Enhanced = fmt.Sprintf("%d.%d.%d", enh[0], enh[1], enh[2])
	}
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	text := strings.Join(lines, " ")
	var b strings.Builder
	fmt.Fprintf(&b, "%d", code)
	if r.Enhanced != "" {
		b.WriteString(" " + r.Enhanced)
	}
	if text != "" {
		b.WriteString(" " + text)
	}
	r.Text = b.String()
	return r
}

// okReply builds the Reply of a 2xx answer to the end of DATA from go-smtp's
// status text ("2.0.0 OK: queued as X").
func okReply(status string) bounces.Reply {
	status = strings.Join(strings.Fields(strings.ReplaceAll(status, "\n", " ")), " ")
	if status == "" {
		status = "2.0.0 OK"
	}
	r := bounces.ParseReply("250 " + status)
	r.Code = 250
	return r
}

// resultOf turns an error of stage with the server addr into a Result. ctx
// tells a timeout from the caller's cancellation; timeout is the stage's
// limit, for the text.
func resultOf(ctx context.Context, stage, addr string, timeout fmt.Stringer, err error) Result {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return Result{Stage: stage, Reply: replyOf(se.Code, se.EnhancedCode, se.Message)}
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return Result{Stage: stage, Reply: replyOf(te.Code, smtp.EnhancedCode{}, te.Msg)}
	}
	if ctx.Err() != nil {
		return fail(stage, EnhancedExpired, "sending to %s interrupted at %s: %v", addr, stage, context.Cause(ctx))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		if stage == StageConnect {
			return fail(stage, EnhancedNoAnswer, "connect to %s: timed out after %v", addr, timeout)
		}
		return fail(stage, EnhancedNoAnswer, "no answer from %s within %v at %s", addr, timeout, stage)
	}
	var tpe textproto.ProtocolError
	if errors.As(err, &tpe) || strings.Contains(err.Error(), "short response") || strings.Contains(err.Error(), "invalid response code") {
		return fail(stage, EnhancedProtocol, "bad answer from %s at %s: %v", addr, stage, err)
	}
	var ce *tls.CertificateVerificationError
	var ue x509.UnknownAuthorityError
	if errors.As(err, &ce) || errors.As(err, &ue) {
		// Only verified TLS (starttls = "required") checks certificates: a
		// policy of ours, not a passing fault.
		return fail(stage, EnhancedSecurity, "TLS certificate of %s not trusted: %v", addr, err)
	}
	var ae tls.AlertError
	var re tls.RecordHeaderError
	if stage == StageStartTLS || errors.As(err, &ae) || errors.As(err, &re) {
		// A handshake that fails is a bad connection (4.4.2), retried like one.
		return fail(stage, EnhancedDropped, "TLS handshake with %s failed: %v", addr, err)
	}
	if stage == StageConnect {
		return fail(stage, EnhancedNoAnswer, "connect to %s: %s", addr, netReason(err))
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) {
		return fail(stage, EnhancedDropped, "connection to %s dropped at %s: %s", addr, stage, netReason(err))
	}
	return fail(stage, EnhancedDropped, "connection to %s failed at %s: %s", addr, stage, netReason(err))
}

// netReason shortens a network error to its cause ("connection refused").
func netReason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return de.Error()
	}
	if errors.Is(err, io.EOF) {
		return "connection closed by the server"
	}
	return err.Error()
}
