package queue

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/policy"
)

func TestRetryPolicy(t *testing.T) {
	throttled := fmt.Errorf("send: %w", &policy.ThrottledError{Key: "provider:google", RetryIn: 2 * time.Second})
	failed := &SendError{Reply: bounces.Reply{Code: 451, Enhanced: "4.3.0", Text: "451 4.3.0 try later"}, Diagnosis: bounces.Diagnosis{Class: bounces.ClassTransient}}
	tests := []struct {
		name      string
		err       error
		isFailure bool
		min, max  time.Duration
	}{
		{"throttled comes back when the slot is free", throttled, false, 2 * time.Second, 2*time.Second + 210*time.Millisecond},
		{"a temporary answer spends the budget", failed, true, 15 * time.Second, 2 * time.Minute},
	}
	task := asynq.NewTask(TypeSend, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsFailure(tt.err); got != tt.isFailure {
				t.Errorf("IsFailure(%v) = %v, want %v", tt.err, got, tt.isFailure)
			}
			if d := RetryDelay(1, tt.err, task); d < tt.min || d > tt.max {
				t.Errorf("RetryDelay(1, %v) = %v, want in [%v, %v]", tt.err, d, tt.min, tt.max)
			}
		})
	}
}

func TestSendErrorTemporary(t *testing.T) {
	tests := []struct {
		reply bounces.Reply
		want  bool
	}{
		{bounces.Reply{Code: 451}, true},
		{bounces.Reply{Code: 550, Enhanced: "5.1.1"}, false},
		{bounces.Reply{Enhanced: "4.4.1", Text: "connect to 127.0.0.1:25: connection refused"}, true},
		{bounces.Reply{Enhanced: "5.1.10"}, false},
		{bounces.Reply{Code: 605}, false},
	}
	for _, tt := range tests {
		e := &SendError{Reply: tt.reply}
		if got := e.Temporary(); got != tt.want {
			t.Errorf("SendError{%+v}.Temporary() = %v, want %v", tt.reply, got, tt.want)
		}
	}
	var se *SendError
	if err := fmt.Errorf("x: %w", &SendError{Reply: bounces.Reply{Code: 550}}); !errors.As(err, &se) {
		t.Error("errors.As(SendError) failed")
	}
}

func TestWriteMetrics(t *testing.T) {
	m := NewMetrics()
	m.answer("gmail.com", bounces.ClassDelivered)
	m.answer("gmail.com", bounces.ClassRateLimited)
	m.answer("centrum.sk", bounces.ClassSpamBlocked)
	m.throttled("provider:google")
	var b bytes.Buffer
	if err := writeMetrics(&b, m, nil, func() map[string]float64 { return map[string]float64{"provider:google": 10} }); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`bounceloop_attempts_total{domain="gmail.com"} 2`,
		`bounceloop_answers_total{domain="gmail.com",class="rate_limited"} 1`,
		`bounceloop_answers_total{domain="centrum.sk",class="spam_blocked"} 1`,
		`bounceloop_throttled_total{key="provider:google"} 1`,
		`bounceloop_rate_per_second{key="provider:google"} 10`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
	var nilMetrics *Metrics
	nilMetrics.answer("x.com", bounces.ClassDelivered) // must not panic
}

func TestCheckAddress(t *testing.T) {
	tests := []struct {
		in, domain string
		wantErr    bool
	}{
		{"jana@Centrum.SK", "centrum.sk", false},
		{"jan.novak+news@azet.sk", "azet.sk", false},
		{"Jana <jana@centrum.sk>", "", true},
		{"<jana@centrum.sk>", "", true},
		{"jana@centrum.sk\r\nBcc: x@y.z", "", true},
		{"jana@localhost", "", true},
		{"jana", "", true},
		{"@centrum.sk", "", true},
		{"", "", true},
		{"jan@příklad.cz", "xn--pklad-zsa96e.cz", false},
	}
	for _, tt := range tests {
		d, err := CheckAddress(tt.in)
		if (err != nil) != tt.wantErr || d != tt.domain {
			t.Errorf("CheckAddress(%q) = %q, %v; want %q, error %v", tt.in, d, err, tt.domain, tt.wantErr)
		}
	}
}

func TestCheckMessageID(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{"0f3c9a2e@mail.example.com", false},
		{"a.b+c@x", false},
		{"no-at-sign", true},
		{"a@b@c", true},
		{"a b@c", true},
		{"<a@b>", true},
		{"a@b\r\n", true},
		{".a@b", true},
		{"a(b)@c", true},
		{strings.Repeat("a", 250) + "@b", true},
	}
	for _, tt := range tests {
		if err := CheckMessageID(tt.in); (err != nil) != tt.wantErr {
			t.Errorf("CheckMessageID(%q) = %v, wantErr %v", tt.in, err, tt.wantErr)
		}
	}
}
