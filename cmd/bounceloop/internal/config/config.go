// Package config is the one typed form of bounceloop's config.toml. Each
// package owns its section and validation; this package composes them,
// decodes the file strictly (an unknown key is an error naming the key and
// its line) and validates every section.
//
// The zero Config is the built-in default: no file is needed to run.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/queue"
	"github.com/bounceloop/bounceloop/queue/compose"
	"github.com/bounceloop/bounceloop/queue/sender"
)

// Config is the whole of config.toml.
type Config struct {
	// Bounces holds the operator's diagnosis rules ([[bounces.rules]]),
	// which win over the built-in ones.
	Bounces bounces.Config `toml:"bounces"`
	// Redis is where the queue, the shared policy state and the report's
	// counters live.
	Redis policy.RedisConfig `toml:"redis"`
	// Policy routes recipient domains to provider groups and sets their
	// pace.
	Policy policy.Config `toml:"policy"`
	// Queue tunes the workers and the tasks.
	Queue queue.Config `toml:"queue"`
	// SMTP is how messages leave: relay or MX, TLS, timeouts.
	SMTP sender.Config `toml:"smtp"`
	// Templates is the template folder.
	Templates compose.Config `toml:"templates"`
	// Web is the HTTP listener of serve.
	Web queue.WebConfig `toml:"web"`
	// Webhook is POST /bounces on that listener.
	Webhook queue.WebhookConfig `toml:"webhook"`
}

// Load reads and validates the file at path. An empty path gives the
// built-in defaults.
func Load(path string) (Config, error) {
	if path == "" {
		return Config{}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes data (named name in errors) strictly into a Config and
// validates it.
func Parse(name string, data []byte) (Config, error) {
	var c Config
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := pe.Message
			if pe.LastKey != "" {
				msg = fmt.Sprintf("%s: %s", pe.LastKey, msg)
			}
			return Config{}, fmt.Errorf("config: %s:%d: %s", name, errorLine(pe, data), msg)
		}
		return Config{}, fmt.Errorf("config: %s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("config: %s: unknown key %s", name, strings.Join(keys, ", "))
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config: %s: %w", name, err)
	}
	return c, nil
}

// errorLine is the line of a TOML parse error within data: the decoder
// gives line 0 for some errors at the end of the input (an unterminated
// escape), which is the last line.
func errorLine(pe toml.ParseError, data []byte) int {
	lines := bytes.Count(data, []byte("\n")) + 1
	if n := pe.Position.Line; n >= 1 && n <= lines {
		return n
	}
	return lines
}

// Validate checks every section; the error names the key.
func (c Config) Validate() error {
	// The policy section is applied over the built-in provider table (a
	// provider given by name overrides the built-in one field by field),
	// so it is the result that must be valid.
	return errors.Join(c.Bounces.Validate(), c.Redis.Validate(), c.Policy.WithDefaults().Validate(), c.Queue.Validate(),
		c.SMTP.Validate(), c.Templates.Validate(), c.Web.WithDefaults().Validate(), c.Webhook.WithDefaults().Validate())
}
