package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"
)

// This file writes tasks in asynq's own Redis layout so that EnqueueBatch
// can pipeline many enqueues in one round trip (asynq.Client sends one
// script call per task). It follows asynq v0.25.1 (internal/rdb
// enqueueCmd, internal/base keys and the TaskMessage protobuf); the tests
// check that asynq's Inspector and Server read what it writes, so a change
// of asynq's layout fails them.

// asynqAllQueues is asynq's set of queue names.
const asynqAllQueues = "asynq:queues"

// asynqTaskKey and asynqPendingKey are asynq's keys of a task and of a
// queue's pending list; both carry the queue as hash tag, so one enqueue
// stays in one Redis Cluster slot.
func asynqTaskKey(queue, id string) string { return "asynq:{" + queue + "}:t:" + id }
func asynqPendingKey(queue string) string  { return "asynq:{" + queue + "}:pending" }

// asynqEnqueue is asynq's enqueue script: it returns 0 when the task id
// exists (a duplicate), 1 when enqueued.
var asynqEnqueue = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 1 then
	return 0
end
redis.call("HSET", KEYS[1],
           "msg", ARGV[1],
           "state", "pending",
           "pending_since", ARGV[3])
redis.call("LPUSH", KEYS[2], ARGV[2])
return 1
`)

// taskMessage is the part of asynq's TaskMessage an enqueue sets.
type taskMessage struct {
	Type         string
	Payload      []byte
	ID           string
	Queue        string
	Retry        int
	ErrorMsg     string        // the last error (archived tasks show it in the web UI)
	LastFailedAt time.Time     // when ErrorMsg happened
	Timeout      time.Duration // 0: none (then Deadline must be set or asynq's default applies)
	Retention    time.Duration
}

// encode returns the protobuf encoding asynq decodes (field numbers of
// asynq.proto's TaskMessage; zero values are omitted as proto3 does).
func (m taskMessage) encode() []byte {
	b := make([]byte, 0, 64+len(m.Payload)+len(m.ID)+len(m.Type)+len(m.Queue))
	str := func(num protowire.Number, s string) {
		if s != "" {
			b = protowire.AppendTag(b, num, protowire.BytesType)
			b = protowire.AppendString(b, s)
		}
	}
	varint := func(num protowire.Number, v int64) {
		if v != 0 {
			b = protowire.AppendTag(b, num, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(v))
		}
	}
	str(1, m.Type)
	if len(m.Payload) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Payload)
	}
	str(3, m.ID)
	str(4, m.Queue)
	varint(5, int64(m.Retry))
	str(7, m.ErrorMsg)
	varint(8, int64(m.Timeout/time.Second))
	// field 9, deadline: asynq's "no deadline" is UNIX time 0, the zero value.
	if !m.LastFailedAt.IsZero() {
		varint(11, m.LastFailedAt.Unix())
	}
	varint(12, int64(m.Retention/time.Second))
	return b
}

// pipelineEnqueue enqueues msgs in one pipeline and reports for each
// whether it was new (false: a task with its id exists). queues lists the
// queues to register in asynq's set of queues.
func pipelineEnqueue(ctx context.Context, rdb redis.UniversalClient, msgs []taskMessage, now time.Time) ([]bool, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	queues := map[string]bool{}
	cmds := make([]*redis.Cmd, len(msgs))
	nano := now.UnixNano()
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range msgs {
			if !queues[m.Queue] {
				queues[m.Queue] = true
				p.SAdd(ctx, asynqAllQueues, m.Queue)
			}
			cmds[i] = asynqEnqueue.Eval(ctx, p, []string{asynqTaskKey(m.Queue, m.ID), asynqPendingKey(m.Queue)}, m.encode(), m.ID, nano)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: enqueue batch: %w", err)
	}
	out := make([]bool, len(msgs))
	for i, c := range cmds {
		n, err := c.Int()
		if err != nil {
			return nil, fmt.Errorf("queue: enqueue batch: %w", err)
		}
		out[i] = n == 1
	}
	return out, nil
}

// asynqArchivedKey is asynq's sorted set of a queue's archived tasks.
func asynqArchivedKey(queue string) string { return "asynq:{" + queue + "}:archived" }

// asynqAddArchived writes a task straight into a queue's archive (as
// asynq's archive does, without its trimming): it returns 0 when the id
// exists.
var asynqAddArchived = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 1 then
	return 0
end
redis.call("HSET", KEYS[1], "msg", ARGV[1], "state", "archived")
redis.call("ZADD", KEYS[2], ARGV[2], ARGV[3])
return 1
`)

// addArchived writes m as an archived task of its queue, where the web UI
// lists it with its ErrorMsg and offers to run or delete it. It reports
// whether the task was new.
func addArchived(ctx context.Context, rdb redis.UniversalClient, m taskMessage, now time.Time) (bool, error) {
	if err := rdb.SAdd(ctx, asynqAllQueues, m.Queue).Err(); err != nil {
		return false, fmt.Errorf("queue: archive: %w", err)
	}
	n, err := asynqAddArchived.Run(ctx, rdb, []string{asynqTaskKey(m.Queue, m.ID), asynqArchivedKey(m.Queue)}, m.encode(), now.Unix(), m.ID).Int()
	if err != nil {
		return false, fmt.Errorf("queue: archive: %w", err)
	}
	return n == 1, nil
}
