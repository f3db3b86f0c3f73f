package feedback

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bounceloop/bounceloop/bounces"
)

// Sent records and later bounces in Redis:
//
//	<prefix>:sent_record:<message id>  string, a SentRecord (compact JSON);
//	                                   expires after the queue's sent_record_ttl
//	<prefix>:late:<fingerprint>        string "1": a later bounce with that
//	                                   LateFingerprint was applied; same TTL
//
// Neither key name holds an address: the message id is ours, the
// fingerprint a hash.

// SentRecord returns the key of the sent record of message id.
func (k Keys) SentRecord(id string) string { return k.prefix() + ":sent_record:" + id }

// Late returns the key that says a later bounce with fingerprint (see
// LateFingerprint) was applied.
func (k Keys) Late(fingerprint string) string { return k.prefix() + ":late:" + fingerprint }

// SentRecord is what a later bounce of an accepted message needs to act
// as the send path would: who it went to, in which campaign, with which
// template and rate key, and, when a smaller resend is possible, the
// message itself. It is kept for the queue's sent_record_ttl, which may
// outlive asynq's retention of the completed task: a late resend does not
// need the task.
type SentRecord struct {
	Campaign  string
	Recipient string
	Domain    string // the normalised recipient domain
	Template  string
	Small     bool   // the small variant was sent
	Key       string // the rate key (provider or domain) it was sent under
	Queue     string // the asynq queue it was sent from
	Sent      time.Time
	// Payload is the send task's payload (JSON) when its template has a
	// small variant and the full one was sent (a message_too_large can
	// then be resent small); nil otherwise, which keeps most records
	// small.
	Payload json.RawMessage
}

// sentRecordWire is the stored form of a SentRecord: short names, empty
// fields left out, the time in UNIX seconds.
type sentRecordWire struct {
	C string          `json:"c,omitempty"`
	R string          `json:"r,omitempty"`
	D string          `json:"d,omitempty"`
	T string          `json:"t,omitempty"`
	S bool            `json:"s,omitempty"`
	K string          `json:"k,omitempty"`
	Q string          `json:"q,omitempty"`
	A int64           `json:"a,omitempty"`
	P json.RawMessage `json:"p,omitempty"`
}

// MarshalJSON implements json.Marshaler with the compact stored form.
func (r SentRecord) MarshalJSON() ([]byte, error) {
	w := sentRecordWire{C: r.Campaign, R: r.Recipient, D: r.Domain, T: r.Template, S: r.Small, K: r.Key, Q: r.Queue, P: r.Payload}
	if !r.Sent.IsZero() {
		w.A = r.Sent.Unix()
	}
	return json.Marshal(w)
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *SentRecord) UnmarshalJSON(b []byte) error {
	var w sentRecordWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = SentRecord{Campaign: w.C, Recipient: w.R, Domain: w.D, Template: w.T, Small: w.S, Key: w.K, Queue: w.Q, Payload: w.P}
	if w.A != 0 {
		r.Sent = time.Unix(w.A, 0).UTC()
	}
	return nil
}

// SentRecords are the sent records of accepted messages and the
// fingerprints of the later bounces applied, in Redis, shared by every
// process. Safe for concurrent use.
type SentRecords struct {
	rdb  redis.Cmdable
	keys Keys
}

// NewSentRecords returns the records kept under keys in rdb.
func NewSentRecords(rdb redis.Cmdable, keys Keys) *SentRecords {
	return &SentRecords{rdb: rdb, keys: keys}
}

// SentRecords returns the sent records kept beside the list (same Redis,
// same prefix).
func (s *Suppressions) SentRecords() *SentRecords {
	return &SentRecords{rdb: s.rdb, keys: s.keys}
}

// ErrBadTTL is returned (wrapped) for a TTL that is not positive.
var ErrBadTTL = errors.New("feedback: the TTL must be > 0")

// Keep writes the record of message id for ttl; a later Keep replaces it.
func (s *SentRecords) Keep(ctx context.Context, id string, rec SentRecord, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("feedback: keep a sent record: %w", ErrBadTTL)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("feedback: keep a sent record: %w", err)
	}
	if err := s.rdb.Set(ctx, s.keys.SentRecord(NormalizeMessageID(id)), b, ttl).Err(); err != nil {
		return fmt.Errorf("feedback: keep a sent record: %w", err)
	}
	return nil
}

// Get returns the record of message id and whether there is one.
func (s *SentRecords) Get(ctx context.Context, id string) (SentRecord, bool, error) {
	v, err := s.rdb.Get(ctx, s.keys.SentRecord(NormalizeMessageID(id))).Bytes()
	if err == redis.Nil {
		return SentRecord{}, false, nil
	}
	if err != nil {
		return SentRecord{}, false, fmt.Errorf("feedback: get a sent record: %w", err)
	}
	var rec SentRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return SentRecord{}, false, fmt.Errorf("feedback: sent record of %q: %w", id, err)
	}
	return rec, true, nil
}

