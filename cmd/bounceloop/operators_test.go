package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/policy/redistest"
)

func TestSuppressionsCommand(t *testing.T) {
	rdb := redistest.DB(t)
	cfg := filepath.Join(t.TempDir(), "config.toml")
	writeFile(t, cfg, fmt.Sprintf("[redis]\naddrs = [%q]\ndb = %d\nprefix = \"ops\"\n", rdb.Options().Addr, rdb.Options().DB))
	steps := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"suppressions", "add", "Jan@Azet.sk", "--class", "complaint"}, exitOK, "added"},
		{[]string{"suppressions", "add", "not an address"}, exitUsage, ""},
		{[]string{"suppressions", "add", "x@y.z", "--class", "spamm"}, exitUsage, ""},
		{[]string{"suppressions", "list"}, exitOK, "jan@azet.sk"},
		{[]string{"suppressions", "remove", "nobody@azet.sk"}, exitSkipped, "not suppressed"},
		{[]string{"suppressions", "frob"}, exitUsage, ""},
	}
	for _, s := range steps {
		out, errs, code := runCmd(t, "", append(s.args, "--config", cfg)...)
		if code != s.code || !strings.Contains(out, s.out) {
			t.Errorf("%q = %d %q (stderr %q), want %d and %q", s.args, code, out, errs, s.code, s.out)
		}
	}
	out, _, code := runCmd(t, "", "suppressions", "export", "--config", cfg)
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != exitOK || err != nil || len(recs) != 2 || recs[0][0] != "address" || recs[1][0] != "jan@azet.sk" || recs[1][1] != "complaint" {
		t.Errorf("export = %d %q (%v), want a header and jan@azet.sk as complaint", code, out, err)
	}
	if out, _, code := runCmd(t, "", "suppressions", "remove", "jan@azet.sk", "--config", cfg); code != exitOK || !strings.Contains(out, "removed") {
		t.Errorf("remove = %d %q", code, out)
	}
}

func TestDomainsCommand(t *testing.T) {
	rdb := redistest.DB(t)
	cfg := filepath.Join(t.TempDir(), "config.toml")
	writeFile(t, cfg, fmt.Sprintf("[redis]\naddrs = [%q]\ndb = %d\nprefix = \"ops\"\n", rdb.Options().Addr, rdb.Options().DB))
	ctx := context.Background()
	loop := feedback.NewLoop(rdb, feedback.Keys{Prefix: "ops"}, nil)
	pol := policy.DefaultConfig()
	rt := pol.Route("gmail.com")
	if _, err := loop.Throttled(ctx, rt.Key, rt.Settings); err != nil {
		t.Fatal(err)
	}
	// A queue paused for review, as the handler pauses it.
	client := asynq.NewClientFromRedisClient(rdb)
	if _, err := client.Enqueue(asynq.NewTask("noop", nil), asynq.Queue("centrum")); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	defer insp.Close()
	if err := insp.PauseQueue("centrum"); err != nil {
		t.Fatal(err)
	}
	if err := loop.NotePause(ctx, "centrum", "60% spam blocks"); err != nil {
		t.Fatal(err)
	}
	// Holds by suspension rules: one on a listed domain's provider key's
	// domain, one on a recipient.
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if err := loop.SetHold(ctx, feedback.HoldDomain("example.org"), feedback.Hold{Rule: "slow", Reason: "421 4.7.0 later", Since: time.Now(), Until: until}); err != nil {
		t.Fatal(err)
	}
	if err := loop.SetHold(ctx, feedback.HoldRecipient("Jana@Gmail.com"), feedback.Hold{Rule: "rcpt", Reason: "450 4.2.1 slow down", Since: time.Now(), Until: until}); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runCmd(t, "", "domains", "--json", "--config", cfg)
	if code != exitOK {
		t.Fatalf("domains = %d: %s", code, errs)
	}
	var rows []domainRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	byKey := map[string]domainRow{}
	for _, r := range rows {
		byKey[r.Key] = r
	}
	cut := rt.Settings.Rate.PerSecond() * rt.Settings.ThrottleCut
	if g := byKey["provider:google"]; g.Configured != 10 || math.Abs(g.Current-cut) > 1e-9 || g.Why == "" {
		t.Errorf("google = %+v, want configured 10, current %g after one cut, with a reason", g, cut)
	}
	if c := byKey["provider:centrum"]; !c.Paused || c.PauseWhy != "60% spam blocks" {
		t.Errorf("centrum = %+v, want paused with its reason", c)
	}
	want := until.Format(time.RFC3339)
	if h := byKey["domain:example.org"]; h.HeldUntil != want || h.HeldWhy != "rule slow: 421 4.7.0 later" || h.Queue != "default" {
		t.Errorf("domain:example.org = %+v, want held until %s by rule slow", h, want)
	}
	if h := byKey["recipient:jana@gmail.com"]; h.HeldUntil != want || h.Queue != "google" {
		t.Errorf("recipient:jana@gmail.com = %+v, want held until %s in the google queue", h, want)
	}
	if out, errs, code := runCmd(t, "", "domains", "resume", "centrum", "--config", cfg); code != exitOK || !strings.Contains(out, "resumed") {
		t.Errorf("domains resume = %d %q %q", code, out, errs)
	}
	if info, err := insp.GetQueueInfo("centrum"); err != nil || info.Paused {
		t.Errorf("centrum after resume: %+v, %v", info, err)
	}
	if p, _ := loop.Pauses(ctx); len(p) != 0 {
		t.Errorf("pause notes after resume: %v", p)
	}
	_ = client.Close()
}
