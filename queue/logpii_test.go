package queue

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/policy/redistest"
	"github.com/bounceloop/bounceloop/queue/compose"
	"github.com/bounceloop/bounceloop/queue/internal/smtpsim"
	"github.com/bounceloop/bounceloop/queue/sender"
)

// addressPattern finds what looks like an email address.
var addressPattern = regexp.MustCompile(`[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+`)

// idFields are the log fields that carry message ids ("hex@domain", which
// look like addresses): their values must be message ids the test knows.
var idFields = map[string]bool{"task_id": true, "resent_as": true, "review_task": true, "message_id": true}

// TestNoAddressInLogs runs a small campaign through a whole serve stack
// (real SMTP to the simulated world, whose refusals echo the recipient's
// address as Postfix does; the web listener; the webhook with NDJSON
// events and a DSN) with a debug logger, and checks every line at info
// level or above: no recipient's address, no address-like text outside the
// message id fields, and only known message ids in those. Debug lines may
// carry addresses' keyed hashes (rcpt_hash), which are checked to be there.
func TestNoAddressInLogs(t *testing.T) {
	clearWebEnv(t)
	t.Setenv(WebhookSecretEnv, "")
	rdb := redistest.DB(t)
	world, err := smtpsim.Start(smtpsim.Config{Seed: 1, CatchAll: "other", Providers: []smtpsim.Provider{
		{Name: "google", Domains: []string{"gmail.com"}},
		{Name: "other", Domains: []string{"azet.sk", "centrum.sk", "yahoo.com", "icloud.com", "example.org", "seznam.cz"}},
	}, Domains: map[string]smtpsim.Domain{
		"gmail.com":  {UnknownReply: "550 5.1.1 <unknown-1@gmail.com>: Recipient address rejected: User unknown in virtual mailbox table"},
		"centrum.sk": {SpamReply: "554 5.7.1 <spam-1@centrum.sk>: Message rejected as spam"},
		"seznam.cz":  {FullReply: "452 4.2.2 <full-1@seznam.cz>: Mailbox full", SizeReply: "552 5.3.4 <big-1@seznam.cz>: Message size exceeds fixed maximum message size"},
		"icloud.com": {TempFailReply: "451 4.3.0 <tempfail-1@icloud.com>: Temporary local problem"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer world.Close()
	cl, err := bounces.NewClassifier()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	st, err := NewStack(StackConfig{
		Redis: rdb, ConnOpt: asynq.RedisClientOpt{Addr: rdb.Options().Addr, DB: rdb.Options().DB}, KeyPrefix: "pii",
		Queue: Config{Concurrency: 8, MaxRetry: 2}, Web: WebConfig{Listen: "127.0.0.1:0", Token: adminToken},
		Webhook: WebhookConfig{Secret: testWebhookSecret}, Policy: policy.Config{},
		SMTP:      sender.Config{Mode: sender.ModeMX, Routes: world.Routes(), InsecureSkipVerify: true, HeloName: "bounceloop.test"},
		Templates: compose.Default(), Classifier: cl, Resolver: noDNS{},
		Log: zerolog.New(&logs).Level(zerolog.DebugLevel),
		RetryDelay: func(n int, err error, tk *asynq.Task) time.Duration {
			if !IsFailure(err) {
				return RetryDelay(n, err, tk)
			}
			return 50 * time.Millisecond
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Shutdown)

	recipients := []string{"unknown-1@gmail.com", "spam-1@centrum.sk", "full-1@seznam.cz", "big-1@seznam.cz", "tempfail-1@icloud.com",
		"flaky-1@azet.sk", "ok-1@example.org", "Jana.Novakova@Azet.SK"}
	for i := 0; i < 10; i++ {
		recipients = append(recipients, fmt.Sprintf("ok-%d@gmail.com", i))
	}
	var msgs []Message
	for _, to := range recipients {
		msgs = append(msgs, Message{Campaign: "pii", To: to, Template: "newsletter", Data: map[string]any{"first_name": "Jana", "offer": "for " + to}})
	}
	// Refused at enqueue: nothing is logged about them, and certainly not
	// their address.
	msgs = append(msgs, Message{Campaign: "pii", To: "bad\r\nBcc: injected@evil.example", Template: "newsletter"},
		Message{Campaign: "pii", To: "no-template@azet.sk", Template: "no-such-template"})
	ctx := context.Background()
	res, err := st.Client.EnqueueBatch(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range res {
		ids[r.ID] = true
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	defer insp.Close()
	waitFinal(t, insp, 60*time.Second)
	// Enqueued again: the invalid recipient is suppressed now (605).
	if _, err := st.Client.EnqueueBatch(ctx, msgs[:1]); err != nil {
		t.Fatal(err)
	}

	// Later bounces through the webhook: events (one malformed line naming
	// an address) and a DSN.
	base := "http://" + st.Server.Addr()
	events := `{"time":"2018-05-17T08:03:11Z","recipient":"late@azet.sk","code":550,"enhanced":"5.1.1","text":"550 5.1.1 <late@azet.sk>: user unknown"}` + "\n" +
		`{"time":"2018-05-17T08:03:11Z","recipient":"malformed@azet.sk"}` + "\n" +
		`{"time":"2018-05-17T08:03:11Z","recipient":"complaint@centrum.sk","code":550,"source":"arf"}` + "\n"
	if status, ans := post(t, base+"/bounces", "application/x-ndjson", WebhookSignature(testWebhookSecret, []byte(events)), strings.NewReader(events)); status != http.StatusBadRequest || ans.Accepted != 2 {
		t.Errorf("POST events = %d %+v, want 400 with 2 accepted", status, ans)
	}
	dsn, err := os.ReadFile("../bounces/testdata/messages/dsn-postfix-two.eml")
	if err != nil {
		t.Fatal(err)
	}
	if status, ans := post(t, base+"/bounces", "message/rfc822", WebhookSignature(testWebhookSecret, dsn), strings.NewReader(string(dsn))); status != http.StatusOK {
		t.Errorf("POST DSN = %d %+v, want 200", status, ans)
	}
	post(t, base+"/bounces", "application/x-ndjson", WebhookSignature("not-the-secret-0123456789", []byte(events)), strings.NewReader(events))
	// The pages list addresses to operators; serving them logs none.
	for _, path := range []string{"/suppressions", "/suppressions.csv?q=gmail", "/domains", "/metrics"} {
		if got, _ := do(t, http.MethodGet, base+path, "Bearer "+adminToken); got != http.StatusOK {
			t.Errorf("GET %s = %d", path, got)
		}
	}
	st.Shutdown()

	known := append([]string{"late@azet.sk", "malformed@azet.sk", "complaint@centrum.sk", "injected@evil.example", "no-template@azet.sk"}, recipients...)
	known = append(known, "jan@azet.sk", "eva@gmail.com") // the DSN's recipients
	levels := map[string]int{}
	hashes := 0
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var fields map[string]any
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Errorf("log line is not JSON: %v: %s", err, line)
			continue
		}
		level, _ := fields["level"].(string)
		levels[level]++
		if _, ok := fields["rcpt_hash"]; ok {
			hashes++
		}
		if level == "debug" || level == "trace" {
			continue
		}
		lower := strings.ToLower(line)
		for _, a := range known {
			if strings.Contains(lower, strings.ToLower(a)) {
				t.Errorf("%s line names the address %s: %s", level, a, line)
			}
		}
		for k, v := range fields {
			s := fmt.Sprint(v)
			if idFields[k] {
				if !ids[s] && addressPattern.MatchString(s) && !strings.HasSuffix(s, "@"+strings.SplitN(DefaultFrom, "@", 2)[1]) {
					t.Errorf("%s line: %s %q is not a message id of the campaign: %s", level, k, s, line)
				}
				continue
			}
			if m := addressPattern.FindString(s); m != "" {
				t.Errorf("%s line: field %s holds an address-like %q: %s", level, k, m, line)
			}
		}
	}
	if levels["info"] == 0 || levels["warn"]+levels["error"] == 0 || hashes == 0 {
		t.Errorf("log levels %v, %d lines with rcpt_hash: want info and warn lines, and hashes, for the check to mean something", levels, hashes)
	}
	t.Logf("checked log lines by level: %v (%d with rcpt_hash)", levels, hashes)
}
