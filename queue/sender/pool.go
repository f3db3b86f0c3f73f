package sender

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// Resolver looks up MX records; *net.Resolver implements it.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
}

var _ Resolver = (*net.Resolver)(nil)

// Envelope is one message to one recipient. Data is the whole RFC 5322
// message with CRLF line ends.
type Envelope struct {
	From, To string
	Data     []byte
}

// Limits bound a key's connections. Zero fields take the policy defaults:
// MaxConnections 4, MaxMessagesPerConnection 100.
type Limits struct {
	MaxConnections           int
	MaxMessagesPerConnection int
}

// Defaults of Limits' zero fields, and pool timings.
const (
	DefaultMaxConnections           = 4
	DefaultMaxMessagesPerConnection = 100
	// IdleTimeout is how long a pooled connection may stay unused.
	IdleTimeout = 30 * time.Second
	// mxCacheTTL is how long an MX answer is reused.
	mxCacheTTL = 5 * time.Minute
	// maxHosts bounds the MX hosts tried for one message.
	maxHosts = 5
)

// Pool keeps SMTP connections per destination key (the policy Route.Key,
// so that gmail.com and googlemail.com share theirs): at most
// MaxConnections open per key at once (Send waits for a free one, honouring
// ctx), each reused for up to MaxMessagesPerConnection messages (RSET
// before the next after one that did not complete), dropped after a
// failure without an answer (or a 421), and
// closed after IdleTimeout unused (by a janitor goroutine that Close
// stops). A connection is reused only for a domain whose route includes the
// host it is connected to.
//
// In mx mode the destination is Config.Routes[domain], else Routes["*"], else
// the domain's MX hosts in preference order (cached for 5 minutes), else the
// domain itself (the implicit MX of RFC 5321 section 5.1), port 25; the next
// host is tried when one fails before the MAIL stage. In relay mode it is
// Config.Relay.
//
// A server that offers PIPELINING gets each transaction in two round
// trips: MAIL, RCPT and DATA in one write, the message in another
// (pipeline.go); others get go-smtp's one command at a time.
//
// Per-message failures are Results, never Go errors. Safe for concurrent use.
type Pool struct {
	cfg      Config
	resolver Resolver
	mxPort   string        // "25"; tests change it
	idle     time.Duration // IdleTimeout; tests change it
	stop     chan struct{}
	wg       sync.WaitGroup

	mu     sync.Mutex
	keys   map[string]*keyState
	mx     map[string]mxEntry
	closed bool
}

// keyState is a key's connections: open counts the idle ones and those in use.
type keyState struct {
	open    int
	idle    []*smtpConn
	waiters []chan struct{}
}

type mxEntry struct {
	hosts   []string
	expires time.Time
}

// NewPool validates cfg and returns a pool; resolver nil means
// net.DefaultResolver. Close it when done.
func NewPool(cfg Config, resolver Resolver) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	p := &Pool{
		cfg:      cfg.withDefaults(),
		resolver: resolver,
		mxPort:   "25",
		idle:     IdleTimeout,
		stop:     make(chan struct{}),
		keys:     map[string]*keyState{},
		mx:       map[string]mxEntry{},
	}
	p.wg.Add(1)
	go p.janitor()
	return p, nil
}

