package queue

import (
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
}

// WebConfig is the [web] section: the HTTP listener of "serve" with the
// asynq web UI at /monitoring, /metrics and /healthz.
type WebConfig struct {
	// Listen is the listener's address; default "127.0.0.1:8080". "off"
	// disables it.
	Listen string `toml:"listen"`
	// Username and Password require HTTP basic auth for everything but
	// /healthz when Username is set. The password is better given in the
	// environment variable BOUNCELOOP_WEB_PASSWORD, which overrides it.
	Username string `toml:"username"`
	Password string `toml:"password"`
	// ReadOnly makes the asynq web UI read-only; default true. Operators
	// who run, delete or resume tasks from the UI set it to false.
	ReadOnly *bool `toml:"read_only"`
}

// WebPasswordEnv names the environment variable that overrides
// WebConfig.Password.
const WebPasswordEnv = "BOUNCELOOP_WEB_PASSWORD"

// Defaults of Config.
const (
	DefaultConcurrency     = 20
	DefaultMaxRetry        = 12
	DefaultRetention       = 24 * time.Hour
	DefaultTaskTimeout     = 5 * time.Minute
	DefaultThrottleWait    = time.Second
	DefaultShutdownTimeout = 30 * time.Second
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
	if v := os.Getenv(WebPasswordEnv); v != "" {
		c.Password = v
	}
	return c
}

// Validate checks the section; errors name the key.
func (c WebConfig) Validate() error {
	if c.Listen != "" && c.Listen != "off" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("queue: web.listen: %q is not host:port or \"off\"", c.Listen)
		}
	}
	if c.Username == "" && c.Password != "" {
		return fmt.Errorf("queue: web.username: required when web.password is set")
	}
	return nil
}
