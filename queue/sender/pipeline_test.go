package sender

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bounceloop/bounceloop/bounces"
)

// scripted is a raw SMTP server on loopback for one connection at a time.
// With pipelining it reads MAIL, RCPT and DATA before it answers any of
// them, so a client that waits for each answer stalls (and fails its
// timeout). rcpt answers each RCPT (by recipient), data the DATA command
// after it. It records the commands it read.
type scripted struct {
	pipelining bool
	rcpt       func(to string) string
	data       string // the answer to DATA; "" = "354 go ahead"
	// strict answers DATA with 554 when no RCPT was accepted, as most
	// servers do; otherwise DATA gets its answer (354) regardless.
	strict bool

	mu   sync.Mutex
	cmds []string
}

func (s *scripted) log(c string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmds = append(s.cmds, c)
}

func (s *scripted) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cmds...)
}

func (s *scripted) start(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.serve(c) })
		}
	})
	return ln.Addr().String()
}

func (s *scripted) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := textproto.NewReader(bufio.NewReader(c))
	say := func(lines ...string) { fmt.Fprint(c, strings.Join(lines, "\r\n")+"\r\n") }
	say("220 scripted.test ESMTP")
	var pending []string // answers not yet written (pipelining)
	refused := false     // a RCPT of this transaction was refused
	flush := func() {
		if len(pending) > 0 {
			say(pending...)
			pending = nil
		}
	}
	answer := func(a string) {
		if s.pipelining {
			pending = append(pending, a)
			return
		}
		say(a)
	}
	for {
		line, err := r.ReadLine()
		if err != nil {
			return
		}
		s.log(line)
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch verb {
		case "EHLO":
			if s.pipelining {
				say("250-scripted.test", "250-8BITMIME", "250 PIPELINING")
			} else {
				say("250-scripted.test", "250 8BITMIME")
			}
		case "MAIL":
			refused = false
			answer("250 2.1.0 ok")
		case "RCPT":
			to := strings.TrimSuffix(strings.TrimPrefix(line[len("RCPT TO:"):], "<"), ">")
			a := s.rcpt(to)
			refused = refused || !strings.HasPrefix(a, "2")
			answer(a)
		case "DATA":
			d := s.data
			if d == "" {
				d = "354 go ahead"
			}
			if s.strict && refused {
				d = "554 5.5.1 no valid recipients"
			}
			answer(d)
			flush()
			if !strings.HasPrefix(d, "354") {
				continue
			}
			body, err := r.ReadDotBytes()
			if err != nil {
				return
			}
			if len(body) == 0 {
				s.log(".")
			} else {
				s.log("<message>")
			}
			if refused {
				say("554 5.5.1 no valid recipients")
				continue
			}
			say("250 2.0.0 Ok: queued as X")
		case "RSET":
			refused = false
			say("250 2.0.0 reset")
		case "QUIT":
			say("221 2.0.0 bye")
			return
		default:
			say("502 5.5.2 unknown")
		}
	}
}

// TestPipelining: with PIPELINING, MAIL, RCPT and DATA are sent before
// any answer (the server answers only then); the answers and stages are
// those of the unpipelined client; a refused recipient whose DATA was
// accepted anyway ends with a lone dot and the next message starts with
// RSET; a server without PIPELINING is spoken to one command at a time.
func TestPipelining(t *testing.T) {
	rcpt := func(to string) string {
		if strings.HasPrefix(to, "unknown") {
			return "550 5.1.1 no such user"
		}
		return "250 2.1.5 ok"
	}
	for _, tc := range []struct{ pipelining, strict bool }{{true, false}, {true, true}, {false, false}} {
		pipelining := tc.pipelining
		t.Run(fmt.Sprintf("pipelining=%v,strict=%v", pipelining, tc.strict), func(t *testing.T) {
			srv := &scripted{pipelining: pipelining, rcpt: rcpt, strict: tc.strict}
			addr := srv.start(t)
			p := pool(t, Config{Routes: map[string]string{"*": addr}, Timeouts: Timeouts{Mail: 2 * time.Second}}, nil)
			send := func(to string) Result {
				return p.Send(context.Background(), "k", "example.org", Limits{MaxConnections: 1}, env(to, to))
			}
			if r := send("a@example.org"); !r.Sent || r.Reply != (bounces.Reply{Code: 250, Enhanced: "2.0.0", Text: "250 2.0.0 Ok: queued as X"}) {
				t.Errorf("Send(a) = %+v, want sent with 250 2.0.0 Ok: queued as X", r)
			}
			r := send("unknown@example.org")
			if r.Sent || r.Stage != StageRcpt || r.Reply != (bounces.Reply{Code: 550, Enhanced: "5.1.1", Text: "550 5.1.1 no such user"}) {
				t.Errorf("Send(unknown) = %+v, want the 550 5.1.1 at rcpt", r)
			}
			if r := send("b@example.org"); !r.Sent {
				t.Errorf("Send(b) after a refusal = %+v, want sent", r)
			}
			cmds := srv.commands()
			var verbs []string
			for _, c := range cmds {
				verbs = append(verbs, strings.SplitN(c, " ", 2)[0])
			}
			got := strings.Join(verbs, ",")
			// Two EHLOs at connect: the pool's own (STARTTLS) and go-smtp's.
			want := "EHLO,EHLO,MAIL,RCPT,DATA,<message>,MAIL,RCPT,DATA,.,RSET,MAIL,RCPT,DATA,<message>"
			if tc.strict {
				// DATA refused: no lone dot.
				want = "EHLO,EHLO,MAIL,RCPT,DATA,<message>,MAIL,RCPT,DATA,RSET,MAIL,RCPT,DATA,<message>"
			}
			if !pipelining {
				// go-smtp: no DATA after a refused RCPT; RSET and EHLO again.
				want = "EHLO,EHLO,MAIL,RCPT,DATA,<message>,MAIL,RCPT,RSET,EHLO,MAIL,RCPT,DATA,<message>"
			}
			if got != want {
				t.Errorf("commands = %s, want %s", got, want)
			}
			if !strings.Contains(cmds[2], "BODY=8BITMIME") {
				t.Errorf("MAIL = %q, want BODY=8BITMIME (offered)", cmds[2])
			}
		})
	}
}

