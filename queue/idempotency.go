package queue

import (
	"context"
	"time"

	"github.com/rs/zerolog"
)

// markSentAgain completes the write of a delivered message's idempotency
// record (feedback's <prefix>:sent:<id>) when its first try failed with
// err: Redis was away at the very moment the receiver said 250. It writes
// the record again, waiting 0.1 s, then twice as long each time up to 2 s,
// until it is written or ctx ends, and returns nil or the last error.
//
// Without the record, the task's own acknowledgement (which asynq writes
// after the handler returns, to the same Redis) is lost as well, and asynq
// runs the task again once its lease lapses: the message would be sent
// twice. asynq ends ctx when the task's lease lapses (about 30 s after its
// last extension, which needs Redis too), so a worker waits at most that
// long; a Redis outage shorter than that sends nothing twice.
func (h *Handler) markSentAgain(ctx context.Context, id, answer string, err error) error {
	if err == nil {
		return nil
	}
	zerolog.Ctx(ctx).Warn().Err(err).Msg("delivered; writing the delivery record again until Redis answers")
	for wait := 100 * time.Millisecond; err != nil; wait = min(2*wait, 2*time.Second) {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		err = h.Suppressions.MarkSent(ctx, id, answer, h.Config.Retention.D())
	}
	zerolog.Ctx(ctx).Warn().Msg("delivered; the delivery record is written now")
	return nil
}
