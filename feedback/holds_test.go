package feedback

import (
	"context"
	"testing"
	"time"
)

// TestHolds checks that a hold set by one process applies in another
// within holdsRefresh, that a shorter hold does not shorten a longer one,
// that domain and recipient holds are separate, and that holds end.
func TestHolds(t *testing.T) {
	a, rdb, keys, clk := setupLoop(t)
	b := NewLoop(rdb, keys, clk.Now)
	ctx := context.Background()
	now := clk.Now()

	if _, ok, err := b.HeldUntil(ctx, "example.org", "x@example.org"); err != nil || ok {
		t.Fatalf("held before any hold: %v %v", ok, err)
	}
	long := Hold{Rule: "r1", Reason: "421 4.7.0 try later", Since: now, Until: now.Add(30 * time.Minute)}
	if err := a.SetHold(ctx, HoldDomain("Example.ORG"), long); err != nil {
		t.Fatal(err)
	}
	// b read the (empty) holds just now: it sees the hold after the refresh.
	clk.Advance(holdsRefresh)
	h, ok, err := b.HeldUntil(ctx, "example.org", "y@example.org")
	if err != nil || !ok || !h.Until.Equal(long.Until) || h.Rule != "r1" {
		t.Fatalf("b: held %v until %v (%v), want r1's hold", ok, h.Until, err)
	}
	if _, ok, _ := b.HeldUntil(ctx, "example.net", "y@example.net"); ok {
		t.Error("another domain is held")
	}
	// A shorter hold of the same domain keeps the longer one.
	if err := a.SetHold(ctx, HoldDomain("example.org"), Hold{Rule: "r2", Since: now, Until: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(holdsRefresh)
	if h, _, _ := b.HeldUntil(ctx, "example.org", ""); h.Rule != "r1" {
		t.Errorf("a shorter hold replaced a longer one: %+v", h)
	}
	// A recipient hold holds only that recipient.
	if err := a.SetHold(ctx, HoldRecipient("Jana@Example.NET"), Hold{Rule: "r3", Since: now, Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(holdsRefresh)
	if h, ok, _ := b.HeldUntil(ctx, "example.net", "jana@example.net"); !ok || h.Rule != "r3" {
		t.Errorf("recipient hold: %v %+v", ok, h)
	}
	if _, ok, _ := b.HeldUntil(ctx, "example.net", "other@example.net"); ok {
		t.Error("a recipient hold holds another recipient")
	}
	all, err := a.Holds(ctx)
	if err != nil || len(all) != 2 {
		t.Errorf("Holds = %v, %v; want 2", all, err)
	}
	// Holds end, and ended holds leave Redis.
	clk.Advance(2 * time.Hour)
	if _, ok, _ := b.HeldUntil(ctx, "example.org", "jana@example.net"); ok {
		t.Error("held after every hold ended")
	}
	if n, err := rdb.HLen(ctx, keys.Holds()).Result(); err != nil || n != 0 {
		t.Errorf("%d ended holds left in Redis (%v)", n, err)
	}
}
