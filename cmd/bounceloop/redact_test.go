package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRedactAddresses(t *testing.T) {
	tests := []struct{ in, want string }{
		{`no address here`, `no address here`},
		{`recipient: "jan@azet.sk" has no valid domain`, `recipient: "***@azet.sk" has no valid domain`},
		{`to=<Jan.Novak+x@Gmail.COM>, relay=mx`, `to=<***@Gmail.COM>, relay=mx`},
		{`a@b.c and d@e.f`, `***@b.c and ***@e.f`},
		{`"jan@azet.sk\r\nBcc: eva@seznam.cz"`, `"***@azet.sk\r\nBcc: ***@seznam.cz"`},
		{`already ***@azet.sk`, `already ***@azet.sk`},
		{`@ alone, a@ and @b`, `@ alone, a@ and @b`},
		{`jana@příklad.cz`, `***@příklad.cz`},
		{`{"level":"warn","reason":"line 5: bad address \"x@y.org\""}`, `{"level":"warn","reason":"line 5: bad address \"***@y.org\""}`},
		{`{"task_id":"0f3c9a2e@bounceloop.invalid","review_task":"ab12@x.example","to":"jan@azet.sk"}`, `{"task_id":"0f3c9a2e@bounceloop.invalid","review_task":"ab12@x.example","to":"***@azet.sk"}`},
		{`{"my_task_id":"0f3c@b.c","message_id":"1@b.c"}`, `{"my_task_id":"***@b.c","message_id":"1@b.c"}`},
	}
	for _, tt := range tests {
		got, changed := redactAddresses([]byte(tt.in))
		if string(got) != tt.want || changed != (tt.in != tt.want) {
			t.Errorf("redactAddresses(%q) = %q, %v, want %q", tt.in, got, changed, tt.want)
		}
	}
}

// TestLoggerRedacts logs an address at every level through newLogger: it
// is written only at debug.
func TestLoggerRedacts(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger("debug", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug().Str("recipient", "jan@azet.sk").Msg("debug line")
	log.Info().Str("recipient", "jan@azet.sk").Msg("info line")
	log.Warn().Str("reason", `recipient: "eva@seznam.cz" bad`).Msg("warn line")
	log.Error().Msg("error line petra@gmail.com")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("logged %d lines, want 4:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "jan@azet.sk") {
		t.Errorf("debug line lost the address: %s", lines[0])
	}
	for _, ln := range lines[1:] {
		for _, a := range []string{"jan@", "eva@", "petra@"} {
			if strings.Contains(ln, a) {
				t.Errorf("line above debug holds %s...: %s", a, ln)
			}
		}
		if !strings.Contains(ln, "***@") {
			t.Errorf("line above debug lost its domain: %s", ln)
		}
	}
}

func FuzzRedactAddresses(f *testing.F) {
	f.Add([]byte(`recipient: "jan@azet.sk" has no valid domain`))
	f.Add([]byte(`a@b@c@@d.e`))
	f.Fuzz(func(t *testing.T, p []byte) {
		got, changed := redactAddresses(p)
		if !changed && !bytes.Equal(got, p) {
			t.Fatalf("unchanged but different: %q -> %q", p, got)
		}
		if bytes.Count(got, []byte("@")) != bytes.Count(p, []byte("@")) {
			t.Fatalf("redactAddresses(%q) = %q: the @ count changed", p, got)
		}
		again, _ := redactAddresses(got)
		if !bytes.Equal(again, got) {
			t.Fatalf("not idempotent: %q -> %q -> %q", p, got, again)
		}
	})
}
