package sender

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Modes and STARTTLS policies of Config.
const (
	ModeRelay = "relay"
	ModeMX    = "mx"

	StartTLSOpportunistic = "opportunistic"
	StartTLSRequired      = "required"
	StartTLSOff           = "off"
)

// PasswordEnv is the environment variable whose value, when set, replaces
// Config.Password.
const PasswordEnv = "BOUNCELOOP_SMTP_PASSWORD"

// Config is the [smtp] section. The zero value sends in mx mode with
// opportunistic STARTTLS and the default timeouts.
type Config struct {
	// Mode is "relay" (every message to Relay) or "mx" (to the recipient
	// domain's route or MX hosts); default "mx".
	Mode string `toml:"mode"`
	// Relay is the smarthost's host:port (relay mode only; required there).
	Relay string `toml:"relay"`
	// Username enables AUTH PLAIN in relay mode. AUTH is only sent over TLS,
	// unless the relay is a loopback address.
	Username string `toml:"username"`
	// Password for AUTH; the environment variable BOUNCELOOP_SMTP_PASSWORD
	// overrides it. Never logged.
	Password string `toml:"password"`
	// StartTLS is "opportunistic" (default: upgrade when offered), "required"
	// (a server that does not offer it gets a transient failure) or "off".
	StartTLS string `toml:"starttls"`
	// InsecureSkipVerify accepts any server certificate (tests and the demo only).
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
	// HeloName is the EHLO name; default os.Hostname(), else "localhost".
	HeloName string `toml:"helo"`
	// Routes is the static route table of mx mode, consulted before DNS:
	// recipient domain -> host:port; "*" catches every other domain.
	Routes map[string]string `toml:"routes"`
	// Timeouts bound every stage of the SMTP conversation.
	Timeouts Timeouts `toml:"timeouts"`
}

// Timeouts bound each stage; a zero field takes its default. The defaults
// follow RFC 5321 section 4.5.3.2, shortened where a stalled server would
// otherwise hold a worker for minutes: a queue worker retries later anyway.
type Timeouts struct {
	Connect   time.Duration `toml:"connect"`    // TCP connect, per host: 30s
	Greeting  time.Duration `toml:"greeting"`   // the 220 greeting: 60s (RFC: 5 min)
	Ehlo      time.Duration `toml:"ehlo"`       // EHLO/HELO answer: 60s
	StartTLS  time.Duration `toml:"starttls"`   // STARTTLS answer plus the TLS handshake: 60s
	Auth      time.Duration `toml:"auth"`       // the AUTH exchange: 60s
	Mail      time.Duration `toml:"mail"`       // MAIL FROM answer (with the EHLO go-smtp repeats after RSET): 60s (RFC: 5 min)
	Rcpt      time.Duration `toml:"rcpt"`       // RCPT TO answer: 60s (RFC: 5 min)
	DataInit  time.Duration `toml:"data_init"`  // the 354 answer to DATA: 60s (RFC: 2 min)
	DataBlock time.Duration `toml:"data_block"` // writing the whole message: 3m (RFC: 3 min per block)
	DataEnd   time.Duration `toml:"data_end"`   // the answer to the final dot: 5m (RFC: 10 min)
	Rset      time.Duration `toml:"rset"`       // RSET answer before a reused connection's next message: 30s
	Quit      time.Duration `toml:"quit"`       // QUIT answer: 10s
}

// withDefaults fills zero fields.
func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&t.Connect, 30*time.Second)
	def(&t.Greeting, 60*time.Second)
	def(&t.Ehlo, 60*time.Second)
	def(&t.StartTLS, 60*time.Second)
	def(&t.Auth, 60*time.Second)
	def(&t.Mail, 60*time.Second)
	def(&t.Rcpt, 60*time.Second)
	def(&t.DataInit, 60*time.Second)
	def(&t.DataBlock, 3*time.Minute)
	def(&t.DataEnd, 5*time.Minute)
	def(&t.Rset, 30*time.Second)
	def(&t.Quit, 10*time.Second)
	return t
}

// withDefaults returns c with defaults filled and the password taken from
// the environment when set.
func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = ModeMX
	}
	if c.StartTLS == "" {
		c.StartTLS = StartTLSOpportunistic
	}
	if c.HeloName == "" {
		if h, err := os.Hostname(); err == nil && h != "" && !strings.ContainsAny(h, " \r\n") {
			c.HeloName = h
		} else {
			c.HeloName = "localhost"
		}
	}
	if p, ok := os.LookupEnv(PasswordEnv); ok && p != "" {
		c.Password = p
	}
	c.Timeouts = c.Timeouts.withDefaults()
	return c
}

// Validate checks the section; errors name the key ("smtp.mode: ...",
// `smtp.routes."gmail.com": ...`). It does not read the environment.
func (c Config) Validate() error {
	switch c.Mode {
	case "", ModeMX, ModeRelay:
	default:
		return fmt.Errorf("smtp.mode: %q is not \"relay\" or \"mx\"", c.Mode)
	}
	switch c.StartTLS {
	case "", StartTLSOpportunistic, StartTLSRequired, StartTLSOff:
	default:
		return fmt.Errorf("smtp.starttls: %q is not \"opportunistic\", \"required\" or \"off\"", c.StartTLS)
	}
	if c.Mode == ModeRelay {
		if c.Relay == "" {
			return fmt.Errorf("smtp.relay: required in relay mode")
		}
		if err := checkHostPort(c.Relay); err != nil {
			return fmt.Errorf("smtp.relay: %w", err)
		}
	} else if c.Relay != "" {
		return fmt.Errorf("smtp.relay: only used in relay mode (smtp.mode = %q)", c.Mode)
	}
	if c.Username != "" && c.Mode != ModeRelay {
		return fmt.Errorf("smtp.username: AUTH is only used in relay mode")
	}
	if strings.ContainsAny(c.Username, "\r\n\x00") {
		return fmt.Errorf("smtp.username: contains a control character")
	}
	if strings.ContainsAny(c.HeloName, " \t\r\n") {
		return fmt.Errorf("smtp.helo: %q contains white space", c.HeloName)
	}
	keys := make([]string, 0, len(c.Routes))
	for k := range c.Routes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" || k != strings.ToLower(k) || strings.ContainsAny(k, " @") {
			return fmt.Errorf("smtp.routes.%q: the key must be a lower-case domain or \"*\"", k)
		}
		if err := checkHostPort(c.Routes[k]); err != nil {
			return fmt.Errorf("smtp.routes.%q: %w", k, err)
		}
	}
	t := c.Timeouts
	for _, f := range []struct {
		key string
		d   time.Duration
	}{{"connect", t.Connect}, {"greeting", t.Greeting}, {"ehlo", t.Ehlo}, {"starttls", t.StartTLS}, {"auth", t.Auth},
		{"mail", t.Mail}, {"rcpt", t.Rcpt}, {"data_init", t.DataInit}, {"data_block", t.DataBlock}, {"data_end", t.DataEnd},
		{"rset", t.Rset}, {"quit", t.Quit}} {
		if f.d < 0 {
			return fmt.Errorf("smtp.timeouts.%s: %v is negative", f.key, f.d)
		}
	}
	return nil
}

// checkHostPort checks a "host:port" value.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", s, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not 1..65535", s, port)
	}
	return nil
}
