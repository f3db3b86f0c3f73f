package bounces

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func parseFile(t *testing.T, path string) ([]Report, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return ParseMessage(f)
}

func TestParseMessage(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		want    []Report
		wantErr error
	}{
		{
			name: "postfix DSN, two recipients, folded diagnostics",
			file: "testdata/messages/dsn-postfix-two.eml",
			want: []Report{
				{Recipient: "jan@azet.sk", Action: ActionFailed,
					Reply:        Reply{Code: 550, Enhanced: "5.1.1", Text: "550 5.1.1 <jan@azet.sk>: Recipient address rejected: User unknown"},
					MessageID:    "0f3c9a2e@mail.example.com",
					ReportingMTA: "mail.example.com", Arrival: time.Date(2018, 5, 17, 8, 3, 9, 0, time.UTC), Command: "RCPT"},
				{Recipient: "eva@gmail.com", Action: ActionDelayed,
					Reply:        Reply{Code: 452, Enhanced: "4.2.2", Text: "452-4.2.2 The email account that you tried to reach is over quota."},
					MessageID:    "0f3c9a2e@mail.example.com",
					ReportingMTA: "mail.example.com", Arrival: time.Date(2018, 5, 17, 8, 3, 9, 0, time.UTC), Command: "RCPT"},
			},
		},
		{
			name: "ARF abuse report",
			file: "testdata/messages/arf-abuse.eml",
			want: []Report{{Recipient: "jana@centrum.sk", Action: ActionComplained, FeedbackType: "abuse",
				Reply:     Reply{Text: "feedback report: abuse"},
				MessageID: "0f3c9a2e@mail.example.com", ReportingMTA: "mail.fbl.example.net",
				Arrival: time.Date(2018, 5, 17, 8, 3, 11, 0, time.UTC)}},
		},
		{
			name: "RFC 3834 automatic reply",
			file: "testdata/messages/autoreply-ooo.eml",
			want: []Report{{Recipient: "petra@seznam.cz", Action: ActionAutoReplied,
				Reply:   Reply{Text: "Automatic reply: May newsletter"},
				Arrival: time.Date(2018, 5, 17, 6, 5, 0, 0, time.UTC)}},
		},
		{
			name: "qmail, two recipients, plain text",
			file: "testdata/messages/qmail-two.eml",
			want: []Report{
				{Recipient: "petr@example.cz", Reply: Reply{Enhanced: "5.1.1", Text: "Sorry, no mailbox here by that name. (#5.1.1)"},
					MessageID: "1a2b3c@mail.example.com", Arrival: time.Date(2018, 5, 17, 6, 5, 0, 0, time.UTC)},
				{Recipient: "jana@example.cz", Reply: Reply{Code: 552, Enhanced: "5.2.2", Text: "Remote host said: 552 5.2.2 Mailbox quota exceeded Giving up on 192.0.2.9."},
					MessageID: "1a2b3c@mail.example.com", Arrival: time.Date(2018, 5, 17, 6, 5, 0, 0, time.UTC)},
			},
		},
		{
			name:    "not a bounce",
			file:    "testdata/messages/not-bounce.eml",
			wantErr: ErrNotBounce,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFile(t, tt.file)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseMessage(%q) error = %v, want %v", tt.file, err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseMessage(%q) =\n%+v\nwant\n%+v", tt.file, got, tt.want)
			}
		})
	}
}

// TestParseMessageCorpus pins a few corpus messages of different families:
// recipient, codes and a word of the answer.
func TestParseMessageCorpus(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		index    int
		rcpt     string
		action   Action
		code     int
		enhanced string
		text     string // a substring of Reply.Text
		n        int    // number of reports
	}{
		{name: "exim", file: "lhost-exim-01.eml", rcpt: "kijitora@example.ed.jp", code: 550, enhanced: "5.7.0", text: "Please use the smtp server", n: 1},
		{name: "qmail", file: "lhost-qmail-01.eml", rcpt: "kijitora@example.ne.jp", code: 550, enhanced: "5.5.0", text: "Unknown user", n: 1},
		{name: "dragonfly", file: "lhost-dragonfly-01.eml", rcpt: "pseudo-local-part@google.example.com", code: 550, enhanced: "5.7.26", text: "DMARC", n: 1},
		{name: "sendmail without MIME boundary", file: "rfc3464-04.eml", rcpt: "kijitora@mailx-53.neko.example.edu", code: 554, enhanced: "5.5.0", text: "Service unavailable", n: 1},
		{name: "ses json bounce", file: "lhost-amazonses-09.eml", rcpt: "bounce@simulator.amazonses.com", code: 550, enhanced: "5.1.1", text: "user unknown", n: 1},
		{name: "ses json delivery", file: "lhost-amazonses-12.eml", rcpt: "success@simulator.amazonses.com", action: ActionDelivered, code: 250, enhanced: "2.6.0", n: 1},
		{name: "arf with seven recipients", file: "arf-16.eml", index: 6, rcpt: "sabineko@example.com", action: ActionComplained, n: 7},
		{name: "hotmail jmrp", file: "arf-22.eml", rcpt: "kijitora@example.com", action: ActionComplained, n: 1},
		{name: "vacation", file: "rfc3834-01.eml", rcpt: "kijitora@example.net", action: ActionAutoReplied, n: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reps, err := parseFile(t, filepath.Join("testdata", "corpus", "eml", tt.file))
			if err != nil {
				t.Fatalf("ParseMessage(%q) error = %v", tt.file, err)
			}
			if len(reps) != tt.n {
				t.Fatalf("ParseMessage(%q) gave %d reports, want %d: %+v", tt.file, len(reps), tt.n, reps)
			}
			r := reps[tt.index]
			if r.Recipient != tt.rcpt || r.Action != tt.action || r.Reply.Code != tt.code || r.Reply.Enhanced != tt.enhanced || !strings.Contains(r.Reply.Text, tt.text) {
				t.Errorf("ParseMessage(%q)[%d] = %+v, want recipient %q action %v code %d enhanced %q text with %q",
					tt.file, tt.index, r, tt.rcpt, tt.action, tt.code, tt.enhanced, tt.text)
			}
		})
	}
}

func TestParseMessageErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr error
	}{
		{name: "empty", in: "", wantErr: nil},
		{name: "header only", in: "Subject: hello\r\n\r\n", wantErr: ErrNotBounce},
		{name: "garbage", in: "\x00\x01\x02", wantErr: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reps, err := ParseMessage(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("ParseMessage(%q) = %+v, want an error", tt.in, reps)
			}
			if reps != nil {
				t.Errorf("ParseMessage(%q) = %+v with error %v, want no reports", tt.in, reps, err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseMessage(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestReportDiagnoseAndEvent(t *testing.T) {
	c, err := NewClassifier()
	if err != nil {
		t.Fatalf("NewClassifier() error = %v", err)
	}
	tests := []struct {
		name       string
		r          Report
		wantClass  Class
		wantSource Source
		wantDomain string
	}{
		{name: "complaint", r: Report{Recipient: "jana@Centrum.SK", Action: ActionComplained, FeedbackType: "abuse"},
			wantClass: ClassComplaint, wantSource: SourceARF, wantDomain: "centrum.sk"},
		{name: "auto reply", r: Report{Recipient: "petra@seznam.cz", Action: ActionAutoReplied},
			wantClass: ClassAutoReply, wantSource: SourceDSN, wantDomain: "seznam.cz"},
		{name: "delivered", r: Report{Recipient: "a@b.example", Action: ActionDelivered, Reply: Reply{Code: 250}},
			wantClass: ClassDelivered, wantSource: SourceDSN, wantDomain: "b.example"},
		{name: "relayed", r: Report{Recipient: "a@b.example", Action: ActionRelayed},
			wantClass: ClassDelivered, wantSource: SourceDSN, wantDomain: "b.example"},
		{name: "user unknown", r: Report{Recipient: "jan@azet.sk", Reply: ParseReply("550 5.1.1 <jan@azet.sk>: Recipient address rejected: User unknown")},
			wantClass: ClassInvalidRecipient, wantSource: SourceDSN, wantDomain: "azet.sk"},
		{name: "idna domain", r: Report{Recipient: "jan@Příklad.cz", Reply: ParseReply("550 5.1.1 user unknown")},
			wantClass: ClassInvalidRecipient, wantSource: SourceDSN, wantDomain: "xn--pklad-zsa96e.cz"},
		{name: "user unknown in reply to MAIL FROM", r: Report{Recipient: "jan@azet.sk", Command: "MAIL", Reply: ParseReply("553 5.1.0 sender.example.com does not exist")},
			wantClass: ClassPolicyBlocked, wantSource: SourceDSN, wantDomain: "azet.sk"},
		{name: "bare 550 after EHLO", r: Report{Recipient: "jan@azet.sk", Command: "EHLO", Reply: ParseReply("550 Rejected")},
			wantClass: ClassPolicyBlocked, wantSource: SourceDSN, wantDomain: "azet.sk"},
		{name: "user unknown in reply to RCPT TO", r: Report{Recipient: "jan@azet.sk", Command: "RCPT", Reply: ParseReply("550 5.1.1 user unknown")},
			wantClass: ClassInvalidRecipient, wantSource: SourceDSN, wantDomain: "azet.sk"},
		{name: "rate limit in reply to MAIL FROM stays", r: Report{Recipient: "jan@azet.sk", Command: "MAIL", Reply: ParseReply("421 4.7.0 Too many connections, slow down")},
			wantClass: ClassRateLimited, wantSource: SourceDSN, wantDomain: "azet.sk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Diagnose(c).Class; got != tt.wantClass {
				t.Errorf("%+v.Diagnose() class = %v, want %v", tt.r, got, tt.wantClass)
			}
			e := tt.r.Event()
			if e.Source != tt.wantSource || e.Domain != tt.wantDomain || e.Recipient != tt.r.Recipient || e.Code != tt.r.Reply.Code {
				t.Errorf("%+v.Event() = %+v, want source %v domain %q", tt.r, e, tt.wantSource, tt.wantDomain)
			}
		})
	}
}

func TestActionText(t *testing.T) {
	for a := ActionFailed; a < numActions; a++ {
		b, err := a.MarshalText()
		if err != nil {
			t.Fatalf("%v.MarshalText() error = %v", a, err)
		}
		var got Action
		if err := got.UnmarshalText(b); err != nil || got != a {
			t.Errorf("UnmarshalText(%q) = %v, %v, want %v", b, got, err, a)
		}
	}
	if _, err := ParseAction("exploded"); err == nil {
		t.Errorf("ParseAction(%q) error = nil, want an error", "exploded")
	}
}

func TestFindCommand(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "postfix MAIL FROM", in: "550 5.7.1 Sender rejected (in reply to MAIL FROM command)", want: "MAIL"},
		{name: "postfix end of DATA", in: "550 spam (in reply to end of DATA command)", want: "DATA"},
		{name: "postfix RCPT folded", in: "550 5.1.1 unknown (in reply to RCPT TO\n    command)", want: "RCPT"},
		{name: "exim MAIL FROM", in: "SMTP error from remote mail server after MAIL FROM:<a@example.com> SIZE=1022:", want: "MAIL"},
		{name: "exim pipelined", in: "SMTP error from remote mail server after pipelined MAIL FROM:<a@example.com>:", want: "MAIL"},
		{name: "exim EHLO", in: "SMTP error from remote mail server after EHLO mx.example.com:", want: "EHLO"},
		{name: "exim connection", in: "SMTP error from remote mail server after initial connection:", want: "CONN"},
		{name: "exim TEXT command", in: "SMTP error from remote server for TEXT command, host: mx.example.fr", want: "DATA"},
		{name: "prose for data", in: "we waited for data from the server", want: ""},
		{name: "prose after", in: "retry after some time", want: ""},
		{name: "none", in: "550 5.1.1 user unknown", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := findCommand(tt.in); got != tt.want {
				t.Errorf("findCommand(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseMessageCommand(t *testing.T) {
	const head = "From: Mail Delivery System <Mailer-Daemon@mx.example.org>\r\nTo: sender@example.org\r\nSubject: Mail delivery failed: returning message to sender\r\n"
	tests := []struct {
		name      string
		in        string
		wantRcpt  string
		wantCmd   string
		wantClass Class
	}{
		{name: "exim after MAIL FROM",
			in: head + "X-Failed-Recipients: jan@example.com\r\n\r\nThis message was created automatically by mail delivery software.\r\n\r\n" +
				"A message that you sent could not be delivered to one or more of its\r\nrecipients. This is a permanent error. The following address(es) failed:\r\n\r\n" +
				"  jan@example.com\r\n    host mx.example.com [192.0.2.1]\r\n    SMTP error from remote mail server after MAIL FROM:<sender@example.org> SIZE=1022:\r\n" +
				"    553 5.1.0 sender.example.org does not exist\r\n",
			wantRcpt: "jan@example.com", wantCmd: "MAIL", wantClass: ClassPolicyBlocked},
		{name: "sendmail transcript, answer above the recipient line",
			in: head + "\r\n   ----- Transcript of session follows -----\r\nWhile talking to mx.example.edu:\r\n>>> MAIL From:<sender@example.org>\r\n" +
				"<<< 550 Insecure Mail Relay\r\n554 <jan@example.edu>... Remote protocol error\r\n",
			wantRcpt: "jan@example.edu", wantCmd: "MAIL", wantClass: ClassPolicyBlocked},
		{name: "no recipient in the text: X-Failed-Recipients",
			in: "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\nTo: sender@example.org\r\nSubject: Delivery Status Notification (Failure)\r\n" +
				"X-Failed-Recipients: team@googlegroups.com\r\n\r\nHello sender@example.org,\r\n\r\nWe're writing to let you know that the group you tried to contact (team) " +
				"may not exist, or you may not have permission to post messages to the group.\r\n",
			wantRcpt: "team@googlegroups.com", wantCmd: "", wantClass: ClassPolicyBlocked},
	}
	c, err := NewClassifier()
	if err != nil {
		t.Fatalf("NewClassifier() error = %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reps, err := ParseMessage(strings.NewReader(tt.in))
			if err != nil || len(reps) != 1 {
				t.Fatalf("ParseMessage(%q) = %+v, %v, want one report", tt.name, reps, err)
			}
			r := reps[0]
			if r.Recipient != tt.wantRcpt || r.Command != tt.wantCmd {
				t.Errorf("ParseMessage(%q) recipient, command = %q, %q, want %q, %q", tt.name, r.Recipient, r.Command, tt.wantRcpt, tt.wantCmd)
			}
			if got := r.Diagnose(c).Class; got != tt.wantClass {
				t.Errorf("ParseMessage(%q) Diagnose() = %v, want %v", tt.name, got, tt.wantClass)
			}
		})
	}
}
