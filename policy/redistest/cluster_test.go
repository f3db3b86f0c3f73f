package redistest

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

// TestClusterSlot starts a cluster, checks that Slot agrees with CLUSTER
// KEYSLOT, and that a multi-key command over two slots is refused as the
// SameSlot hook predicts.
func TestClusterSlot(t *testing.T) {
	rdb, addrs := ClusterClient(t)
	if len(addrs) != 3 {
		t.Fatalf("ClusterAddrs = %v, want 3 addresses", addrs)
	}
	ctx := context.Background()
	keys := []string{"", "a", "foo", "bounceloop:rate:provider:google", "asynq:{default}:pending",
		"x{}y", "{}", "a{b}c{d}", "{user1000}.following", "bounceloop:outcomes:{google}:flagged", "caf\xc3\xa9"}
	for i := 0; i < 50; i++ {
		keys = append(keys, fmt.Sprintf("bounceloop:sent:%d@mail.example.com", i))
	}
	for _, k := range keys {
		want, err := rdb.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := Slot(k); int64(got) != want {
			t.Errorf("Slot(%q) = %d, want %d (CLUSTER KEYSLOT)", k, got, want)
		}
	}
	// Two keys of different slots: a cluster refuses them in one command.
	a, b := "a", "b"
	if Slot(a) == Slot(b) {
		t.Fatal("test keys share a slot")
	}
	if err := rdb.Eval(ctx, "return 1", []string{a, b}).Err(); err == nil {
		t.Errorf("EVAL over slots %d and %d: no error, want CROSSSLOT", Slot(a), Slot(b))
	}
	if err := rdb.Eval(ctx, "return 1", []string{"{t}a", "{t}b"}).Err(); err != nil {
		t.Errorf("EVAL over one hash tag: %v", err)
	}
}

// TestCommandKeys pins the keys found in commands.
func TestCommandKeys(t *testing.T) {
	tests := []struct {
		name string
		args []any
		want []string
	}{
		{"eval", []any{"eval", "return 1", 2, "k1", "k2", "arg"}, []string{"k1", "k2"}},
		{"evalsha no keys", []any{"evalsha", "abc", 0, "arg"}, []string{}},
		{"del", []any{"del", "a", "b"}, []string{"a", "b"}},
		{"mset", []any{"mset", "a", 1, "b", 2}, []string{"a", "b"}},
		{"rename", []any{"rename", "a", "b"}, []string{"a", "b"}},
		{"zunionstore", []any{"zunionstore", "d", 2, "a", "b", "weights", 1, 1}, []string{"d", "a", "b"}},
		{"get", []any{"get", "a"}, []string{"a"}},
		{"ping", []any{"ping", "x"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CommandKeys(tt.args)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("CommandKeys(%v) = %q, want %q", tt.args, got, tt.want)
			}
		})
	}
}

// fakeTB records Errorf calls.
type fakeTB struct {
	testing.TB
	errs []string
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

// TestSameSlot checks the hook on a single server: a script or a
// transaction over two slots is reported, one over a hash tag is not.
func TestSameSlot(t *testing.T) {
	_, prefix := Client(t)                                // for the prefix and its clean-up
	rdb := redis.NewClient(&redis.Options{Addr: Addr(t)}) // without the hook of REDISTEST_SAME_SLOT
	defer rdb.Close()
	ctx := context.Background()
	f := &fakeTB{TB: t}
	rdb.AddHook(SameSlot(f))
	a, b := prefix+":{x}a", prefix+":{x}b"
	if err := rdb.Eval(ctx, "return 1", []string{a, b}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, a, 1, 0)
		p.Incr(ctx, b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error { // a plain pipeline may span slots
		p.Set(ctx, prefix+":p1", 1, 0)
		p.Set(ctx, prefix+":p2", 1, 0)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(f.errs) != 0 {
		t.Errorf("one hash tag reported: %v", f.errs)
	}
	c, d := prefix+":a", prefix+":b"
	for i := 0; Slot(c) == Slot(d); i++ {
		d = fmt.Sprintf("%s:b%d", prefix, i)
	}
	if err := rdb.Eval(ctx, "return 1", []string{c, d}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, c, 1, 0)
		p.Set(ctx, d, 1, 0)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(f.errs) != 2 {
		t.Errorf("a script and a transaction over two slots: %d reports, want 2: %v", len(f.errs), f.errs)
	}
}
