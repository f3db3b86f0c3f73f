package smtpsim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/big"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"golang.org/x/time/rate"

	"github.com/bounceloop/bounceloop/bounces"
)

// World is a running simulated world: one SMTP server per provider on
// 127.0.0.1. Start makes one; Close stops it. Safe for concurrent use.
type World struct {
	cfg     Config
	tlsConf *tls.Config // nil when STARTTLS is not offered
	done    chan struct{}

	provs   []*provider
	byName  map[string]*provider
	byDom   map[string]*provider
	domains map[string]*domainState // every configured domain; others are created on demand

	mu       sync.Mutex
	attempts map[string]int // recipient -> attempts seen (for TempFailShare)
	ids      map[string]int // Message-ID -> times accepted
	stats    map[string]*DomainStats
	closed   bool
}

// domainState is a domain's resolved behaviour and its run-time state.
type domainState struct {
	name    string
	beh     Domain
	replies map[string]*smtp.SMTPError // by kind
	limiter *rate.Limiter              // nil = unlimited
	fault   atomic.Int32
}

// provider is one server.
type provider struct {
	w       *World
	name    string
	domains []string
	delay   time.Duration // the largest Delay of its domains (before RCPT)
	addr    string
	srv     *smtp.Server

	mu        sync.Mutex
	ln        net.Listener
	serving   sync.WaitGroup
	refusing  bool
	active    int
	maxActive int
	conns     int
	tlsFail   atomic.Bool
	tarpit    atomic.Bool // new connections are never greeted
}

// DomainStats counts what a domain's server saw. Answers maps the basic
// code of each answer given to a recipient (RCPT refusals and end of DATA)
// to its count; 250 counts accepted messages.
type DomainStats struct {
	Attempts   int         // RCPT commands for the domain
	Accepted   int         // messages accepted (250 at end of DATA)
	Duplicates int         // accepted messages whose Message-ID was already accepted
	Bytes      int64       // bytes of the accepted messages
	Answers    map[int]int // basic reply code -> count
}

// ProviderStats counts a provider's connections.
type ProviderStats struct {
	Addr          string
	Connections   int // connections accepted so far
	Active        int // connections open now
	MaxConcurrent int // most connections open at once
}

// Stats is a snapshot of the world's records.
type Stats struct {
	Accepted   int // messages accepted, all domains
	Duplicates int // accepted messages whose Message-ID was already accepted
	Domains    map[string]DomainStats
	Providers  map[string]ProviderStats
}

// Start validates cfg, then starts one server per provider on
// 127.0.0.1:0. Close the world when done.
func Start(cfg Config) (*World, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Scale == 0 {
		cfg.Scale = 1
	}
	w := &World{
		cfg:      cfg,
		done:     make(chan struct{}),
		byName:   map[string]*provider{},
		byDom:    map[string]*provider{},
		domains:  map[string]*domainState{},
		attempts: map[string]int{},
		ids:      map[string]int{},
		stats:    map[string]*DomainStats{},
	}
	if cfg.TLS {
		tc, err := selfSigned()
		if err != nil {
			return nil, err
		}
		w.tlsConf = tc
	}
	provs := append([]Provider(nil), cfg.Providers...)
	listed := map[string]bool{}
	for _, p := range provs {
		for _, d := range p.Domains {
			listed[strings.ToLower(d)] = true
		}
	}
	extra := []string{}
	for d := range cfg.Domains {
		if !listed[strings.ToLower(d)] {
			extra = append(extra, strings.ToLower(d))
		}
	}
	sort.Strings(extra)
	for _, d := range extra {
		provs = append(provs, Provider{Name: d, Domains: []string{d}})
	}
	for _, p := range provs {
		pr := &provider{w: w, name: p.Name}
		for _, d := range p.Domains {
			d = strings.ToLower(d)
			pr.domains = append(pr.domains, d)
			ds := w.domain(d)
			w.byDom[d] = pr
			if ds.beh.Delay > pr.delay {
				pr.delay = ds.beh.Delay
			}
			if ds.beh.Fault == FaultTLS {
				pr.tlsFail.Store(true)
			}
			if ds.beh.Fault == FaultTarpit {
				pr.tarpit.Store(true)
			}
		}
		w.provs = append(w.provs, pr)
		w.byName[p.Name] = pr
	}
	for _, pr := range w.provs {
		if err := pr.start(); err != nil {
			w.Close()
			return nil, err
		}
	}
	for _, pr := range w.provs {
		for _, d := range pr.domains {
			if w.domains[d].beh.Fault == FaultRefuse {
				pr.setRefusing(true)
			}
		}
	}
	return w, nil
}

