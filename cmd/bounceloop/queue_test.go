package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy/redistest"
	"github.com/bounceloop/bounceloop/queue"
)

func TestEnqueueCommand(t *testing.T) {
	rdb := redistest.DB(t)
	opt := rdb.Options()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	writeFile(t, cfg, fmt.Sprintf("[redis]\naddrs = [%q]\ndb = %d\nprefix = \"enq\"\n[queue]\nfrom = \"news@shop.example\"\n", opt.Addr, opt.DB))
	ctx := context.Background()
	if err := feedback.NewSuppressions(rdb, feedback.Keys{Prefix: "enq"}).Add(ctx, "gone@azet.sk", feedback.Suppression{Class: bounces.ClassInvalidRecipient, Code: 550}); err != nil {
		t.Fatal(err)
	}
	csv := filepath.Join(dir, "rcpt.csv")
	writeFile(t, csv, "email,first_name,offer\n"+
		"jana@centrum.sk,Jana,10%\n"+
		"petr@gmail.com,Petr,20%\n"+
		"not-an-address,X,1%\n"+
		"gone@azet.sk,Gone,5%\n"+
		"\"evil@x.com\r\nBcc: a@b.c\",E,1%\n"+
		"short,row\n"+
		"eva@seznam.cz,Eva,30%\n")
	var sum struct {
		Enqueued, Duplicates, Suppressed int
		Invalid                          []struct {
			Line   int
			Reason string
		}
	}
	out, errs, code := runCmd(t, "", "enqueue", "--config", cfg, "--campaign", "may", "--template", "newsletter", "--recipients", csv, "--json")
	if code != exitSkipped {
		t.Errorf("enqueue with bad rows = %d, want %d; stderr %s", code, exitSkipped, errs)
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("enqueue --json: %v: %s", err, out)
	}
	if sum.Enqueued != 3 || sum.Suppressed != 1 || sum.Duplicates != 0 || len(sum.Invalid) != 3 {
		t.Errorf("summary = %+v, want 3 enqueued, 1 suppressed, 3 invalid", sum)
	}
	lines := map[int]bool{}
	for _, inv := range sum.Invalid {
		lines[inv.Line] = true
		if strings.Contains(inv.Reason, "evil@") || strings.Contains(inv.Reason, "not-an-address") {
			t.Errorf("reason %q shows an address", inv.Reason)
		}
	}
	for _, l := range []int{4, 6, 8} {
		if !lines[l] {
			t.Errorf("invalid lines %v lack line %d", sum.Invalid, l)
		}
	}
	out, _, _ = runCmd(t, "", "enqueue", "--config", cfg, "--campaign", "may", "--template", "newsletter", "--recipients", csv, "--json")
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Enqueued != 0 || sum.Duplicates != 3 {
		t.Errorf("second run = %+v, want every good row a duplicate", sum)
	}
	_, errs, code = runCmd(t, "", "enqueue", "--config", cfg, "--campaign", "may", "--template", "nope", "--recipients", csv)
	if code != exitSkipped {
		t.Errorf("unknown template = %d, want %d (%s)", code, exitSkipped, errs)
	}
	_, errs, code = runCmd(t, "", "enqueue", "--config", cfg, "--campaign", "may", "--recipients", csv)
	if code != exitUsage || !strings.Contains(errs, "required") {
		t.Errorf("missing --template = %d %q", code, errs)
	}
}