// TestPipeliningDataRefused: a DATA refused (after an accepted RCPT) is the
// Result at the data stage, and the connection is reused after RSET.
func TestPipeliningDataRefused(t *testing.T) {
	srv := &scripted{pipelining: true, rcpt: func(string) string { return "250 ok" }, data: "554 5.7.1 not now"}
	addr := srv.start(t)
	p := pool(t, Config{Routes: map[string]string{"*": addr}}, nil)
	r := p.Send(context.Background(), "k", "example.org", Limits{MaxConnections: 1}, env("a@example.org", "1"))
	if r.Sent || r.Stage != StageData || r.Reply.Code != 554 || r.Reply.Enhanced != "5.7.1" {
		t.Errorf("Send = %+v, want 554 5.7.1 at data", r)
	}
}

func TestSMTPErrOf(t *testing.T) {
	tests := []struct {
		msg  string
		want smtp.SMTPError
	}{
		{"5.1.1 no such user", smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}},
		{"5.1.1 first\n5.1.1 second", smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "first\nsecond"}},
		{"#5.1.0 Address rejected.", smtp.SMTPError{Code: 550, Message: "#5.1.0 Address rejected."}},
		{"1 mailbox not found", smtp.SMTPError{Code: 550, Message: "1 mailbox not found"}},
		{"rejected", smtp.SMTPError{Code: 550, Message: "rejected"}},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			err := smtpErrOf(&textproto.Error{Code: 550, Msg: tt.msg})
			se, ok := err.(*smtp.SMTPError)
			if !ok || se.Code != tt.want.Code || se.EnhancedCode != tt.want.EnhancedCode || se.Message != tt.want.Message {
				t.Errorf("smtpErrOf(550 %q) = %#v, want %#v", tt.msg, err, tt.want)
			}
		})
	}
}

// TestPipeliningManyRefusals: refused recipients in a row on one
// connection of the simulated world (go-smtp's server, which closes a
// session after three protocol errors) leave it usable: nothing is sent
// out of turn.
func TestPipeliningManyRefusals(t *testing.T) {
	w := simpleWorld(t, false, nil)
	p := pool(t, Config{Routes: w.Routes()}, nil)
	for i := range 8 {
		r := p.Send(context.Background(), "k", "azet.sk", Limits{MaxConnections: 1}, env(fmt.Sprintf("unknown-%d@azet.sk", i), fmt.Sprint(i)))
		if r.Reply.Code != 550 || r.Stage != StageRcpt {
			t.Fatalf("Send(unknown-%d) = %+v, want 550 at rcpt", i, r)
		}
	}
	if r := p.Send(context.Background(), "k", "azet.sk", Limits{MaxConnections: 1}, env("ok-1@azet.sk", "ok")); !r.Sent {
		t.Errorf("Send(ok) after 8 refusals = %+v, want sent", r)
	}
	if n := w.Stats().Providers["azet.sk"].Connections; n != 1 {
		t.Errorf("azet.sk: %d connections, want 1", n)
	}
}