// Send delivers env to the destination of domain over a connection of key,
// within the limits lim, and returns the answer. It blocks while key has
// MaxConnections busy connections, until one is free or ctx ends; every
// SMTP stage is bounded by its timeout and by ctx.
func (p *Pool) Send(ctx context.Context, key, domain string, lim Limits, env Envelope) Result {
	if lim.MaxConnections <= 0 {
		lim.MaxConnections = DefaultMaxConnections
	}
	if lim.MaxMessagesPerConnection <= 0 {
		lim.MaxMessagesPerConnection = DefaultMaxMessagesPerConnection
	}
	if strings.ContainsAny(env.From, "\r\n\x00") || strings.ContainsAny(env.To, "\r\n\x00") {
		return fail(StageMail, EnhancedBadAddress, "envelope address contains CR, LF or NUL")
	}
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	addrs, res, ok := p.destinations(ctx, domain)
	if !ok {
		return res
	}
	for attempt := 0; ; attempt++ {
		c, err := p.acquire(ctx, key, lim.MaxConnections, addrs)
		if err != nil {
			if errors.Is(err, errPoolClosed) {
				return fail(StageConnect, EnhancedShutdown, "sender pool closed")
			}
			return fail(StageConnect, EnhancedExpired, "no free connection for %s: %v", key, context.Cause(ctx))
		}
		reused := c != nil
		var unbind func()
		if reused {
			unbind = c.dc.bind(ctx)
		} else {
			c, unbind, res = p.connect(ctx, addrs)
			if c == nil {
				p.release(key, nil, false)
				return res
			}
		}
		res, keep, stale := p.transact(ctx, c, env, reused)
		unbind()
		keep = keep && c.sent < lim.MaxMessagesPerConnection && ctx.Err() == nil
		if !keep {
			if res.Sent || res.Reply.Code != 0 {
				c.close(p.cfg.Timeouts.Quit)
			} else {
				_ = c.client.Close()
			}
		}
		p.release(key, c, keep)
		if stale && attempt == 0 {
			continue // a pooled connection the server had closed: once more on a new one
		}
		return res
	}
}

// connect dials the hosts in order until one gives a session.
func (p *Pool) connect(ctx context.Context, addrs []string) (*smtpConn, func(), Result) {
	var res Result
	for _, a := range addrs {
		c, unbind, r, ok := p.dialOne(ctx, a)
		if ok {
			return c, unbind, Result{}
		}
		res = r
		if ctx.Err() != nil || r.Stage == StageAuth {
			break
		}
	}
	return nil, nil, res
}

// destinations returns the host:port list for domain.
func (p *Pool) destinations(ctx context.Context, domain string) ([]string, Result, bool) {
	if p.cfg.Mode == ModeRelay {
		return []string{p.cfg.Relay}, Result{}, true
	}
	if a, ok := p.cfg.Routes[domain]; ok {
		return []string{a}, Result{}, true
	}
	if a, ok := p.cfg.Routes["*"]; ok {
		return []string{a}, Result{}, true
	}
	if domain == "" {
		return nil, fail(StageConnect, EnhancedNoDomain, "empty recipient domain"), false
	}
	now := time.Now()
	p.mu.Lock()
	e, ok := p.mx[domain]
	p.mu.Unlock()
	if ok && now.Before(e.expires) {
		return p.hostAddrs(e.hosts), Result{}, true
	}
	mxs, err := p.resolver.LookupMX(ctx, domain)
	var hosts []string
	if err != nil {
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound {
			if ctx.Err() != nil {
				return nil, fail(StageConnect, EnhancedExpired, "MX lookup for %s interrupted: %v", domain, context.Cause(ctx)), false
			}
			return nil, fail(StageConnect, EnhancedDNS, "MX lookup for %s: %v", domain, err), false
		}
	}
	// net.Resolver sorts by preference; a Resolver for tests may not.
	mxs = slices.Clone(mxs)
	slices.SortStableFunc(mxs, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	for _, mx := range mxs {
		h := strings.TrimSuffix(mx.Host, ".")
		if h == "" {
			if len(mxs) == 1 {
				return nil, fail(StageConnect, EnhancedNullMX, "%s does not accept mail (null MX)", domain), false
			}
			continue
		}
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 {
		hosts = []string{domain} // implicit MX (RFC 5321 section 5.1)
	}
	if len(hosts) > maxHosts {
		hosts = hosts[:maxHosts]
	}
	p.mu.Lock()
	p.mx[domain] = mxEntry{hosts: hosts, expires: now.Add(mxCacheTTL)}
	p.mu.Unlock()
	return p.hostAddrs(hosts), Result{}, true
}

func (p *Pool) hostAddrs(hosts []string) []string {
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = net.JoinHostPort(h, p.mxPort)
	}
	return out
}

// acquire returns an idle connection of key to one of addrs, or nil with a
// slot reserved for a new connection, or an error when ctx ends or the pool
// closes.
func (p *Pool) acquire(ctx context.Context, key string, max int, addrs []string) (*smtpConn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, errPoolClosed
		}
		ks := p.keys[key]
		if ks == nil {
			ks = &keyState{}
			p.keys[key] = ks
		}
		for i := len(ks.idle) - 1; i >= 0; i-- {
			if c := ks.idle[i]; slices.Contains(addrs, c.addr) {
				ks.idle = slices.Delete(ks.idle, i, i+1)
				p.mu.Unlock()
				return c, nil
			}
		}
		if ks.open < max {
			ks.open++
			p.mu.Unlock()
			return nil, nil
		}
		if len(ks.idle) > 0 && ks.open <= max {
			// An idle connection elsewhere: close it and take its slot.
			c := ks.idle[0]
			ks.idle = ks.idle[1:]
			p.mu.Unlock()
			c.close(p.cfg.Timeouts.Quit)
			return nil, nil
		}
		ch := make(chan struct{})
		ks.waiters = append(ks.waiters, ch)
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			if i := slices.Index(ks.waiters, ch); i >= 0 {
				ks.waiters = slices.Delete(ks.waiters, i, i+1)
			} else {
				ks.wakeOne() // the wake-up was ours: pass it on
			}
			p.mu.Unlock()
			return nil, ctx.Err()
		}
	}
}

