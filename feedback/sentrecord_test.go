package feedback

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/policy/redistest"
)

func TestSentRecordKeys(t *testing.T) {
	k := Keys{Prefix: "bl"}
	if got, want := k.SentRecord("0f3c9a2e@mail.example.com"), "bl:sent_record:0f3c9a2e@mail.example.com"; got != want {
		t.Errorf("SentRecord = %q, want %q", got, want)
	}
	if got, want := k.Late("00ff"), "bl:late:00ff"; got != want {
		t.Errorf("Late = %q, want %q", got, want)
	}
}

func TestSentRecordKeepGet(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	sr := NewSuppressions(rdb, Keys{Prefix: prefix}).SentRecords()
	ctx := context.Background()
	at := time.Date(2018, 5, 17, 8, 3, 11, 0, time.UTC)
	full := SentRecord{Campaign: "2018-05-newsletter", Recipient: "jan@azet.sk", Domain: "azet.sk", Template: "newsletter",
		Key: "azet", Queue: "azet", Sent: at, Payload: json.RawMessage(`{"id":"a@b.example","to":"jan@azet.sk"}`)}
	tests := []struct {
		name string
		id   string
		rec  SentRecord
		ttl  time.Duration
	}{
		{"with payload", "0f3c9a2e@mail.example.com", full, time.Hour},
		{"small, no payload", "small.0f3c9a2e@mail.example.com", SentRecord{Recipient: "jan@azet.sk", Domain: "azet.sk", Template: "newsletter", Small: true, Sent: at}, time.Minute},
		{"angle brackets are ignored", "<x1@mail.example.com>", SentRecord{Recipient: "eva@gmail.com", Domain: "gmail.com"}, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := sr.Keep(ctx, tt.id, tt.rec, tt.ttl); err != nil {
				t.Fatalf("Keep(%q) = %v", tt.id, err)
			}
			got, ok, err := sr.Get(ctx, NormalizeMessageID(tt.id))
			if err != nil || !ok {
				t.Fatalf("Get(%q) = %v, %v", tt.id, ok, err)
			}
			if !reflect.DeepEqual(got, tt.rec) {
				t.Errorf("Get(%q) = %+v, want %+v", tt.id, got, tt.rec)
			}
			if ttl := rdb.TTL(ctx, Keys{Prefix: prefix}.SentRecord(NormalizeMessageID(tt.id))).Val(); ttl <= 0 || ttl > tt.ttl {
				t.Errorf("TTL of %q = %v, want (0, %v]", tt.id, ttl, tt.ttl)
			}
		})
	}
	if _, ok, err := sr.Get(ctx, "nobody@mail.example.com"); ok || err != nil {
		t.Errorf("Get(unknown) = %v, %v, want false, nil", ok, err)
	}
	if err := sr.Keep(ctx, "a@b", full, 0); !errors.Is(err, ErrBadTTL) {
		t.Errorf("Keep with ttl 0 = %v, want ErrBadTTL", err)
	}
	// The stored form is compact: a record without payload stays small.
	b, _ := json.Marshal(SentRecord{Campaign: "2018-05-newsletter", Recipient: "jan.novak@azet.sk", Domain: "azet.sk", Template: "notice", Key: "azet", Queue: "azet", Sent: at})
	if len(b) > 120 {
		t.Errorf("a record without payload is %d bytes (%s), want at most 120", len(b), b)
	}
}

