package feedback

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sent returns the key of the record that message id was accepted by its
// receiver (the idempotency record: a string holding the answer).
func (k Keys) Sent(id string) string { return k.prefix() + ":sent:" + id }

// PreSend reads in one round trip what a worker must know before it sends
// message id to addr: whether addr is suppressed, and whether the message
// was already accepted (a worker that died after the receiver's 250 and
// before asynq heard of it) with that answer.
func (s *Suppressions) PreSend(ctx context.Context, addr, id string) (suppressed, sent bool, answer string, err error) {
	var res func() (bool, bool, string, error)
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		res = s.PreSendIn(ctx, p, addr, id)
		return nil
	})
	return res()
}

// PreSendIn queues PreSend's reads on p (a pipeline shared with other
// work, so that several workers' reads take one round trip) and returns
// the function that gives PreSend's answer once p has run.
func (s *Suppressions) PreSendIn(ctx context.Context, p redis.Pipeliner, addr, id string) func() (suppressed, sent bool, answer string, err error) {
	sup := p.HExists(ctx, s.keys.Suppressed(), normalizeAddress(addr))
	// MGET of the one key, not GET: a missing record (the usual case) is
	// then a nil in the reply rather than a redis.Nil error, which the
	// client would classify at some cost on every message.
	ans := p.MGet(ctx, s.keys.Sent(id))
	return func() (bool, bool, string, error) {
		if err := sup.Err(); err != nil {
			return false, false, "", fmt.Errorf("feedback: before sending: %w", err)
		}
		vals, err := ans.Result()
		if err != nil {
			return false, false, "", fmt.Errorf("feedback: before sending: %w", err)
		}
		if len(vals) != 1 || vals[0] == nil {
			return sup.Val(), false, "", nil
		}
		answer, ok := vals[0].(string)
		if !ok {
			return false, false, "", fmt.Errorf("feedback: before sending: sent record of %s is %T", id, vals[0])
		}
		return sup.Val(), true, answer, nil
	}
}

// MarkSent records that message id was accepted with answer, for ttl (the
// queue's retention: as long as the message id is refused as a duplicate).
func (s *Suppressions) MarkSent(ctx context.Context, id, answer string, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.keys.Sent(id), answer, ttl).Err(); err != nil {
		return fmt.Errorf("feedback: record the delivery of a message: %w", err)
	}
	return nil
}

// MarkSentIn queues MarkSent's write on p (a pipeline shared with other
// writes: the sent record, the task's result, other workers' records) and
// returns the function that gives MarkSent's error once p has run.
func (s *Suppressions) MarkSentIn(ctx context.Context, p redis.Pipeliner, id, answer string, ttl time.Duration) func() error {
	set := p.Set(ctx, s.keys.Sent(id), answer, ttl)
	return func() error {
		if err := set.Err(); err != nil {
			return fmt.Errorf("feedback: record the delivery of a message: %w", err)
		}
		return nil
	}
}

// In returns the list with its commands queued on p instead of sent: its
// methods (and SentRecords()) then write into p, and their results come
// with p's. For folding writes into one round trip.
func (s *Suppressions) In(p redis.Pipeliner) *Suppressions {
	return &Suppressions{rdb: p, keys: s.keys}
}

// Pipeline returns a new pipeline on the list's Redis.
func (s *Suppressions) Pipeline() redis.Pipeliner { return s.rdb.Pipeline() }
