package queue

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/bounceloop/bounceloop/policy"
)

// Config is the [queue] section of config.toml. Zero fields take the
// defaults documented on each.
type Config struct {
	// Concurrency is the number of workers of a serve process; default 20.
	Concurrency int `toml:"concurrency"`
	// MaxRetry is how often a failed send is retried before it is archived;
	// default 12. Throttling does not count (see ThrottleWait).
	MaxRetry int `toml:"max_retry"`
	// Retention keeps a finished task (and its id) so that the same message
	// id is refused as a duplicate for that long; default 24h.
	Retention policy.Duration `toml:"retention"`
	// TaskTimeout bounds one send attempt, SMTP included; default 5m.
	TaskTimeout policy.Duration `toml:"task_timeout"`
	// ThrottleWait is how long a worker waits for a domain's slot before it
	// gives the task back to asynq with the limiter's delay (not counted as
	// a retry); default 1s.
	ThrottleWait policy.Duration `toml:"throttle_wait"`
	// ShutdownTimeout is how long SIGTERM waits for SMTP transactions in
	// flight before their tasks go back to the queue; default 30s.
	ShutdownTimeout policy.Duration `toml:"shutdown_timeout"`
	// From is the sender address of messages that name none; default
	// "noreply@bounceloop.invalid" (RFC 2606: set a real sender in production).
	From string `toml:"from"`
	// ReportZone is the IANA time zone of the monthly report that serve
	// builds on the 1st at 03:00 (its days and its month boundaries);
	// default "UTC".
	ReportZone string `toml:"report_zone"`
	// SentRecordTTL is how long the compact record of an accepted message
	// is kept (campaign, recipient, template, rate key and queue, and the
	// payload when a small variant could be resent), so that a later
	// bounce is matched to it by message id; later bounces already applied
	// are remembered as long, so that a duplicate acts once. Default 120h
	// (5 days, the queue lifetime of common MTAs, after which a relay
	// bounces); it may exceed Retention, the record does not need the task.
	// A record takes about 300 bytes of Redis memory, 600 with a typical
	// payload.
	SentRecordTTL policy.Duration `toml:"sent_record_ttl"`
}

// WebConfig is the [web] section: the HTTP listener of "serve" with the
// asynq web UI at /monitoring, /metrics, the operators' pages and
// /healthz.
//
// Everything but /healthz (and POST /bounces, which checks its own HMAC
// signature) requires credentials: HTTP basic auth or
// "Authorization: Bearer <token>", of the admin or of the viewer. Without
// any credential configured those routes answer 401, unless Open is set.
// Secrets are better given in the environment (BOUNCELOOP_WEB_PASSWORD,
// BOUNCELOOP_WEB_TOKEN, BOUNCELOOP_WEB_VIEWER_PASSWORD,
// BOUNCELOOP_WEB_VIEWER_TOKEN), which overrides the file; they are never
// logged.
type WebConfig struct {
	// Listen is the listener's address; default "127.0.0.1:8080". "off"
	// disables it.
	Listen string `toml:"listen"`
	// Open serves every route without credentials, as the admin role; only
	// for a listener that nobody untrusted reaches. Default false; it
	// cannot be combined with credentials.
	Open bool `toml:"open"`
	// Username and Password are the admin's basic auth; both or neither.
	Username string `toml:"username"`
	Password string `toml:"password"`
	// Token is the admin's bearer token, at least MinWebToken bytes.
	Token string `toml:"token"`
	// ViewerUsername, ViewerPassword and ViewerToken are the same for the
	// viewer role: every page and /metrics, the asynq web UI read-only, no
	// method but GET, HEAD and OPTIONS.
	ViewerUsername string `toml:"viewer_username"`
	ViewerPassword string `toml:"viewer_password"`
	ViewerToken    string `toml:"viewer_token"`
	// ReadOnly makes the asynq web UI read-only for the admin too; default
	// true. Operators who run, delete or resume tasks from the UI set it
	// to false. The viewer's UI is always read-only.
	ReadOnly *bool `toml:"read_only"`
}

// The environment variables that override WebConfig's secrets.
const (
	WebPasswordEnv       = "BOUNCELOOP_WEB_PASSWORD"
	WebTokenEnv          = "BOUNCELOOP_WEB_TOKEN"
	WebViewerPasswordEnv = "BOUNCELOOP_WEB_VIEWER_PASSWORD"
	WebViewerTokenEnv    = "BOUNCELOOP_WEB_VIEWER_TOKEN"
)

// MinWebToken is the shortest bearer token allowed, in bytes.
const MinWebToken = 16

