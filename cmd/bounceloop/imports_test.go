package main

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/bounceloop/bounceloop"

// TestImportDirection enforces DESIGN.md's direction of imports over
// "go list -deps": bounces is a leaf without asynq or Redis, only queue (and
// cmd) reach asynq, policy does not reach feedback or queue, feedback does
// not reach queue.
func TestImportDirection(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-test=false", "-json=ImportPath,Deps", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		if strings.HasPrefix(p.ImportPath, module) {
			deps[p.ImportPath] = p.Deps
		}
	}
	if len(deps) < 5 {
		t.Fatalf("go list found %d project packages, want at least 5", len(deps))
	}
	for pkg, ds := range deps {
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
		top, _, _ := strings.Cut(rel, "/")
		for _, d := range ds {
			if v := violation(top, d); v != "" {
				t.Errorf("%s imports %s: %s", pkg, d, v)
			}
		}
	}
}

// violation says why package folder top may not depend on d, or "".
func violation(top, d string) string {
	asynq := strings.HasPrefix(d, "github.com/hibiken/asynq")
	redis := strings.HasPrefix(d, "github.com/redis/go-redis")
	own := strings.HasPrefix(d, module+"/")
	ownTop := ""
	if own {
		ownTop, _, _ = strings.Cut(strings.TrimPrefix(d, module+"/"), "/")
	}
	switch top {
	case "bounces":
		switch {
		case asynq, redis:
			return "bounces is pure: no asynq, no Redis"
		case own && ownTop != "bounces":
			return "bounces imports nothing of the project"
		}
	case "policy":
		switch {
		case asynq:
			return "only queue imports asynq"
		case own && (ownTop == "feedback" || ownTop == "queue" || ownTop == "cmd"):
			return "policy imports only bounces"
		}
	case "feedback":
		switch {
		case asynq:
			return "only queue imports asynq"
		case own && (ownTop == "queue" || ownTop == "cmd"):
			return "feedback imports only policy and bounces"
		}
	case "queue":
		if own && ownTop == "cmd" {
			return "queue does not import cmd"
		}
	case "cmd":
	default: // a folder DESIGN.md does not name (internal/..., tools/...)
		if asynq {
			return "only queue (and cmd) import asynq"
		}
	}
	return ""
}

func TestViolation(t *testing.T) {
	tests := []struct {
		name, top, dep string
		bad            bool
	}{
		{"bounces asynq", "bounces", "github.com/hibiken/asynq", true},
		{"bounces redis", "bounces", "github.com/redis/go-redis/v9/internal", true},
		{"bounces policy", "bounces", module + "/policy", true},
		{"bounces stdlib", "bounces", "net/mail", false},
		{"policy asynq", "policy", "github.com/hibiken/asynq", true},
		{"policy redis", "policy", "github.com/redis/go-redis/v9", false},
		{"policy feedback", "policy", module + "/feedback", true},
		{"feedback asynq", "feedback", "github.com/hibiken/asynq/internal/base", true},
		{"feedback policy", "feedback", module + "/policy", false},
		{"feedback queue", "feedback", module + "/queue", true},
		{"queue asynq", "queue", "github.com/hibiken/asynq", false},
		{"cmd asynq", "cmd", "github.com/hibiken/asynq", false},
		{"new folder asynq", "internal", "github.com/hibiken/asynq", true},
		{"new folder redis", "tools", "github.com/redis/go-redis/v9", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := violation(tt.top, tt.dep) != ""; got != tt.bad {
				t.Errorf("violation(%q, %q) = %v, want %v", tt.top, tt.dep, got, tt.bad)
			}
		})
	}
}