func TestDemoCommand(t *testing.T) {
	out, errs, code := runCmd(t, "", "demo", "--messages", "300", "--json", "--log-level", "warn")
	if code != exitOK {
		t.Fatalf("demo = %d: %s", code, errs)
	}
	var sum struct {
		Messages, Delivered int
		ByClass             map[string]int `json:"by_class"`
		Domains             map[string]struct {
			Attempts, Delivered int
			ByClass             map[string]int `json:"by_class"`
			RatePerS            float64        `json:"rate_per_s"`
		}
		DurationS float64 `json:"duration_s"`
		Second    *struct {
			Messages, Enqueued  int
			SuppressedAtEnqueue int `json:"suppressed_at_enqueue"`
		}
		Report *struct {
			Month  string
			Totals struct{ Attempts int64 }
		}
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("demo --json: %v: %s", err, out)
	}
	if sum.Messages != 300 || sum.Delivered < 250 || sum.ByClass["delivered"] != sum.Delivered || sum.DurationS <= 0 {
		t.Errorf("demo summary = %+v", sum)
	}
	if g := sum.Domains["gmail.com"]; g.Attempts < 150 || g.RatePerS <= 0 {
		t.Errorf("gmail.com = %+v, want most of the campaign", g)
	}
	if sum.Second == nil || sum.Second.Messages != 300 || sum.Second.Enqueued+sum.Second.SuppressedAtEnqueue != 300 {
		t.Errorf("demo --json second campaign = %+v, want the same 300 recipients", sum.Second)
	}
	if sum.Report == nil || sum.Report.Month != time.Now().UTC().Format("2006-01") || sum.Report.Totals.Attempts < 500 {
		t.Errorf("demo --json report = %+v, want this month's report of both campaigns", sum.Report)
	}
}

func TestServeCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(t.TempDir(), "config.toml")
	writeFile(t, cfg, fmt.Sprintf("[web]\nlisten = %q\nusername = \"ops\"\npassword = \"s3cret\"\n", addr))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var errs string
	go func() {
		var code int
		_, errs, code = runCmdCtx(ctx, "", "serve", "--config", cfg)
		done <- code
	}()
	var resp *http.Response
	for i := 0; i < 100; i++ {
		if resp, err = http.Get("http://" + addr + "/healthz"); err == nil {
			break
		}
		<-time.After(50 * time.Millisecond)
	}
	if err != nil {
		cancel()
		<-done
		t.Fatalf("serve never answered /healthz: %v; stderr %s", err, errs)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", resp.StatusCode)
	}
	for _, path := range []string{"/metrics", "/monitoring/"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without credentials = %d, want 401", path, resp.StatusCode)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		req.SetBasicAuth("ops", "s3cret")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s with credentials = %d, want 200", path, resp.StatusCode)
		}
	}
	// A new rate is reloaded; a broken file keeps the running config.
	writeFile(t, cfg, fmt.Sprintf("[web]\nlisten = %q\nusername = \"ops\"\npassword = \"s3cret\"\n[policy.providers.google]\nrate = \"3/s\"\n", addr))
	bump := func() { // mtime granularity: make sure the change is seen
		now := time.Now().Add(time.Second)
		_ = os.Chtimes(cfg, now, now)
	}
	bump()
	<-time.After(2500 * time.Millisecond)
	writeFile(t, cfg, "[policy.providers.google]\nrate = \"fast\"\n")
	bump()
	<-time.After(2500 * time.Millisecond)
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("serve after SIGTERM = %d, want 0; stderr %s", code, errs)
	}
	if !strings.Contains(errs, "config reloaded") || !strings.Contains(errs, "config not reloaded: keeping the running one") {
		t.Errorf("serve logs %s; want a reload and a refused reload", errs)
	}
	if strings.Contains(errs, "s3cret") {
		t.Error("the web password appears in the logs")
	}
}

func TestOpenDemoUI(t *testing.T) {
	for _, tc := range []struct {
		name string
		web  queue.WebConfig
		want bool
	}{
		{"default listener, no credentials", queue.WebConfig{}, true},
		{"localhost", queue.WebConfig{Listen: "localhost:9000"}, true},
		{"IPv6 loopback", queue.WebConfig{Listen: "[::1]:9000"}, true},
		{"all interfaces", queue.WebConfig{Listen: "0.0.0.0:8080"}, false},
		{"credentials configured", queue.WebConfig{Username: "ops", Password: "s3cret-s3cret"}, false},
		{"viewer token", queue.WebConfig{ViewerToken: "0123456789abcdef0123"}, false},
	} {
		if got := openDemoUI(tc.web); got != tc.want {
			t.Errorf("%s: openDemoUI = %v, want %v", tc.name, got, tc.want)
		}
	}
}