// Defaults of Config.
const (
	DefaultConcurrency     = 20
	DefaultMaxRetry        = 12
	DefaultRetention       = 24 * time.Hour
	DefaultTaskTimeout     = 5 * time.Minute
	DefaultThrottleWait    = time.Second
	DefaultShutdownTimeout = 30 * time.Second
	DefaultSentRecordTTL   = 120 * time.Hour
	DefaultFrom            = "noreply@bounceloop.invalid"
	DefaultListen          = "127.0.0.1:8080"
)

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxRetry == 0 {
		c.MaxRetry = DefaultMaxRetry
	}
	if c.Retention == 0 {
		c.Retention = policy.Duration(DefaultRetention)
	}
	if c.TaskTimeout == 0 {
		c.TaskTimeout = policy.Duration(DefaultTaskTimeout)
	}
	if c.ThrottleWait == 0 {
		c.ThrottleWait = policy.Duration(DefaultThrottleWait)
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = policy.Duration(DefaultShutdownTimeout)
	}
	if c.From == "" {
		c.From = DefaultFrom
	}
	if c.SentRecordTTL == 0 {
		c.SentRecordTTL = policy.Duration(DefaultSentRecordTTL)
	}
	if c.ReportZone == "" {
		c.ReportZone = MonthlyReportZone
	}
	return c
}

// Validate checks the section; errors name the key.
func (c Config) Validate() error {
	switch {
	case c.Concurrency < 0:
		return fmt.Errorf("queue: queue.concurrency: %d must be > 0 (0 means %d)", c.Concurrency, DefaultConcurrency)
	case c.MaxRetry < 0:
		return fmt.Errorf("queue: queue.max_retry: %d must be >= 0", c.MaxRetry)
	case c.Retention < 0:
		return fmt.Errorf("queue: queue.retention: must be > 0")
	case c.TaskTimeout < 0:
		return fmt.Errorf("queue: queue.task_timeout: must be > 0")
	case c.ThrottleWait < 0:
		return fmt.Errorf("queue: queue.throttle_wait: must be >= 0")
	case c.ShutdownTimeout < 0:
		return fmt.Errorf("queue: queue.shutdown_timeout: must be > 0")
	case c.SentRecordTTL < 0:
		return fmt.Errorf("queue: queue.sent_record_ttl: must be > 0 (0 means %s)", DefaultSentRecordTTL)
	}
	if c.From != "" {
		if _, err := CheckAddress(c.From); err != nil {
			return fmt.Errorf("queue: queue.from: %w", err)
		}
	}
	if c.ReportZone != "" {
		if _, err := time.LoadLocation(c.ReportZone); err != nil {
			return fmt.Errorf("queue: queue.report_zone: %q is not a time zone: %w", c.ReportZone, err)
		}
	}
	return nil
}

// WithDefaults returns c with every zero field set to its default.
func (c WebConfig) WithDefaults() WebConfig {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.ReadOnly == nil {
		t := true
		c.ReadOnly = &t
	}
	for env, field := range map[string]*string{WebPasswordEnv: &c.Password, WebTokenEnv: &c.Token,
		WebViewerPasswordEnv: &c.ViewerPassword, WebViewerTokenEnv: &c.ViewerToken} {
		if v := os.Getenv(env); v != "" {
			*field = v
		}
	}
	return c
}

// Validate checks the section; errors name the key. Call it on the result
// of WithDefaults to check the secrets of the environment too.
func (c WebConfig) Validate() error {
	if c.Listen != "" && c.Listen != "off" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("queue: web.listen: %q is not host:port or \"off\"", c.Listen)
		}
	}
	var errs []error
	for _, who := range []struct{ key, user, pass, token, passEnv, tokenEnv string }{
		{"", c.Username, c.Password, c.Token, WebPasswordEnv, WebTokenEnv},
		{"viewer_", c.ViewerUsername, c.ViewerPassword, c.ViewerToken, WebViewerPasswordEnv, WebViewerTokenEnv},
	} {
		switch {
		case who.user == "" && who.pass != "":
			errs = append(errs, fmt.Errorf("queue: web.%susername: required when web.%spassword is set", who.key, who.key))
		case who.user != "" && who.pass == "":
			errs = append(errs, fmt.Errorf("queue: web.%spassword: required with web.%susername (better in %s)", who.key, who.key, who.passEnv))
		}
		if who.token != "" && len(who.token) < MinWebToken {
			errs = append(errs, fmt.Errorf("queue: web.%stoken: must be at least %d bytes (%s)", who.key, MinWebToken, who.tokenEnv))
		}
	}
	switch {
	case c.Open && (c.Username != "" || c.Password != "" || c.Token != "" || c.ViewerUsername != "" || c.ViewerPassword != "" || c.ViewerToken != ""):
		errs = append(errs, errors.New("queue: web.open: true serves everything without credentials: remove the credentials, or open"))
	case c.Username != "" && c.Username == c.ViewerUsername:
		errs = append(errs, errors.New("queue: web.viewer_username: must differ from web.username"))
	case c.Token != "" && c.Token == c.ViewerToken:
		errs = append(errs, errors.New("queue: web.viewer_token: must differ from web.token"))
	}
	return errors.Join(errs...)
}
