package sender

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"go.uber.org/goleak"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/queue/internal/smtpsim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// world starts a simulated world, closed with the test.
func world(t testing.TB, cfg smtpsim.Config) *smtpsim.World {
	t.Helper()
	w, err := smtpsim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// simpleWorld serves gmail.com, centrum.sk, yahoo.com with DefaultConfig's
// wordings, no shares (only prefixes decide), no rate limit.
func simpleWorld(t testing.TB, tls bool, mod func(*smtpsim.Config)) *smtpsim.World {
	def := smtpsim.DefaultConfig(1)
	cfg := smtpsim.Config{Seed: 1, TLS: tls, Domains: map[string]smtpsim.Domain{}}
	for _, d := range []string{"gmail.com", "centrum.sk", "yahoo.com", "azet.sk"} {
		b := def.Domains[d]
		b.RatePerSec, b.UnknownShare, b.SpamShare, b.SizeShare, b.TempFailShare = 0, 0, 0, 0, 0
		cfg.Domains[d] = b
	}
	if mod != nil {
		mod(&cfg)
	}
	return world(t, cfg)
}

// pool makes a pool with fast timeouts, closed with the test.
func pool(t testing.TB, cfg Config, r Resolver) *Pool {
	t.Helper()
	if cfg.HeloName == "" {
		cfg.HeloName = "test.example"
	}
	p, err := NewPool(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func msg(id string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: a@example.net\r\nTo: b@example.org\r\nMessage-ID: <%s>\r\nSubject: test\r\n\r\n", id)
	for b.Len() < size {
		b.WriteString("The quick brown fox jumps over the lazy dog.\r\n.leading dot\r\n")
	}
	return b.Bytes()
}

func env(to, id string) Envelope {
	return Envelope{From: "sender@example.net", To: to, Data: msg(id, 300)}
}

func TestSendAnswers(t *testing.T) {
	w := simpleWorld(t, false, nil)
	p := pool(t, Config{Routes: w.Routes()}, nil)
	tests := []struct {
		name, to string
		size     int
		want     bounces.Reply
		stage    string
		sent     bool
	}{
		{"delivered", "ok-1@gmail.com", 300, bounces.Reply{Code: 250, Enhanced: "2.0.0", Text: "250 2.0.0 OK: queued"}, StageData, true},
		{"gmail unknown", "unknown-1@gmail.com", 300, bounces.Reply{Code: 550, Enhanced: "5.1.1", Text: "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.com/mail/?p=NoSuchUser - gsmtp"}, StageRcpt, false},
		{"centrum unknown, no enhanced", "unknown-1@centrum.sk", 300, bounces.Reply{Code: 550, Text: "550 #5.1.0 Address rejected."}, StageRcpt, false},
		{"yahoo 552 1", "unknown-1@yahoo.com", 300, bounces.Reply{Code: 552, Text: "552 1 Requested mail action aborted, mailbox not found"}, StageRcpt, false},
		{"centrum spam", "spam-1@centrum.sk", 300, bounces.Reply{Code: 554, Enhanced: "5.7.1", Text: "554 5.7.1 Message rejected as spam"}, StageData, false},
		{"centrum 421", "tempfail-1@centrum.sk", 300, bounces.Reply{Code: 421, Enhanced: "4.7.0", Text: "421 4.7.0 Try again later, closing connection."}, StageRcpt, false},
		{"gmail size", "big-1@gmail.com", 20000, bounces.Reply{Code: 552, Enhanced: "5.3.4", Text: "552 5.3.4 Your message exceeded Google's message size limits. Please visit https://support.google.com/mail/?p=MaxSizeError to review our size guidelines. - gsmtp"}, StageData, false},
		{"gmail size, small message", "big-2@gmail.com", 3000, bounces.Reply{Code: 250, Enhanced: "2.0.0", Text: "250 2.0.0 OK: queued"}, StageData, true},
		{"after a 421, a new connection", "ok-2@centrum.sk", 300, bounces.Reply{Code: 250, Enhanced: "2.0.0", Text: "250 2.0.0 OK: queued"}, StageData, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			domain := tt.to[strings.IndexByte(tt.to, '@')+1:]
			e := Envelope{From: "s@example.net", To: tt.to, Data: msg(tt.name, tt.size)}
			got := p.Send(context.Background(), "domain:"+domain, domain, Limits{}, e)
			if got.Reply != tt.want || got.Stage != tt.stage || got.Sent != tt.sent {
				t.Errorf("Send(%q) = %+v, want %+v at %s sent=%v", tt.to, got, tt.want, tt.stage, tt.sent)
			}
		})
	}
}

func TestReuseAndMaxMessages(t *testing.T) {
	w := simpleWorld(t, false, nil)
	p := pool(t, Config{Routes: w.Routes()}, nil)
	for i := range 10 {
		r := p.Send(context.Background(), "provider:google", "gmail.com", Limits{MaxConnections: 2, MaxMessagesPerConnection: 4}, env(fmt.Sprintf("ok-%d@gmail.com", i), fmt.Sprintf("id%d", i)))
		if !r.Sent {
			t.Fatalf("Send %d = %+v, want sent", i, r)
		}
	}
	s := w.Stats()
	if got := s.Providers["gmail.com"].Connections; got != 3 {
		t.Errorf("connections = %d, want 3 (10 messages, 4 per connection)", got)
	}
	if got := s.Domains["gmail.com"].Accepted; got != 10 {
		t.Errorf("accepted = %d, want 10", got)
	}
}

func TestMaxConnectionsUnderConcurrency(t *testing.T) {
	w := simpleWorld(t, false, func(c *smtpsim.Config) {
		b := c.Domains["gmail.com"]
		b.Delay = 2 * time.Millisecond
		c.Domains["gmail.com"] = b
	})
	p := pool(t, Config{Routes: w.Routes()}, nil)
	var wg sync.WaitGroup
	const n = 60
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := p.Send(context.Background(), "provider:google", "gmail.com", Limits{MaxConnections: 3, MaxMessagesPerConnection: 100}, env(fmt.Sprintf("ok-%d@gmail.com", i), fmt.Sprintf("c%d", i)))
			if !r.Sent {
				errs <- fmt.Sprintf("%+v", r)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("Send = %s, want sent", e)
	}
	ps := w.Stats().Providers["gmail.com"]
	if ps.MaxConcurrent > 3 || ps.MaxConcurrent < 2 {
		t.Errorf("max concurrent sessions = %d, want 2..3", ps.MaxConcurrent)
	}
	if ps.Connections > 3 {
		t.Errorf("connections = %d, want <= 3 (reused)", ps.Connections)
	}
	if got := w.Stats().Duplicates; got != 0 {
		t.Errorf("duplicates = %d, want 0", got)
	}
}

// transcript is a go-smtp server in the test that records what it reads.
type transcript struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *transcript) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.Write(b)
}

