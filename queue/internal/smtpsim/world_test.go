package smtpsim

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, cfg Config) *World {
	t.Helper()
	w, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// plainSend sends body without TLS (go-smtp's SendMail insists on STARTTLS).
func plainSend(addr, to, body string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("test.example"); err != nil {
		return err
	}
	return c.SendMail("s@example.net", []string{to}, strings.NewReader(body))
}

// send delivers one message with go-smtp's client and returns the answer
// code (250 on success) and text.
func send(t *testing.T, addr, to, id string, size int) (int, string) {
	t.Helper()
	body := fmt.Sprintf("Message-ID: <%s>\r\nSubject: x\r\n\r\n%s\r\n", id, strings.Repeat("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", size/40+1))
	err := plainSend(addr, to, body)
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code, se.Message
	}
	if err != nil {
		t.Fatalf("SendMail(%q) = %v", to, err)
	}
	return 250, ""
}

func TestDefaultWorldAnswers(t *testing.T) {
	w := start(t, func() Config { c := DefaultConfig(7); c.TLS = false; return c }())
	r := w.Routes()
	tests := []struct {
		name, to string
		size     int
		code     int
		text     string
	}{
		{"delivered", "ok-a@gmail.com", 10, 250, ""},
		{"gmail unknown", "unknown-a@gmail.com", 10, 550, "The email account that you tried to reach does not exist."},
		{"azet unknown", "unknown-a@azet.sk", 10, 550, "Recipient address rejected"},
		{"centrum unknown", "unknown-a@centrum.sk", 10, 550, "#5.1.0 Address rejected."},
		{"hotmail unknown", "unknown-a@hotmail.com", 10, 550, "Requested action not taken: mailbox unavailable"},
		{"icloud unknown", "unknown-a@icloud.com", 10, 550, "user does not exist"},
		{"seznam unknown", "unknown-a@seznam.cz", 10, 550, "sorry, no such mailbox here"},
		{"stonline unknown", "unknown-a@stonline.sk", 10, 550, "User unknown in local recipient table"},
		{"yahoo unknown", "unknown-a@yahoo.com", 10, 552, "1 Requested mail action aborted, mailbox not found"},
		{"zoznam unknown", "unknown-a@zoznam.sk", 10, 550, "User unknown in virtual mailbox table"},
		{"centrum spam", "spam-a@centrum.sk", 10, 554, "Message rejected as spam"},
		{"icloud tempfail", "tempfail-a@icloud.com", 10, 451, "Mailbox temporarily unavailable"},
		{"gmail size", "big-a@gmail.com", 20000, 552, "Your message exceeded Google's message size limits."},
		{"gmail full", "full-a@gmail.com", 10, 552, "out of storage space"},
		{"catch-all", "ok-a@unlisted.test", 10, 250, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.to[strings.IndexByte(tt.to, '@')+1:]
			addr, ok := r[d]
			if !ok {
				addr = r["*"]
			}
			code, text := send(t, addr, tt.to, tt.name, tt.size)
			if code != tt.code || !strings.Contains(text, tt.text) {
				t.Errorf("send(%q) = %d %q, want %d %q", tt.to, code, text, tt.code, tt.text)
			}
		})
	}
}

func TestFlakyAndDuplicates(t *testing.T) {
	w := start(t, Config{Seed: 1, Providers: []Provider{{Name: "p", Domains: []string{"example.org"}}}})
	addr := w.Routes()["example.org"]
	if code, _ := send(t, addr, "flaky-1@example.org", "m1", 1); code != 451 {
		t.Errorf("first attempt = %d, want 451", code)
	}
	if code, _ := send(t, addr, "flaky-1@example.org", "m1", 1); code != 250 {
		t.Errorf("second attempt = %d, want 250", code)
	}
	send(t, addr, "b@example.org", "m1", 1)
	s := w.Stats()
	if s.Accepted != 2 || s.Duplicates != 1 || w.Accepted("<m1>") != 2 {
		t.Errorf("Stats = %+v, Accepted(m1) = %d; want 2 accepted, 1 duplicate", s, w.Accepted("m1"))
	}
	if d := s.Domains["example.org"]; d.Attempts != 3 || d.Answers[451] != 1 || d.Answers[250] != 2 {
		t.Errorf("domain stats = %+v", d)
	}
	if p := s.Providers["p"]; p.Connections != 3 {
		t.Errorf("provider stats = %+v, want 3 connections", p)
	}
}

