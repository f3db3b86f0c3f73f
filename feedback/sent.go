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
	var sup *redis.BoolCmd
	var ans *redis.StringCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		sup = p.HExists(ctx, s.keys.Suppressed(), normalizeAddress(addr))
		ans = p.Get(ctx, s.keys.Sent(id))
		return nil
	})
	if err != nil && err != redis.Nil {
		return false, false, "", fmt.Errorf("feedback: before sending: %w", err)
	}
	answer, aerr := ans.Result()
	if aerr != nil && aerr != redis.Nil {
		return false, false, "", fmt.Errorf("feedback: before sending: %w", aerr)
	}
	return sup.Val(), aerr == nil, answer, nil
}

// MarkSent records that message id was accepted with answer, for ttl (the
// queue's retention: as long as the message id is refused as a duplicate).
func (s *Suppressions) MarkSent(ctx context.Context, id, answer string, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.keys.Sent(id), answer, ttl).Err(); err != nil {
		return fmt.Errorf("feedback: record the delivery of a message: %w", err)
	}
	return nil
}