func (t *transcript) count(s string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Count(t.buf.String(), s)
}

type sinkSession struct {
	user, pass string
	authed     bool
}

func (s *sinkSession) Reset()                               {}
func (s *sinkSession) Logout() error                        { return nil }
func (s *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *sinkSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }
func (s *sinkSession) AuthMechanisms() []string             { return []string{sasl.Plain} }
func (s *sinkSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.user || password != s.pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		s.authed = true
		return nil
	}), nil
}

// sink starts a go-smtp server on loopback; user/pass enable AUTH.
func sink(t testing.TB, user, pass string) (string, *transcript) {
	tr := &transcript{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &sinkSession{user: user, pass: pass}, nil
	}))
	srv.Domain = "sink.test"
	srv.AllowInsecureAuth = true
	srv.Debug = tr
	srv.ErrorLog = nopLogger{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String(), tr
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...interface{}) {}
func (nopLogger) Println(...interface{})        {}

func TestRsetBetweenMessages(t *testing.T) {
	addr, tr := sink(t, "", "")
	p := pool(t, Config{Routes: map[string]string{"*": addr}}, nil)
	for i := range 3 {
		if r := p.Send(context.Background(), "k", "example.org", Limits{}, env("x@example.org", fmt.Sprint(i))); !r.Sent {
			t.Fatalf("Send = %+v, want sent", r)
		}
	}
	// Completed transactions need no RSET: MAIL follows the 250 directly.
	if got := tr.count("RSET\r\n"); got != 0 {
		t.Errorf("RSET commands = %d, want 0 after completed transactions", got)
	}
	if got := tr.count("MAIL FROM:"); got != 3 {
		t.Errorf("MAIL commands = %d, want 3", got)
	}
}