func TestClaim(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	keys := Keys{Prefix: prefix}
	sr := NewSentRecords(rdb, keys)
	ctx := context.Background()
	at := time.Date(2018, 5, 17, 8, 3, 11, 0, time.UTC)
	if err := sr.Keep(ctx, "m1@mail.example.com", SentRecord{Recipient: "jan@azet.sk", Domain: "azet.sk", Campaign: "c"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	big := bounces.Event{Time: at, MessageID: "<m1@mail.example.com>", Code: 552, Enhanced: "5.3.4", Text: "552 5.3.4 message too big"}
	other := bounces.Event{Time: at, MessageID: "m2@mail.example.com", Recipient: "eva@gmail.com", Code: 550, Enhanced: "5.1.1"}
	// The same event twice in one batch: only the first is new.
	got, err := sr.Claim(ctx, []bounces.Event{big, other, big}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got[0].First || !got[1].First || got[2].First {
		t.Fatalf("Claim = %+v, want first, first, duplicate", got)
	}
	if !got[0].Found || got[0].Record.Recipient != "jan@azet.sk" || got[1].Found {
		t.Errorf("Claim found = %v (%+v), %v, want the record of m1 only", got[0].Found, got[0].Record, got[1].Found)
	}
	if ttl := rdb.TTL(ctx, keys.Late(got[0].Fingerprint)).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("a claim is held %v, want (0, 1m]", ttl)
	}
	// Confirmed: kept for the TTL, still a duplicate.
	if err := sr.Confirm(ctx, []string{got[0].Fingerprint}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.TTL(ctx, keys.Late(got[0].Fingerprint)).Val(); ttl <= time.Minute {
		t.Errorf("a confirmed claim is kept %v, want about 1h", ttl)
	}
	// Released: the next claim is new again.
	if err := sr.Release(ctx, []string{got[1].Fingerprint}); err != nil {
		t.Fatal(err)
	}
	again, err := sr.Claim(ctx, []bounces.Event{big, other}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].First || !again[1].First {
		t.Errorf("Claim after confirm and release = %+v, want duplicate, first", again)
	}
	if _, err := sr.Claim(ctx, []bounces.Event{big}, 0); !errors.Is(err, ErrBadTTL) {
		t.Errorf("Claim with hold 0 = %v, want ErrBadTTL", err)
	}
}

func TestLateFingerprint(t *testing.T) {
	at := time.Date(2018, 5, 17, 8, 3, 11, 0, time.UTC)
	base := bounces.Event{Time: at, MessageID: "m1@mail.example.com", Recipient: "jan@azet.sk", Domain: "azet.sk", Code: 550, Enhanced: "5.1.1", Text: "550 5.1.1 User unknown", Source: bounces.SourceDSN}
	with := func(f func(*bounces.Event)) bounces.Event { e := base; f(&e); return e }
	noID := with(func(e *bounces.Event) { e.MessageID = "" })
	tests := []struct {
		name string
		a, b bounces.Event
		same bool
	}{
		{"identical", base, base, true},
		{"another time, same message", base, with(func(e *bounces.Event) { e.Time = at.Add(time.Hour) }), true},
		{"another source, same answer", base, with(func(e *bounces.Event) { e.Source = bounces.SourceWebhook }), true},
		{"angle brackets and case of the address", base, with(func(e *bounces.Event) { e.MessageID = "<m1@mail.example.com>"; e.Recipient = "Jan@Azet.SK" }), true},
		{"another campaign field only", base, with(func(e *bounces.Event) { e.Campaign = "x" }), true},
		{"another message", base, with(func(e *bounces.Event) { e.MessageID = "m2@mail.example.com" }), false},
		{"another recipient of the message", base, with(func(e *bounces.Event) { e.Recipient = "eva@azet.sk" }), false},
		{"another code", base, with(func(e *bounces.Event) { e.Code = 552 }), false},
		{"another enhanced code", base, with(func(e *bounces.Event) { e.Enhanced = "5.1.2" }), false},
		{"another text", base, with(func(e *bounces.Event) { e.Text = "550 5.1.1 No such user" }), false},
		{"a complaint is not a bounce", base, with(func(e *bounces.Event) { e.Source = bounces.SourceARF }), false},
		{"no message id: the same time is a replay", noID, noID, true},
		{"no message id: another time is another bounce", noID, with(func(e *bounces.Event) { e.MessageID = ""; e.Time = at.Add(24 * time.Hour) }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa, fb := LateFingerprint(tt.a), LateFingerprint(tt.b)
			if len(fa) != 32 {
				t.Errorf("LateFingerprint(%+v) = %q, want 32 hex digits", tt.a, fa)
			}
			if (fa == fb) != tt.same {
				t.Errorf("LateFingerprint(%+v) = %s, LateFingerprint(%+v) = %s, want equal %v", tt.a, fa, tt.b, fb, tt.same)
			}
		})
	}
}
