package queue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/bounceloop/bounceloop/policy/redistest"
)

func TestAsynqKeys(t *testing.T) {
	if got := asynqTaskKey("google", "a@b"); got != "asynq:{google}:t:a@b" {
		t.Errorf("asynqTaskKey = %q", got)
	}
	if got := asynqPendingKey("google"); got != "asynq:{google}:pending" {
		t.Errorf("asynqPendingKey = %q", got)
	}
}

// TestPipelineEnqueueIsAsynq writes tasks with pipelineEnqueue and checks
// that asynq's Inspector reads them as its own, that a duplicate id is
// refused both ways, and that an asynq server processes them.
func TestPipelineEnqueueIsAsynq(t *testing.T) {
	rdb := redistest.DB(t)
	ctx := context.Background()
	msgs := []taskMessage{
		{Type: TypeSend, Payload: []byte(`{"id":"1@x.test"}`), ID: "1@x.test", Queue: "google", Retry: 7, Timeout: 5 * time.Minute, Retention: time.Hour},
		{Type: TypeSend, Payload: []byte(`{"id":"2@x.test"}`), ID: "2@x.test", Queue: "google", Retry: 7, Timeout: 5 * time.Minute, Retention: time.Hour},
		{Type: TypeSend, Payload: []byte(`{"id":"3@x.test"}`), ID: "3@x.test", Queue: "default", Retry: 0, Timeout: time.Minute},
	}
	created, err := pipelineEnqueue(ctx, rdb, msgs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range created {
		if !c {
			t.Errorf("task %d not created", i)
		}
	}
	again, err := pipelineEnqueue(ctx, rdb, msgs[:1], time.Now())
	if err != nil || again[0] {
		t.Errorf("enqueue of an existing id = %v, %v; want a duplicate", again, err)
	}
	client := asynq.NewClientFromRedisClient(rdb)
	if _, err := client.Enqueue(asynq.NewTask(TypeSend, nil), asynq.TaskID("2@x.test"), asynq.Queue("google")); !errors.Is(err, asynq.ErrTaskIDConflict) {
		t.Errorf("asynq Enqueue of a pipelined id = %v, want ErrTaskIDConflict", err)
	}

	insp := asynq.NewInspectorFromRedisClient(rdb)
	info, err := insp.GetTaskInfo("google", "1@x.test")
	if err != nil {
		t.Fatalf("GetTaskInfo: %v", err)
	}
	if info.Type != TypeSend || string(info.Payload) != `{"id":"1@x.test"}` || info.State != asynq.TaskStatePending ||
		info.MaxRetry != 7 || info.Timeout != 5*time.Minute || info.Retention != time.Hour || info.Queue != "google" {
		t.Errorf("GetTaskInfo = %+v, want the pipelined task", info)
	}
	qs, err := insp.Queues()
	if err != nil || len(qs) != 2 {
		t.Errorf("Queues() = %v, %v, want google and default", qs, err)
	}

	var mu sync.Mutex
	seen := map[string]bool{}
	done := make(chan struct{})
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 2, Queues: map[string]int{"google": 1, "default": 1}, LogLevel: asynq.FatalLevel})
	err = srv.Start(asynq.HandlerFunc(func(ctx context.Context, tk *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		mu.Lock()
		seen[id] = true
		if len(seen) == 3 {
			close(done)
		}
		mu.Unlock()
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Errorf("asynq processed %v, want all three tasks", seen)
	}
	srv.Shutdown()
	_ = client.Close()
	_ = insp.Close()
}

func TestTaskMessageEncodeOmitsZero(t *testing.T) {
	b := taskMessage{Type: "t", ID: "i", Queue: "q"}.encode()
	want := []byte{0x0a, 1, 't', 0x1a, 1, 'i', 0x22, 1, 'q'}
	if string(b) != string(want) {
		t.Errorf("encode() = %x, want %x", b, want)
	}
}

// TestAddArchivedIsAsynq writes an archived task the way review flags do
// and checks that asynq lists it with its error and can run it.
func TestAddArchivedIsAsynq(t *testing.T) {
	rdb := redistest.DB(t)
	ctx := context.Background()
	now := time.Now()
	m := taskMessage{Type: TypeSend, Payload: []byte(`{"id":"r@x.test"}`), ID: "review.r@x.test", Queue: "review",
		ErrorMsg: "554 5.7.1 Message rejected as spam (spam_blocked, rule x)", LastFailedAt: now, Timeout: time.Minute}
	created, err := addArchived(ctx, rdb, m, now)
	if err != nil || !created {
		t.Fatalf("addArchived = %v, %v", created, err)
	}
	if again, err := addArchived(ctx, rdb, m, now); err != nil || again {
		t.Errorf("addArchived of an existing id = %v, %v; want false", again, err)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	defer insp.Close()
	tasks, err := insp.ListArchivedTasks("review")
	if err != nil || len(tasks) != 1 {
		t.Fatalf("ListArchivedTasks = %v, %v", tasks, err)
	}
	if tasks[0].ID != m.ID || tasks[0].LastErr != m.ErrorMsg || tasks[0].LastFailedAt.Unix() != now.Unix() {
		t.Errorf("archived task = %+v, want id %s with error %q", tasks[0], m.ID, m.ErrorMsg)
	}
	if err := insp.RunTask("review", m.ID); err != nil {
		t.Errorf("RunTask: %v", err)
	}
	info, err := insp.GetTaskInfo("review", m.ID)
	if err != nil || info.State != asynq.TaskStatePending {
		t.Errorf("after RunTask: %+v, %v; want pending", info, err)
	}
}