// TestRsetAfterRefusal reuses a connection after a refused recipient: the
// next transaction starts with RSET and goes through.
func TestRsetAfterRefusal(t *testing.T) {
	w := simpleWorld(t, false, nil)
	p := pool(t, Config{Routes: w.Routes()}, nil)
	for i, tc := range []struct {
		to   string
		sent bool
	}{{"unknown-1@azet.sk", false}, {"ok-1@azet.sk", true}, {"unknown-2@azet.sk", false}, {"ok-2@azet.sk", true}} {
		r := p.Send(context.Background(), "k", "azet.sk", Limits{MaxConnections: 1}, env(tc.to, fmt.Sprint(i)))
		if r.Sent != tc.sent {
			t.Errorf("Send(%s) = %+v, want sent %v", tc.to, r, tc.sent)
		}
	}
	if c := w.Stats().Providers; len(c) > 0 {
		for name, ps := range c {
			if ps.Connections > 1 {
				t.Errorf("provider %s: %d connections, want the one reused", name, ps.Connections)
			}
		}
	}
}

func TestRelayAuth(t *testing.T) {
	addr, tr := sink(t, "campaigns", "s3cret")
	tests := []struct {
		name, user, pass, env string
		want                  int
		sent                  bool
	}{
		{"good password", "campaigns", "s3cret", "", 250, true},
		{"env overrides", "campaigns", "wrong", "s3cret", 250, true},
		{"bad password", "campaigns", "wrong", "", 535, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(PasswordEnv, tt.env)
			p := pool(t, Config{Mode: ModeRelay, Relay: addr, Username: tt.user, Password: tt.pass}, nil)
			r := p.Send(context.Background(), "relay", "gmail.com", Limits{}, env("x@gmail.com", tt.name))
			if r.Reply.Code != tt.want || r.Sent != tt.sent {
				t.Errorf("Send = %+v, want code %d sent %v", r, tt.want, tt.sent)
			}
			if !tt.sent && r.Stage != StageAuth {
				t.Errorf("Send stage = %q, want auth", r.Stage)
			}
		})
	}
	if tr.count("AUTH PLAIN ") != 3 {
		t.Errorf("AUTH PLAIN commands = %d, want 3", tr.count("AUTH PLAIN "))
	}
}

