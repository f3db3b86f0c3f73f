package feedback

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/policy/redistest"
)

func TestSuppressedKey(t *testing.T) {
	if got := (Keys{Prefix: "acme"}).Suppressed(); got != "acme:suppressed" {
		t.Errorf("Suppressed() = %q, want acme:suppressed", got)
	}
}

func TestSuppressions(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	ctx := context.Background()
	s := NewSuppressions(rdb, Keys{Prefix: prefix})
	at := time.Date(2018, 5, 8, 10, 0, 0, 0, time.UTC)
	why := Suppression{Class: bounces.ClassInvalidRecipient, Code: 550, Answer: "550 5.1.1 user unknown", Campaign: "may", Time: at}
	if err := s.Add(ctx, "Jan@Azet.SK", why); err != nil {
		t.Fatal(err)
	}
	got, err := s.Check(ctx, []string{"jan@azet.sk", "eva@gmail.com", " JAN@azet.sk "})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("Check = %v, want %v", got, want)
	}
	rec, ok, err := s.Get(ctx, "jan@azet.sk")
	if err != nil || !ok || rec != why {
		t.Errorf("Get = %+v, %v, %v; want %+v", rec, ok, err, why)
	}
	var listed []SuppressedAddress
	if err := s.List(ctx, func(e SuppressedAddress) error { listed = append(listed, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].Address != "jan@azet.sk" || listed[0].Suppression != why {
		t.Errorf("List = %+v, want the one record", listed)
	}
	if n, _ := s.Len(ctx); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
	if removed, err := s.Remove(ctx, "jan@azet.sk"); err != nil || !removed {
		t.Errorf("Remove = %v, %v; want true", removed, err)
	}
	if _, ok, _ := s.Get(ctx, "jan@azet.sk"); ok {
		t.Error("Get after Remove: still suppressed")
	}
	if got, err := s.Check(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("Check(nil) = %v, %v", got, err)
	}
}

func TestPreSend(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	ctx := context.Background()
	keys := Keys{Prefix: prefix}
	if got := keys.Sent("m1@shop.example"); got != prefix+":sent:m1@shop.example" {
		t.Errorf("Sent key = %q", got)
	}
	s := NewSuppressions(rdb, keys)
	sup, sent, _, err := s.PreSend(ctx, "jan@azet.sk", "m1@shop.example")
	if err != nil || sup || sent {
		t.Fatalf("PreSend on nothing = %v %v %v", sup, sent, err)
	}
	if err := s.Add(ctx, "jan@azet.sk", Suppression{Code: 550}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSent(ctx, "m1@shop.example", "250 2.0.0 OK", time.Hour); err != nil {
		t.Fatal(err)
	}
	sup, sent, ans, err := s.PreSend(ctx, "JAN@azet.sk", "m1@shop.example")
	if err != nil || !sup || !sent || ans != "250 2.0.0 OK" {
		t.Errorf("PreSend = %v %v %q %v, want suppressed, sent with its answer", sup, sent, ans, err)
	}
	if ttl := rdb.TTL(ctx, keys.Sent("m1@shop.example")).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("sent record TTL = %v, want ≤ 1h", ttl)
	}
}

// TestSuppressionCSVRecord checks the export's row, and that a field a
// spreadsheet would evaluate as a formula is defused.
func TestSuppressionCSVRecord(t *testing.T) {
	at := time.Date(2026, 5, 3, 10, 0, 0, 0, time.FixedZone("CEST", 7200))
	for _, tc := range []struct {
		name string
		in   SuppressedAddress
		want []string
	}{
		{"plain", SuppressedAddress{Address: "a@example.com", Suppression: Suppression{Class: bounces.ClassInvalidRecipient, Code: 550, Answer: "550 5.1.1 no such user", Campaign: "spring", Time: at}},
			[]string{"a@example.com", "invalid_recipient", "550", "2026-05-03T08:00:00Z", "spring", "550 5.1.1 no such user"}},
		{"unknown code and time", SuppressedAddress{Address: "b@example.com"},
			[]string{"b@example.com", "unknown", "", "", "", ""}},
		{"formula in the answer", SuppressedAddress{Address: "c@example.com", Suppression: Suppression{Class: bounces.ClassComplaint, Answer: `=HYPERLINK("http://evil.test","x")`}},
			[]string{"c@example.com", "complaint", "", "", "", `'=HYPERLINK("http://evil.test","x")`}},
		{"every trigger", SuppressedAddress{Address: "-d@example.com", Suppression: Suppression{Campaign: "@SUM(1)", Answer: "+1"}},
			[]string{"'-d@example.com", "unknown", "", "", "'@SUM(1)", "'+1"}},
		{"tab and CR", SuppressedAddress{Address: "e@example.com", Suppression: Suppression{Campaign: "\tx", Answer: "\r=1"}},
			[]string{"e@example.com", "unknown", "", "", "'\tx", "'\r=1"}},
	} {
		if got := tc.in.CSVRecord(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
		if len(SuppressionCSVHeader) != len(tc.want) {
			t.Fatalf("header has %d fields, rows %d", len(SuppressionCSVHeader), len(tc.want))
		}
	}
}
