package bounces

import "strings"

// Reply is an SMTP answer split into its parts: the basic reply code, the
// RFC 3463 enhanced status code ("5.1.1", empty when absent) and the text as
// given. Code is 0 when the text holds no basic code.
type Reply struct {
	Code     int
	Enhanced string
	Text     string
}

// ParseReply splits an SMTP answer such as "550 5.1.1 <jan@azet.sk>: User
// unknown", "550-5.7.1 ...", "smtp; 554 5.7.1 ..." or "552 1 Requested mail
// action aborted" into a Reply. It never fails: what it cannot read stays in
// Text. Multi-line answers ("550-5.1.1 ...\n550 5.1.1 ...") are accepted.
func ParseReply(s string) Reply {
	r := Reply{Text: strings.TrimSpace(s)}
	t := r.Text
	// DSN Diagnostic-Code form: "smtp; 550 ...".
	if i := strings.IndexByte(t, ';'); i > 0 && i < 12 && strings.EqualFold(strings.TrimSpace(t[:i]), "smtp") {
		t = strings.TrimSpace(t[i+1:])
	}
	if len(t) >= 3 && isDigit(t[0]) && isDigit(t[1]) && isDigit(t[2]) && (len(t) == 3 || t[3] == ' ' || t[3] == '-' || t[3] == '\t') {
		if t[0] >= '2' && t[0] <= '5' {
			r.Code = int(t[0]-'0')*100 + int(t[1]-'0')*10 + int(t[2]-'0')
		}
		t = strings.TrimLeft(t[3:], " -\t")
	}
	if e, _ := FindEnhanced(t); e != "" {
		r.Enhanced = e
	}
	return r
}

// FindEnhanced returns the first RFC 3463 enhanced status code in s (class
// 2, 4 or 5, then subject and detail of one to three digits, optionally
// behind '#' as some MTAs write it) and its offset, or "" and -1.
func FindEnhanced(s string) (string, int) {
	for i := 0; i+5 <= len(s); i++ {
		c := s[i]
		if c != '2' && c != '4' && c != '5' {
			continue
		}
		if i > 0 {
			p := s[i-1]
			if isDigit(p) || p == '.' || isLetter(p) {
				continue
			}
		}
		if n := enhancedLen(s[i:]); n > 0 {
			return s[i : i+n], i
		}
	}
	return "", -1
}

// enhancedLen returns the length of an enhanced status code at the start of
// s, or 0.
func enhancedLen(s string) int {
	if len(s) < 5 || s[1] != '.' {
		return 0
	}
	i := 2
	n := digits(s[i:], 3)
	if n == 0 {
		return 0
	}
	i += n
	if i >= len(s) || s[i] != '.' {
		return 0
	}
	i++
	n = digits(s[i:], 3)
	if n == 0 {
		return 0
	}
	i += n
	if i < len(s) && (isDigit(s[i]) || s[i] == '.' && i+1 < len(s) && isDigit(s[i+1]) || isLetter(s[i])) {
		return 0 // an IP address, a version number or a longer token
	}
	return i
}

func digits(s string, max int) int {
	n := 0
	for n < len(s) && n < max && isDigit(s[n]) {
		n++
	}
	if n < len(s) && n == max && isDigit(s[n]) {
		return 0
	}
	return n
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
