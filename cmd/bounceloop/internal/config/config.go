// Package config is the one typed form of bounceloop's config.toml. Each
// package owns its section and validation; this package composes them,
// decodes the file strictly (an unknown key is an error naming the key, the
// index of the [[array]] element it is in and its line) and validates every section.
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
	if und := outermost(md.Undecoded()); len(und) > 0 {
		if len(und) == 1 {
			path, line := locateKey(data, und[0])
			if line > 0 {
				return Config{}, fmt.Errorf("config: %s:%d: unknown key %s", name, line, path)
			}
			return Config{}, fmt.Errorf("config: %s: unknown key %s", name, path)
		}
		keys := make([]string, len(und))
		for i, k := range und {
			path, line := locateKey(data, k)
			keys[i] = path
			if line > 0 {
				keys[i] = fmt.Sprintf("%s (line %d)", path, line)
			}
		}
		return Config{}, fmt.Errorf("config: %s: unknown key %s", name, strings.Join(keys, ", "))
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config: %s: %w", name, err)
	}
	return c, nil
}

// locateKey finds the line that sets key in data and names the key with
// the index of each array of tables it is in: "bounces.rules[1].clas" for
// a key of the second [[bounces.rules]]. It reads the usual layout (one
// key or table header per line); a key it cannot find is named without
// indexes and line 0.
func locateKey(data []byte, key toml.Key) (string, int) {
	want := key.String()
	var table []string         // the current table's key path
	var pretty []string        // the same with [i] after array tables
	arrays := map[string]int{} // count of [[path]] headers seen
	for i, raw := range strings.Split(string(data), "\n") {
		ln := strings.TrimSpace(raw)
		switch {
		case ln == "" || ln[0] == '#':
			continue
		case strings.HasPrefix(ln, "[[") && strings.Contains(ln, "]]"):
			table = splitKey(ln[2:strings.Index(ln, "]]")])
			path := strings.Join(table, ".")
			arrays[path]++
			pretty = prettyPath(table, arrays)
		case ln[0] == '[' && strings.Contains(ln, "]"):
			table = splitKey(ln[1:strings.Index(ln, "]")])
			pretty = prettyPath(table, arrays)
		default:
			k, _, ok := strings.Cut(ln, "=")
			if !ok {
				continue
			}
			parts := splitKey(k)
			full := strings.Join(append(append([]string{}, table...), parts...), ".")
			if full == want {
				return strings.Join(append(append([]string{}, pretty...), parts...), "."), i + 1
			}
		}
		// A header that is itself the unknown key ([smtpp]).
		if strings.Join(table, ".") == want {
			return strings.Join(pretty, "."), i + 1
		}
	}
	return want, 0
}

// outermost drops the keys inside an unknown table: [smtpp] with its
// host is one unknown key, smtpp.
func outermost(keys []toml.Key) []toml.Key {
	unknown := map[string]bool{}
	for _, k := range keys {
		unknown[k.String()] = true
	}
	var out []toml.Key
next:
	for _, k := range keys {
		for n := 1; n < len(k); n++ {
			if unknown[k[:n].String()] {
				continue next
			}
		}
		out = append(out, k)
	}
	return out
}

// splitKey splits a dotted TOML key into its parts, without quotes.
func splitKey(k string) []string {
	parts := strings.Split(k, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return parts
}

// prettyPath is table with "[i]" after each prefix that is an array of
// tables, i being the index of its latest element.
func prettyPath(table []string, arrays map[string]int) []string {
	out := make([]string, len(table))
	for j := range table {
		out[j] = table[j]
		if n := arrays[strings.Join(table[:j+1], ".")]; n > 0 {
			out[j] = fmt.Sprintf("%s[%d]", table[j], n-1)
		}
	}
	return out
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
