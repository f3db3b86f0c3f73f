package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/policy/redistest"
	"github.com/bounceloop/bounceloop/queue/compose"
	"github.com/bounceloop/bounceloop/queue/sender"
)

// BenchmarkSendPath runs the send handler of a Stack (as TestLoadPipeline
// builds it) on TypeSend tasks, 20 at a time, against Postfix's smtp-sink
// (skipped without it): the CPU the handler costs per message, without
// asynq's dequeue around it. Profile it with -cpuprofile / -memprofile.
func BenchmarkSendPath(b *testing.B) {
	sink, _ := startSink(b)
	rdb := redistest.DB(b)
	const domain = "sink.bounceloop.test"
	pol := policy.Config{Domains: map[string]policy.Settings{domain: {
		Rate: policy.Rate{N: 1e6, Per: time.Second}, MaxConnections: 20, MaxMessagesPerConnection: 1000,
	}}}
	cl, err := bounces.NewClassifier()
	if err != nil {
		b.Fatal(err)
	}
	st, err := NewStack(StackConfig{
		Redis: rdb, KeyPrefix: "bench", Queue: Config{Concurrency: 20}, Web: WebConfig{Listen: "off"}, Policy: pol,
		SMTP:      sender.Config{Mode: sender.ModeMX, Routes: map[string]string{"*": sink}, HeloName: "bounceloop.test"},
		Templates: compose.Default(), Classifier: cl, Resolver: noDNS{},
		Log: zerolog.New(os.Stderr).Level(zerolog.ErrorLevel),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Pool.Close()
	c := NewClient(rdb, ClientOptions{Policy: st.Policy, Templates: compose.Default()})
	run := benchRun.Add(1)
	tasks := make([]*asynq.Task, b.N)
	for i := range tasks {
		p, err := c.prepare(Message{Campaign: "load", ID: fmt.Sprintf("s%d-%d@bench.bounceloop.test", run, i),
			To: fmt.Sprintf("user%d@%s", i, domain), Template: "notice",
			Data: map[string]any{"first_name": fmt.Sprintf("Jana %d", i)}}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		raw, err := json.Marshal(p)
		if err != nil {
			b.Fatal(err)
		}
		tasks[i] = asynq.NewTask(TypeSend, raw)
	}
	var next atomic.Int64
	ctx := context.Background()
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ReportAllocs()
	b.SetParallelism(10) // 20 workers on 2 CPUs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := st.Handler.ProcessTask(ctx, tasks[next.Add(1)-1]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