func TestStartTLS(t *testing.T) {
	tlsWorld := simpleWorld(t, true, nil)
	plainWorld := simpleWorld(t, false, nil)
	tests := []struct {
		name     string
		routes   map[string]string
		mode     string
		insecure bool
		enh      string
		sent     bool
	}{
		{"self-signed accepted for tests", tlsWorld.Routes(), StartTLSRequired, true, "2.0.0", true},
		{"self-signed refused when required", tlsWorld.Routes(), StartTLSRequired, false, EnhancedSecurity, false},
		{"self-signed encrypted when opportunistic", tlsWorld.Routes(), StartTLSOpportunistic, false, "2.0.0", true},
		{"off", tlsWorld.Routes(), StartTLSOff, false, "2.0.0", true},
		{"required, not offered", plainWorld.Routes(), StartTLSRequired, true, EnhancedSecurity, false},
		{"opportunistic, not offered", plainWorld.Routes(), StartTLSOpportunistic, true, "2.0.0", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pool(t, Config{Routes: tt.routes, StartTLS: tt.mode, InsecureSkipVerify: tt.insecure}, nil)
			r := p.Send(context.Background(), "k", "azet.sk", Limits{}, env("ok-1@azet.sk", tt.name))
			if r.Reply.Enhanced != tt.enh || r.Sent != tt.sent {
				t.Errorf("Send = %+v, want enhanced %s sent %v", r, tt.enh, tt.sent)
			}
			if !tt.sent && (r.Stage != StageStartTLS || r.Reply.Code != 0) {
				t.Errorf("Send = %+v, want a starttls failure without code", r)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := closed.Addr().String()
	closed.Close()
	tests := []struct {
		name   string
		fault  smtpsim.Fault
		tls    bool
		enh    string
		stage  string
		text   string
		routes map[string]string
	}{
		{"refused", smtpsim.FaultNone, false, EnhancedNoAnswer, StageConnect, "connect to " + refused + ": connection refused", map[string]string{"*": refused}},
		{"sim refuses", smtpsim.FaultRefuse, false, EnhancedNoAnswer, StageConnect, "connection refused", nil},
		{"stall at end of data", smtpsim.FaultStall, false, EnhancedNoAnswer, StageData, "after the end of data", nil},
		{"dropped mid-data", smtpsim.FaultDrop, false, EnhancedDropped, StageData, "dropped at data", nil},
		{"garbage", smtpsim.FaultGarbage, false, EnhancedProtocol, StageRcpt, "bad answer", nil},
		{"tls handshake", smtpsim.FaultTLS, true, EnhancedDropped, StageStartTLS, "TLS handshake with", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := simpleWorld(t, tt.tls, nil)
			if err := w.SetFault("gmail.com", tt.fault); err != nil {
				t.Fatal(err)
			}
			routes := tt.routes
			if routes == nil {
				routes = w.Routes()
			}
			p := pool(t, Config{Routes: routes, InsecureSkipVerify: true, Timeouts: Timeouts{DataEnd: 300 * time.Millisecond}}, nil)
			start := time.Now()
			r := p.Send(context.Background(), "k", "gmail.com", Limits{}, env("ok-1@gmail.com", tt.name))
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("Send took %v", el)
			}
			if r.Reply.Code != 0 || r.Reply.Enhanced != tt.enh || r.Stage != tt.stage || !strings.Contains(r.Reply.Text, tt.text) || r.Sent {
				t.Errorf("Send = %+v, want code 0, %s at %s with %q", r, tt.enh, tt.stage, tt.text)
			}
			if strings.Contains(r.Reply.Text, "ok-1") {
				t.Errorf("Send text %q holds the recipient", r.Reply.Text)
			}
			c, _ := bounces.NewClassifier()
			if d := c.Classify(r.Reply, "gmail.com"); d.Hard || (d.Class != bounces.ClassTransient && d.Class != bounces.ClassPolicyBlocked) {
				t.Errorf("Classify(%+v) = %v hard=%v, want transient", r.Reply, d.Class, d.Hard)
			}
			if err := w.SetFault("gmail.com", smtpsim.FaultNone); err != nil {
				t.Fatal(err)
			}
			if tt.routes == nil {
				if r := p.Send(context.Background(), "k", "gmail.com", Limits{}, env("ok-2@gmail.com", tt.name+"2")); !r.Sent {
					t.Errorf("Send after the fault = %+v, want sent", r)
				}
			}
		})
	}
}

func TestContextCancelWhileWaiting(t *testing.T) {
	w := simpleWorld(t, false, nil)
	_ = w.SetFault("gmail.com", smtpsim.FaultStall)
	p := pool(t, Config{Routes: w.Routes(), Timeouts: Timeouts{DataEnd: 500 * time.Millisecond}}, nil)
	lim := Limits{MaxConnections: 1}
	done := make(chan struct{})
	defer func() { <-done }()
	go func() {
		defer close(done)
		p.Send(context.Background(), "k", "gmail.com", lim, env("ok-1@gmail.com", "a"))
	}()
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := p.Send(ctx, "k", "gmail.com", lim, env("ok-2@gmail.com", "b"))
	if r.Reply.Enhanced != EnhancedExpired || r.Stage != StageConnect || time.Since(start) > time.Second {
		t.Errorf("Send = %+v after %v, want %s at connect", r, time.Since(start), EnhancedExpired)
	}
	w.SetFault("gmail.com", smtpsim.FaultNone)
}

func TestIdleConnectionsClosed(t *testing.T) {
	w := simpleWorld(t, false, nil)
	p := pool(t, Config{Routes: w.Routes()}, nil)
	p.Close() // restart with a short idle time
	p = &Pool{cfg: p.cfg, resolver: p.resolver, mxPort: "25", idle: 50 * time.Millisecond, stop: make(chan struct{}), keys: map[string]*keyState{}, mx: map[string]mxEntry{}}
	p.wg.Add(1)
	go p.janitor()
	defer p.Close()
	if r := p.Send(context.Background(), "k", "gmail.com", Limits{}, env("ok-1@gmail.com", "a")); !r.Sent {
		t.Fatalf("Send = %+v", r)
	}
	deadline := time.Now().Add(2 * time.Second)
	for w.Stats().Providers["gmail.com"].Active != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle connection still open: %+v", p.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := p.Stats(); s.Open["k"] != 0 {
		t.Errorf("Stats = %+v, want none open", s)
	}
}

// fakeResolver answers LookupMX from a table; missing names are not found.
type fakeResolver map[string][]*net.MX

