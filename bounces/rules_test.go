package bounces

import (
	"math/rand"
	"strings"
	"testing"
)

// TestMatcher checks the Aho–Corasick matcher against strings.Contains on
// the folded text.
func TestMatcher(t *testing.T) {
	words := []string{"user unknown", "unknown", "spam", "spamhaus", "he", "she", "his", "hers", "[ts01]", "quota", "a"}
	m := newMatcher(words)
	texts := []string{
		"", "550 5.1.1 User  Unknown", "USHERS", "listed at SPAMHAUS", "[TS01] deferred", "over\nquota", "user\r\n  unknown",
		"no match here", "ahishers", "Ünknown ßpam",
	}
	rng := rand.New(rand.NewSource(1))
	alphabet := "aehirsnuko[]t01 \nAUSQ"
	for i := 0; i < 500; i++ {
		b := make([]byte, rng.Intn(30))
		for j := range b {
			b[j] = alphabet[rng.Intn(len(alphabet))]
		}
		texts = append(texts, string(b))
	}
	for _, text := range texts {
		set := make([]uint64, (len(words)+63)/64)
		m.scan(text, set)
		folded := normalizeKeyword(text)
		for id, w := range words {
			got := set[id>>6]&(1<<(uint(id)&63)) != 0
			want := strings.Contains(folded, w)
			if got != want {
				t.Errorf("scan(%q) has %q = %v, want %v", text, w, got, want)
			}
		}
	}
}

func TestContinuationSkipped(t *testing.T) {
	c := newTestClassifier(t)
	// "likely unsolicited mail" broken by a continuation marker.
	r := ParseReply("550-5.7.1 Our system has detected that this message is likely 550-5.7.1 unsolicited mail. - gsmtp")
	if d := c.Classify(r, "gmail.com"); d.Class != ClassSpamBlocked {
		t.Errorf("Classify(%q) = %v/%s, want spam_blocked", r.Text, d.Class, d.Rule)
	}
	tests := []struct {
		in   string
		want int
	}{
		{"550-5.7.1 x", 10},
		{"550 5.7.1 x", 10},
		{"550-x", 4},
		{"550 apples", 0},
		{"12", 0},
		{"550 5.7.1", 9},
		{"5500 x", 0},
	}
	for _, tt := range tests {
		if got := continuationLen(tt.in); got != tt.want {
			t.Errorf("continuationLen(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestParseEnhanced(t *testing.T) {
	tests := []struct {
		in     string
		wantN  int
		wantOK bool
	}{
		{"5", 1, true}, {"5.7", 2, true}, {"5.7.1", 3, true}, {"4.7.650", 3, true},
		{"3.1.1", 0, false}, {"5.", 0, false}, {"5.7.1.2", 0, false}, {"55.1.1", 0, false}, {"5.1234.1", 0, false}, {"", 0, false}, {"x", 0, false},
	}
	for _, tt := range tests {
		e, ok := parseEnhanced(tt.in)
		if ok != tt.wantOK || ok && e.n != tt.wantN {
			t.Errorf("parseEnhanced(%q) = %+v, %v, want n=%d, %v", tt.in, e, ok, tt.wantN, tt.wantOK)
		}
	}
}

func TestDomainMatch(t *testing.T) {
	tests := []struct {
		pattern, domain string
		want            bool
	}{
		{"yahoo.com", "yahoo.com", true},
		{"yahoo.com", "mail.yahoo.com", true},
		{"yahoo.com", "notyahoo.com", false},
		{"yahoo.com", "yahoo.com.evil", false},
		{".yahoo.com", "yahoo.com", false},
		{".yahoo.com", "mx.yahoo.com", true},
		{".yahoo.com", "notyahoo.com", false},
	}
	for _, tt := range tests {
		if got := domainMatch(tt.pattern, tt.domain); got != tt.want {
			t.Errorf("domainMatch(%q, %q) = %v, want %v", tt.pattern, tt.domain, got, tt.want)
		}
	}
}

// TestBuiltinRulesCompile checks that every built-in rule compiles alone and
// ranks where its conditions say.
func TestBuiltinRulesCompile(t *testing.T) {
	for _, r := range DefaultRules() {
		if _, err := compileRule(&r); err != nil {
			t.Errorf("compileRule(%q) = %v", r.ID, err)
			continue
		}
		tier := ruleTier(&r)
		if r.Provider != "" && tier != tierProvider {
			t.Errorf("rule %q: provider rule in tier %d", r.ID, tier)
		}
		if len(r.Text) > 0 && r.Provider == "" && len(r.Domains) == 0 && tier != tierWording {
			t.Errorf("rule %q: wording rule in tier %d", r.ID, tier)
		}
		for _, w := range r.Text {
			if w != normalizeKeyword(w) {
				t.Errorf("rule %q: text %q is not lower-case and trimmed", r.ID, w)
			}
		}
	}
}