// wakeOne wakes the first waiter; call with p.mu held.
func (ks *keyState) wakeOne() {
	if len(ks.waiters) > 0 {
		close(ks.waiters[0])
		ks.waiters = ks.waiters[1:]
	}
}

// release returns c (nil: a reserved slot that got no connection) to key;
// keep pools it, otherwise its slot is freed (the caller closed it).
func (p *Pool) release(key string, c *smtpConn, keep bool) {
	p.mu.Lock()
	ks := p.keys[key]
	if keep && !p.closed {
		c.lastUsed = time.Now()
		ks.idle = append(ks.idle, c)
	} else {
		ks.open--
		if keep {
			defer c.close(p.cfg.Timeouts.Quit)
		}
	}
	ks.wakeOne()
	p.mu.Unlock()
}

// janitor closes idle connections older than p.idle.
func (p *Pool) janitor() {
	defer p.wg.Done()
	t := time.NewTicker(max(p.idle/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.closeIdle(now.Add(-p.idle))
		}
	}
}

// closeIdle closes the idle connections last used before cutoff.
func (p *Pool) closeIdle(cutoff time.Time) {
	var old []*smtpConn
	p.mu.Lock()
	for k, ks := range p.keys {
		keep := ks.idle[:0]
		for _, c := range ks.idle {
			if c.lastUsed.Before(cutoff) {
				old = append(old, c)
				ks.open--
				ks.wakeOne()
			} else {
				keep = append(keep, c)
			}
		}
		clear(ks.idle[len(keep):])
		ks.idle = keep
		if ks.open == 0 && len(ks.waiters) == 0 {
			delete(p.keys, k)
		}
	}
	p.mu.Unlock()
	for _, c := range old {
		c.close(p.cfg.Timeouts.Quit)
	}
}

// Close stops the janitor and closes the idle connections (QUIT); Sends
// in flight finish and close theirs, waiting Sends return a Result with
// EnhancedShutdown. It is safe to call more than once.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	var idle []*smtpConn
	for _, ks := range p.keys {
		idle = append(idle, ks.idle...)
		ks.open -= len(ks.idle)
		ks.idle = nil
		for len(ks.waiters) > 0 {
			ks.wakeOne()
		}
	}
	p.mu.Unlock()
	close(p.stop)
	p.wg.Wait()
	for _, c := range idle {
		c.close(p.cfg.Timeouts.Quit)
	}
	return nil
}

// Stats is a snapshot of a pool's connections per key.
type Stats struct {
	Open map[string]int // connections open (idle and in use) per key
	Idle map[string]int // idle connections per key
}

// Stats returns the pool's connection counts.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Stats{Open: map[string]int{}, Idle: map[string]int{}}
	for k, ks := range p.keys {
		s.Open[k] = ks.open
		s.Idle[k] = len(ks.idle)
	}
	return s
}