// LateMatch is what Claim found for one later bounce.
type LateMatch struct {
	// Fingerprint is the event's LateFingerprint, for Confirm and Release.
	Fingerprint string
	// First is true when this call claimed the fingerprint: no event with
	// it was applied within the TTL, nor is being applied. False means a
	// duplicate: leave it alone.
	First bool
	// Record is the sent record of the event's message id, when Found.
	Record SentRecord
	Found  bool
}

// Claim looks up the sent records of the events' message ids and claims
// their fingerprints (SET NX, held for hold), in one round trip. Apply
// the events whose match is First, then Confirm them; Release those that
// could not be applied. A claim neither confirmed nor released (the
// process died, Redis failed) lapses after hold, so that a retry is not
// taken for a duplicate for longer than that.
//
// A sent record that cannot be read counts as not found.
func (s *SentRecords) Claim(ctx context.Context, events []bounces.Event, hold time.Duration) ([]LateMatch, error) {
	if hold <= 0 {
		return nil, fmt.Errorf("feedback: claim later bounces: %w", ErrBadTTL)
	}
	out := make([]LateMatch, len(events))
	if len(events) == 0 {
		return out, nil
	}
	recs := make([]*redis.StringCmd, len(events))
	claims := make([]*redis.BoolCmd, len(events))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, e := range events {
			out[i].Fingerprint = LateFingerprint(e)
			if id := NormalizeMessageID(e.MessageID); id != "" {
				recs[i] = p.Get(ctx, s.keys.SentRecord(id))
			}
			claims[i] = p.SetNX(ctx, s.keys.Late(out[i].Fingerprint), "1", hold)
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("feedback: claim later bounces: %w", err)
	}
	for i := range events {
		first, err := claims[i].Result()
		if err != nil {
			return nil, fmt.Errorf("feedback: claim later bounces: %w", err)
		}
		out[i].First = first
		if recs[i] == nil {
			continue
		}
		b, err := recs[i].Bytes()
		switch {
		case err == redis.Nil:
		case err != nil:
			return nil, fmt.Errorf("feedback: claim later bounces: %w", err)
		default:
			out[i].Found = json.Unmarshal(b, &out[i].Record) == nil
		}
	}
	return out, nil
}

// Confirm keeps the claims of applied events (their fingerprints) for
// ttl, so that a duplicate within ttl acts no more.
func (s *SentRecords) Confirm(ctx context.Context, fingerprints []string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("feedback: confirm later bounces: %w", ErrBadTTL)
	}
	if len(fingerprints) == 0 {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, f := range fingerprints {
			p.Set(ctx, s.keys.Late(f), "1", ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("feedback: confirm later bounces: %w", err)
	}
	return nil
}

// Release forgets the claims of events that were not applied, so that a
// retry applies them.
func (s *SentRecords) Release(ctx context.Context, fingerprints []string) error {
	if len(fingerprints) == 0 {
		return nil
	}
	keys := make([]string, len(fingerprints))
	for i, f := range fingerprints {
		keys[i] = s.keys.Late(f)
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, k) // one key per command: Redis Cluster slots differ
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("feedback: release later bounces: %w", err)
	}
	return nil
}

// LateFingerprint returns the fingerprint that makes two later bounces
// duplicates: the same message and recipient, the same kind (an ARF
// complaint or a bounce) and the same answer (basic code, enhanced code,
// text). The message id and the recipient are compared as the records
// compare them (no angle brackets; lower-cased address).
//
// An event without a message id (an MTA log line, a webhook event that
// names none) adds its time: without it every later bounce of the same
// answer for the same recipient, in another campaign, would be taken for
// a duplicate. A replayed file or batch repeats the times, so it is still
// recognised. An event with neither a message id nor a recipient (a
// redacted complaint) adds its domain.
//
// The fingerprint is 32 hex digits (128 bits of SHA-256).
func LateFingerprint(e bounces.Event) string {
	id := NormalizeMessageID(e.MessageID)
	rcpt := normalizeAddress(e.Recipient)
	kind := "bounce"
	if e.Source == bounces.SourceARF {
		kind = "arf"
	}
	parts := []string{id, rcpt, kind, strconv.Itoa(e.Code), strings.TrimSpace(e.Enhanced), strings.TrimSpace(e.Text)}
	if id == "" {
		parts = append(parts, strconv.FormatInt(e.Time.UnixNano(), 10))
		if rcpt == "" {
			parts = append(parts, e.Domain)
		}
	}
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// NormalizeMessageID returns a message id as the records key it: without
// surrounding space and angle brackets.
func NormalizeMessageID(id string) string {
	id = strings.TrimSpace(id)
	if len(id) >= 2 && id[0] == '<' && id[len(id)-1] == '>' {
		id = strings.TrimSpace(id[1 : len(id)-1])
	}
	return id
}