// domain returns d's state, creating it (from Domains or Default) on first use.
// Call it with w.mu held, or before the servers start.
func (w *World) domain(d string) *domainState {
	if ds, ok := w.domains[d]; ok {
		return ds
	}
	beh, ok := w.cfg.Domains[d]
	if !ok {
		for k, v := range w.cfg.Domains {
			if strings.EqualFold(k, d) {
				beh, ok = v, true
				break
			}
		}
	}
	if !ok {
		beh = w.cfg.Default
	}
	beh = beh.withDefaults()
	ds := &domainState{name: d, beh: beh, replies: map[string]*smtp.SMTPError{
		"rate": toSMTPError(beh.RateReply), "unknown": toSMTPError(beh.UnknownReply), "spam": toSMTPError(beh.SpamReply),
		"full": toSMTPError(beh.FullReply), "size": toSMTPError(beh.SizeReply), "tempfail": toSMTPError(beh.TempFailReply),
	}}
	if beh.RatePerSec > 0 {
		r := beh.RatePerSec * w.cfg.Scale
		burst := beh.Burst
		if burst == 0 {
			burst = max(1, int(math.Ceil(r)))
		}
		ds.limiter = rate.NewLimiter(rate.Limit(r), burst)
	}
	ds.fault.Store(int32(beh.Fault))
	w.domains[d] = ds
	return ds
}

// toSMTPError turns a one-line answer ("550 5.1.1 text", "552 1 text",
// "550 #5.1.0 text") into the error go-smtp writes back verbatim.
func toSMTPError(s string) *smtp.SMTPError {
	r := bounces.ParseReply(s)
	rest := strings.TrimSpace(s)
	if len(rest) >= 3 {
		rest = strings.TrimSpace(rest[3:])
	}
	e := &smtp.SMTPError{Code: r.Code, EnhancedCode: smtp.NoEnhancedCode, Message: rest}
	if f := strings.Fields(rest); len(f) > 0 && r.Enhanced != "" && f[0] == r.Enhanced {
		var a, b, c int
		if _, err := fmt.Sscanf(r.Enhanced, "%d.%d.%d", &a, &b, &c); err == nil {
			e.EnhancedCode = smtp.EnhancedCode{a, b, c}
			e.Message = strings.TrimSpace(strings.TrimPrefix(rest, f[0]))
		}
	}
	return e
}

// Routes returns domain -> "127.0.0.1:port" for every provider's domains,
// and "*" -> the catch-all provider's address when Config.CatchAll is set:
// ready for sender.Config.Routes. The map is a copy.
func (w *World) Routes() map[string]string {
	m := map[string]string{}
	for _, pr := range w.provs {
		for _, d := range pr.domains {
			m[d] = pr.addr
		}
	}
	if pr, ok := w.byName[w.cfg.CatchAll]; ok {
		m["*"] = pr.addr
	}
	return m
}

// Addr returns the address of the provider named name, or "".
func (w *World) Addr(name string) string {
	if pr, ok := w.byName[name]; ok {
		return pr.addr
	}
	return ""
}

// SetFault switches domain's fault at run time (FaultNone clears it).
// FaultRefuse and FaultTLS act on the domain's whole provider; clearing
// them on any of its domains clears them for the provider. Unknown domains
// are an error.
func (w *World) SetFault(domain string, f Fault) error {
	domain = strings.ToLower(domain)
	pr, ok := w.byDom[domain]
	if !ok {
		return fmt.Errorf("smtpsim: SetFault: no provider serves %q", domain)
	}
	if f < FaultNone || f > FaultTarpit {
		return fmt.Errorf("smtpsim: SetFault: unknown fault %d", int(f))
	}
	w.mu.Lock()
	ds := w.domain(domain)
	w.mu.Unlock()
	ds.fault.Store(int32(f))
	pr.tlsFail.Store(f == FaultTLS)
	pr.tarpit.Store(f == FaultTarpit)
	return pr.setRefusing(f == FaultRefuse)
}

// Accepted returns how many times a message with this Message-ID (without
// angle brackets) was accepted.
func (w *World) Accepted(messageID string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ids[strings.Trim(messageID, "<> ")]
}

// Duplicated returns the Message-IDs (without angle brackets) accepted
// more than once, with the times each was accepted.
func (w *World) Duplicated() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for id, n := range w.ids {
		if n > 1 {
			out[id] = n
		}
	}
	return out
}

// Stats returns a snapshot of the records.
func (w *World) Stats() Stats {
	w.mu.Lock()
	s := Stats{Domains: map[string]DomainStats{}, Providers: map[string]ProviderStats{}}
	for d, ds := range w.stats {
		c := *ds
		c.Answers = make(map[int]int, len(ds.Answers))
		for k, v := range ds.Answers {
			c.Answers[k] = v
		}
		s.Domains[d] = c
		s.Accepted += ds.Accepted
		s.Duplicates += ds.Duplicates
	}
	w.mu.Unlock()
	for _, pr := range w.provs {
		pr.mu.Lock()
		s.Providers[pr.name] = ProviderStats{Addr: pr.addr, Connections: pr.conns, Active: pr.active, MaxConcurrent: pr.maxActive}
		pr.mu.Unlock()
	}
	return s
}

// Close stops every server and releases stalled sessions. It is safe to
// call more than once.
func (w *World) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	close(w.done)
	w.mu.Unlock()
	for _, pr := range w.provs {
		pr.stop()
	}
	return nil
}