func TestRateLimit(t *testing.T) {
	w := start(t, Config{Seed: 1, Domains: map[string]Domain{"gmail.com": {RatePerSec: 0.001, Burst: 3, RateReply: DefaultConfig(1).Domains["gmail.com"].RateReply}}})
	addr := w.Routes()["gmail.com"]
	codes := []int{}
	for i := range 5 {
		c, text := send(t, addr, fmt.Sprintf("u%d@gmail.com", i), fmt.Sprint(i), 1)
		codes = append(codes, c)
		if c == 450 && !strings.HasPrefix(text, "The user you are trying to contact is receiving mail at a rate") {
			t.Errorf("rate answer = %q", text)
		}
	}
	if fmt.Sprint(codes) != "[250 250 250 450 450]" {
		t.Errorf("codes = %v, want 3 accepted then 450", codes)
	}
}

// TestDeterministicShares checks that decisions depend on (seed,
// recipient) only and follow the shares.
func TestDeterministicShares(t *testing.T) {
	cfg := Config{Seed: 42, Domains: map[string]Domain{"centrum.sk": DefaultConfig(42).Domains["centrum.sk"]}}
	w1, _ := Start(cfg)
	defer w1.Close()
	w2, _ := Start(cfg)
	defer w2.Close()
	s1 := &session{pr: w1.byDom["centrum.sk"]}
	s2 := &session{pr: w2.byDom["centrum.sk"]}
	spam := 0
	const n = 20000
	for i := range n {
		a := fmt.Sprintf("user%d@centrum.sk", i)
		o1 := s1.decide(fmt.Sprintf("user%d", i), a, cfg.Domains["centrum.sk"])
		if o2 := s2.decide(fmt.Sprintf("user%d", i), a, cfg.Domains["centrum.sk"]); o1 != o2 {
			t.Fatalf("decide(%q) differs between worlds: %v, %v", a, o1, o2)
		}
		if o1 == outSpam {
			spam++
		}
	}
	if share := float64(spam) / n; share < 0.42 || share > 0.46 {
		t.Errorf("spam share = %.3f, want about 0.441", share)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"default", DefaultConfig(1), ""},
		{"share out of range", Config{Default: Domain{SpamShare: 1.5}}, "smtpsim: default.spam_share"},
		{"shares above 1", Config{Domains: map[string]Domain{"a.test": {SpamShare: 0.6, UnknownShare: 0.6}}}, `smtpsim: domains."a.test": shares`},
		{"bad reply", Config{Default: Domain{SpamReply: "250 ok"}}, "smtpsim: default.spam_reply"},
		{"domain twice", Config{Providers: []Provider{{Name: "a", Domains: []string{"x.test"}}, {Name: "b", Domains: []string{"x.test"}}}}, "smtpsim: domain \"x.test\""},
		{"unknown catch-all", Config{CatchAll: "nobody"}, "smtpsim: catch_all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestRefuseAndReopen(t *testing.T) {
	w := start(t, Config{Seed: 1, Providers: []Provider{{Name: "p", Domains: []string{"example.org"}}}})
	addr := w.Routes()["example.org"]
	if err := w.SetFault("example.org", FaultRefuse); err != nil {
		t.Fatal(err)
	}
	if err := plainSend(addr, "a@example.org", "x\r\n"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("SendMail while refusing = %v, want connection refused", err)
	}
	if err := w.SetFault("example.org", FaultNone); err != nil {
		t.Fatal(err)
	}
	if code, _ := send(t, addr, "a@example.org", "r", 1); code != 250 {
		t.Errorf("after reopening = %d, want 250", code)
	}
}
