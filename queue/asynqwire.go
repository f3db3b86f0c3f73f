package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"
)

// This file writes tasks in asynq's own Redis layout so that EnqueueBatch
// can enqueue a whole batch in one round trip (asynq.Client sends one
// script call per task). It follows asynq v0.25.1 (internal/rdb
// enqueueCmd, done in one script per queue here; internal/base keys; the
// TaskMessage protobuf); the tests check that asynq's Inspector and Server
// read what it writes, so a change of asynq's layout fails them.

// asynqAllQueues is asynq's set of queue names.
const asynqAllQueues = "asynq:queues"

// asynqTaskKey and asynqPendingKey are asynq's keys of a task and of a
// queue's pending list; both carry the queue as hash tag, so one enqueue
// stays in one Redis Cluster slot.
func asynqTaskKey(queue, id string) string { return "asynq:{" + queue + "}:t:" + id }
func asynqPendingKey(queue string) string  { return "asynq:{" + queue + "}:pending" }

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

// asynqEnqueueMany is asynqEnqueue for many tasks of one queue in one
// call: KEYS[1] is the queue's pending list, KEYS[2..] the tasks' keys
// (all in the queue's hash slot); ARGV[1] the time, then per task its
// encoded message and id. It returns one 1 (enqueued) or 0 (duplicate)
// per task.
var asynqEnqueueMany = redis.NewScript(`
local out = {}
for i = 2, #KEYS do
	local msg, id = ARGV[2*i-2], ARGV[2*i-1]
	if redis.call("EXISTS", KEYS[i]) == 1 then
		out[#out+1] = 0
	else
		redis.call("HSET", KEYS[i], "msg", msg, "state", "pending", "pending_since", ARGV[1])
		redis.call("LPUSH", KEYS[1], id)
		out[#out+1] = 1
	end
end
return out
`)

// pipelineEnqueue enqueues msgs in one pipeline holding one script call
// per queue (asynq's own Client makes one call per task), and reports for
// each whether it was new (false: a task with its id exists).
func pipelineEnqueue(ctx context.Context, rdb redis.UniversalClient, msgs []taskMessage, now time.Time) ([]bool, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	type group struct {
		idx  []int
		keys []string
		args []any
	}
	var order []string
	groups := map[string]*group{}
	nano := now.UnixNano()
	for i, m := range msgs {
		g := groups[m.Queue]
		if g == nil {
			g = &group{keys: []string{asynqPendingKey(m.Queue)}, args: []any{nano}}
			groups[m.Queue] = g
			order = append(order, m.Queue)
		}
		g.idx = append(g.idx, i)
		g.keys = append(g.keys, asynqTaskKey(m.Queue, m.ID))
		g.args = append(g.args, m.encode(), m.ID)
	}
	cmds := make([]*redis.Cmd, len(order))
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, q := range order {
			p.SAdd(ctx, asynqAllQueues, q)
			cmds[i] = asynqEnqueueMany.Eval(ctx, p, groups[q].keys, groups[q].args...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: enqueue batch: %w", err)
	}
	out := make([]bool, len(msgs))
	for i, q := range order {
		res, err := cmds[i].Int64Slice()
		if err != nil || len(res) != len(groups[q].idx) {
			return nil, fmt.Errorf("queue: enqueue batch: queue %s: %d answers for %d tasks: %v", q, len(res), len(groups[q].idx), err)
		}
		for j, k := range groups[q].idx {
			out[k] = res[j] == 1
		}
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