// record counts an answer to a recipient of domain; id and size are for
// accepted messages.
func (w *World) record(domain string, code int, rcptAttempt bool, id string, size int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ds := w.stats[domain]
	if ds == nil {
		ds = &DomainStats{Answers: map[int]int{}}
		w.stats[domain] = ds
	}
	if rcptAttempt {
		ds.Attempts++
	}
	if code != 0 {
		ds.Answers[code]++
	}
	if code == 250 {
		ds.Accepted++
		ds.Bytes += int64(size)
		if id != "" {
			w.ids[id]++
			if w.ids[id] > 1 {
				ds.Duplicates++
			}
		}
	}
}

// attempt counts an attempt for rcpt and returns its number (1 for the first).
func (w *World) attempt(rcpt string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.attempts[rcpt]++
	return w.attempts[rcpt]
}

// state returns the state of domain d.
func (w *World) state(d string) *domainState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.domain(d)
}

// unit returns a number in [0,1) from the seed and the parts.
func (w *World) unit(parts ...string) float64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(uint64(w.cfg.Seed) >> (8 * i))
	}
	h.Write(b[:])
	for _, p := range parts {
		h.Write([]byte{0})
		io.WriteString(h, p)
	}
	return float64(h.Sum64()>>11) / (1 << 53)
}

// sleep waits d or until the world closes.
func (w *World) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.done:
	}
}

// start listens on 127.0.0.1:0 and serves.
func (pr *provider) start() error {
	srv := smtp.NewServer(&backend{pr: pr})
	srv.Domain = "mx." + pr.name + ".sim"
	srv.ReadTimeout = 2 * time.Minute
	srv.WriteTimeout = 2 * time.Minute
	srv.ErrorLog = discardLogger{}
	if pr.w.tlsConf != nil {
		tc := pr.w.tlsConf.Clone()
		tc.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			if pr.tlsFail.Load() {
				return nil, errors.New("smtpsim: simulated TLS failure")
			}
			return nil, nil
		}
		srv.TLSConfig = tc
	}
	pr.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("smtpsim: provider %s: %w", pr.name, err)
	}
	pr.addr = ln.Addr().String()
	pr.serve(ln)
	return nil
}

// serve runs the server on ln.
func (pr *provider) serve(ln net.Listener) {
	pr.mu.Lock()
	pr.ln = &listener{Listener: ln, pr: pr}
	l := pr.ln
	pr.serving.Add(1)
	pr.mu.Unlock()
	go func() {
		defer pr.serving.Done()
		_ = pr.srv.Serve(l)
	}()
}

// setRefusing closes or reopens the listener (same port).
func (pr *provider) setRefusing(on bool) error {
	pr.mu.Lock()
	if pr.refusing == on {
		pr.mu.Unlock()
		return nil
	}
	pr.refusing = on
	ln := pr.ln
	pr.mu.Unlock()
	if on {
		ln.Close()
		pr.serving.Wait()
		return nil
	}
	select {
	case <-pr.w.done:
		return nil
	default:
	}
	nl, err := net.Listen("tcp", pr.addr)
	if err != nil {
		return fmt.Errorf("smtpsim: provider %s: reopen %s: %w", pr.name, pr.addr, err)
	}
	pr.serve(nl)
	return nil
}

// stop closes the server and waits for Serve to return.
func (pr *provider) stop() {
	pr.srv.Close()
	pr.mu.Lock()
	if pr.ln != nil {
		pr.ln.Close()
	}
	pr.mu.Unlock()
	pr.serving.Wait()
}

// listener counts connections and wraps them.
type listener struct {
	net.Listener
	pr *provider
}

// Accept implements net.Listener.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	pr := l.pr
	pr.mu.Lock()
	pr.conns++
	pr.active++
	pr.maxActive = max(pr.maxActive, pr.active)
	pr.mu.Unlock()
	return &conn{Conn: c, pr: pr, greetDelay: pr.delay, tarpit: pr.tarpit.Load()}, nil
}

// conn delays the greeting, can close after an answer,
// and counts itself out when closed.
type conn struct {
	net.Conn
	pr         *provider
	greetDelay time.Duration
	tarpit     bool // never greet: the first write waits for the world to close
	wrote      atomic.Bool
	closeAfter atomic.Bool // close after the next answer
	closeOnce  sync.Once
}

// Write implements net.Conn.
func (c *conn) Write(b []byte) (int, error) {
	if !c.wrote.Swap(true) {
		if c.tarpit {
			<-c.pr.w.done
			return 0, net.ErrClosed
		}
		c.pr.w.sleep(c.greetDelay)
	}
	n, err := c.Conn.Write(b)
	if c.closeAfter.Swap(false) {
		c.Close()
	}
	return n, err
}

// Close implements net.Conn.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.pr.mu.Lock()
		c.pr.active--
		c.pr.mu.Unlock()
	})
	return err
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...interface{}) {}
func (discardLogger) Println(...interface{})        {}

// selfSigned makes an in-memory certificate for localhost and 127.0.0.1.
func selfSigned() (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("smtpsim: key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "smtpsim"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("smtpsim: certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, nil
}