func (f fakeResolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	if mx, ok := f[name]; ok {
		return mx, nil
	}
	if name == "dnsfail.test" {
		return nil, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

var _ Resolver = fakeResolver(nil)

func TestMXMode(t *testing.T) {
	w := simpleWorld(t, false, func(c *smtpsim.Config) {
		c.Providers = []smtpsim.Provider{{Name: "all", Domains: []string{"gmail.com", "localhost"}}}
	})
	_, port, _ := net.SplitHostPort(w.Addr("all"))
	res := fakeResolver{
		"gmail.com":   {{Host: "127.0.0.1.", Pref: 20}, {Host: "127.0.0.2.", Pref: 10}}, // 127.0.0.2 first: refused
		"nullmx.test": {{Host: ".", Pref: 0}},
	}
	p := pool(t, Config{}, res)
	p.mxPort = port
	tests := []struct {
		name, domain, enh string
		sent              bool
	}{
		{"next MX after a refusal", "gmail.com", "2.0.0", true},
		{"implicit MX", "localhost", "2.0.0", true},
		{"null MX", "nullmx.test", EnhancedNullMX, false},
		{"dns failure", "dnsfail.test", EnhancedDNS, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := p.Send(context.Background(), tt.domain, tt.domain, Limits{}, env("ok-1@"+tt.domain, tt.name))
			if r.Reply.Enhanced != tt.enh || r.Sent != tt.sent {
				t.Errorf("Send(%q) = %+v, want %s sent %v", tt.domain, r, tt.enh, tt.sent)
			}
		})
	}
}

func TestBadEnvelope(t *testing.T) {
	p := pool(t, Config{Routes: map[string]string{"*": "127.0.0.1:1"}}, nil)
	r := p.Send(context.Background(), "k", "example.org", Limits{}, Envelope{From: "a@b", To: "x@example.org\r\nRCPT TO:<y@z>"})
	if r.Reply.Enhanced != EnhancedBadAddress || strings.Contains(r.Reply.Text, "x@") {
		t.Errorf("Send = %+v, want %s without the address", r, EnhancedBadAddress)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zero", Config{}, ""},
		{"relay", Config{Mode: "relay", Relay: "smtp.example.net:587", Username: "u"}, ""},
		{"bad mode", Config{Mode: "direct"}, "smtp.mode: "},
		{"relay without host", Config{Mode: "relay"}, "smtp.relay: "},
		{"relay bad port", Config{Mode: "relay", Relay: "smtp.example.net:0"}, "smtp.relay: "},
		{"relay in mx mode", Config{Relay: "a:25"}, "smtp.relay: "},
		{"username in mx mode", Config{Username: "u"}, "smtp.username: "},
		{"bad starttls", Config{StartTLS: "always"}, "smtp.starttls: "},
		{"bad route", Config{Routes: map[string]string{"gmail.com": "127.0.0.1"}}, `smtp.routes."gmail.com": `},
		{"upper-case route key", Config{Routes: map[string]string{"Gmail.com": "127.0.0.1:25"}}, `smtp.routes."Gmail.com": `},
		{"negative timeout", Config{Timeouts: Timeouts{Rcpt: -1}}, "smtp.timeouts.rcpt: "},
		{"helo with space", Config{HeloName: "a b"}, "smtp.helo: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("Validate(%+v) = %v, want %q", tt.cfg, err, tt.wantErr)
			}
		})
	}
	if _, err := NewPool(Config{Mode: "x"}, nil); err == nil || !strings.HasPrefix(err.Error(), "sender: smtp.mode") {
		t.Errorf("NewPool(bad) = %v, want a sender: smtp.mode error", err)
	}
}

func TestPoolClose(t *testing.T) {
	w := simpleWorld(t, false, nil)
	p := pool(t, Config{Routes: w.Routes()}, nil)
	if r := p.Send(context.Background(), "k", "gmail.com", Limits{}, env("ok-1@gmail.com", "a")); !r.Sent {
		t.Fatal(r)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	r := p.Send(context.Background(), "k", "gmail.com", Limits{}, env("ok-2@gmail.com", "b"))
	if r.Reply.Enhanced != EnhancedShutdown {
		t.Errorf("Send after Close = %+v, want %s", r, EnhancedShutdown)
	}
	if errors.Is(nil, errPoolClosed) {
		t.Fatal("unreachable")
	}
}

func BenchmarkPoolSend(b *testing.B) {
	w := world(b, smtpsim.Config{Seed: 1, Providers: []smtpsim.Provider{{Name: "sink", Domains: []string{"example.org"}}}})
	p := pool(b, Config{Routes: w.Routes()}, nil)
	data := msg("bench", 4000)
	lim := Limits{MaxConnections: 4, MaxMessagesPerConnection: 1000}
	b.ReportAllocs()
	b.SetParallelism(2) // 2 x GOMAXPROCS senders over 4 connections
	b.ResetTimer()
	start := time.Now()
	var mu sync.Mutex
	failed := 0
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := p.Send(context.Background(), "k", "example.org", lim, Envelope{From: "s@example.net", To: "ok@example.org", Data: data})
			if !r.Sent {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}
	})
	b.StopTimer()
	if failed > 0 {
		b.Fatalf("%d sends failed", failed)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
