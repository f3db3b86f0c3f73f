package main

import (
	"io"

	"github.com/rs/zerolog"
)

// redactWriter is the last guard of the rule that no email address appears
// in logs above debug level: the code logs domains, counts and hashes, but
// a reason or an error can quote a record ("recipient: \"jan@azet.sk\" ...").
// In every line above debug it replaces the local part of anything shaped
// like an address with "***", keeping the domain ("***@azet.sk"), except
// the message ids of idKeys. Debug lines are written as they are.
type redactWriter struct{ w io.Writer }

// Write writes p as it is (no level known: zerolog always calls WriteLevel).
func (r redactWriter) Write(p []byte) (int, error) { return r.w.Write(p) }

// WriteLevel redacts p when level is above debug.
func (r redactWriter) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	if level > zerolog.DebugLevel && level != zerolog.NoLevel {
		if q, changed := redactAddresses(p); changed {
			if _, err := r.w.Write(q); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return r.w.Write(p)
}

// localChar reports whether c may be part of an address' local part as
// it appears in a log line (RFC 5322 atext and the dot).
func localChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= 0x80:
		return true
	}
	switch c {
	case '.', '!', '#', '$', '%', '&', '\'', '*', '+', '/', '=', '?', '^', '_', '`', '{', '|', '}', '~', '-':
		return true
	}
	return false
}

// domainChar reports whether c may be part of a domain as it appears in a
// log line (letters, digits, hyphens, dots and UTF-8 of IDNs).
func domainChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c >= 0x80
}

// idKeys are the JSON keys whose values are message ids
// ("<32 hex>@<sender domain>", RFC 5322's Message-ID form): shaped like an
// address, but naming a task, not a person, and needed to find it in the
// web UI.
var idKeys = []string{"task_id", "review_task", "resent_as", "message_id"}

// idValue reports whether the JSON string value starting at p[start] is
// the value of one of idKeys (p[:start] ends with `"key":"`).
func idValue(p []byte, start int) bool {
	if start < 2 || p[start-1] != '"' || p[start-2] != ':' {
		return false
	}
	for _, k := range idKeys {
		n := len(k) + 2 // the quotes around the key
		if start-2 >= n && string(p[start-2-n:start-2]) == `"`+k+`"` {
			return true
		}
	}
	return false
}

// redactAddresses returns p with the local part of every local@domain
// replaced by "***", and whether it changed anything. p is not modified.
func redactAddresses(p []byte) ([]byte, bool) {
	var out []byte
	last := 0 // p[last:] is not yet copied to out
	for i := 0; i < len(p); i++ {
		if p[i] != '@' {
			continue
		}
		start := i
		for start > last && localChar(p[start-1]) {
			start--
		}
		end := i + 1
		for end < len(p) && domainChar(p[end]) {
			end++
		}
		if start == i || end == i+1 || (i-start == 3 && string(p[start:i]) == "***") || idValue(p, start) {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(p))
		}
		out = append(out, p[last:start]...)
		out = append(out, "***@"...)
		last = i + 1
		i = end - 1
	}
	if out == nil {
		return p, false
	}
	return append(out, p[last:]...), true
}
