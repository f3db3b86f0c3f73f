package config

import (
	"bytes"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/bounceloop/bounceloop/queue"
)

// fuzzLine finds the line an error names: "config: fuzz.toml:<line>: ...".
var fuzzLine = regexp.MustCompile(`^config: fuzz\.toml:(\d+): `)

// maxFuzzConfig bounds the inputs of FuzzParse: a config file is small,
// and the fuzzer spends its time minimising large inputs otherwise.
const maxFuzzConfig = 4096

// FuzzParse decodes arbitrary config files. Parse never panics and never
// returns a config together with an error; an error names the file and
// either the line (a syntax or type error, within the file) or the key (an
// unknown key, a rule broken); a config it accepts is valid, encodes back
// to TOML, and that TOML parses to the same config.
func FuzzParse(f *testing.F) {
	shipped, err := os.ReadFile("../../../../config.toml")
	if err != nil {
		f.Fatal(err)
	}
	// The shipped file without its comments, and each of its sections on
	// its own with the commented keys uncommented: the fuzzer starts from
	// every key. (Inputs stay small: the fuzzer minimises each new input,
	// which takes long for large ones.)
	var bare bytes.Buffer
	for _, line := range bytes.Split(shipped, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			bare.Write(line)
			bare.WriteByte('\n')
		}
	}
	f.Add(bare.Bytes())
	for _, sec := range bytes.Split(shipped, []byte("\n[")) {
		var b bytes.Buffer
		b.WriteByte('[')
		for _, line := range bytes.Split(sec, []byte("\n")) {
			line = bytes.TrimPrefix(line, []byte("# "))
			if i := bytes.Index(line, []byte(" #")); i > 0 {
				line = line[:i]
			}
			if bytes.HasPrefix(line, []byte("#")) || bytes.Contains(line, []byte("  ")) || len(line) == 0 {
				continue // prose
			}
			b.Write(line)
			b.WriteByte('\n')
		}
		if b.Len() <= maxFuzzConfig {
			f.Add(b.Bytes())
		}
	}
	for _, s := range []string{
		"",
		"[[bounces.rules]]\nid = \"a\"\ncodes = [550]\nclass = \"invalid_recipient\"\npattern = \"(?i)user\\\\s+unknown\"\n",
		"[policy.providers.google]\nrate = \"3/s\"\nmax_age = \"36h\"\n[policy.domains.\"example.com\"]\nper_minute = 10\n",
		"[queue]\nconcurrency = -1\n",
		"[web]\nlisten = \"127.0.0.1:0\"\nusername = \"ops\"\npassword = \"x\"\nread_only = false\n",
		"[webhook]\nsecret = \"0123456789abcdef\"\nmax_body = 1024\n",
		"[redis]\naddrs = [\"127.0.0.1:6379\"]\ndb = 3\nprefix = \"bl\"\n",
		"a = \"\\u0000\"\n[x\n",
		"[queue]\nretention = \"1h\"\nretention = \"2h\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzConfig {
			return
		}
		// The environment must not stand in for the file.
		for _, env := range []string{queue.WebPasswordEnv, queue.WebTokenEnv, queue.WebViewerPasswordEnv, queue.WebViewerTokenEnv, queue.WebhookSecretEnv} {
			if os.Getenv(env) != "" {
				t.Skipf("%s is set", env)
			}
		}
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			if !reflect.DeepEqual(c, Config{}) {
				t.Fatalf("Parse() = %+v with error %v", c, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config: fuzz.toml") {
				t.Fatalf("Parse() error %q does not name the file", msg)
			}
			if m := fuzzLine.FindStringSubmatch(msg); m != nil {
				n, _ := strconv.Atoi(m[1])
				if lines := bytes.Count(data, []byte("\n")) + 1; n < 1 || n > lines {
					t.Fatalf("Parse() error %q names line %d of %d", msg, n, lines)
				}
			} else if !strings.Contains(msg, "unknown key") && !strings.Contains(msg, ".") {
				t.Fatalf("Parse() error %q names neither a line nor a key", msg)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse() accepted a config that Validate() refuses: %v", err)
		}
		var out bytes.Buffer
		if err := toml.NewEncoder(&out).Encode(c); err != nil {
			t.Fatalf("encoding %+v: %v", c, err)
		}
		back, err := Parse("back.toml", out.Bytes())
		if err != nil {
			t.Fatalf("Parse(encoded %+v) = %v\n%s", c, err, out.Bytes())
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip:\n got %+v\nwant %+v\n%s", back, c, out.Bytes())
		}
	})
}
