package queue

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/queue/compose"
	"github.com/bounceloop/bounceloop/queue/sender"
)

// StackConfig is what a Stack is built from: the decoded config sections
// and the parts built from them.
type StackConfig struct {
	Redis      redis.UniversalClient
	ConnOpt    asynq.RedisConnOpt // the same Redis for the web UI; nil: no UI
	KeyPrefix  string             // prefix of bounceloop's own keys
	Queue      Config
	Web        WebConfig
	Policy     policy.Config // the [policy] section; the built-in provider table is applied under it
	SMTP       sender.Config
	Templates  *compose.Store
	Classifier *bounces.Classifier
	Log        zerolog.Logger
	// RetryDelay replaces RetryDelay (the demo compresses time); nil keeps it.
	RetryDelay asynq.RetryDelayFunc
	// Resolver replaces the DNS MX lookup (tests); nil: net.DefaultResolver.
	Resolver sender.Resolver
	// Webhook is the [webhook] section: POST /bounces.
	Webhook WebhookConfig
	// SingleProcess says no other process shares this Redis (the embedded
	// one): rates are then kept in process, without a Redis call per
	// message.
	SingleProcess bool
}

// LogHashKeyEnv names the environment variable with the key of the hash
// that stands for addresses in logs. Without it each process draws a
// random key, so hashes match only within one process's logs.
const LogHashKeyEnv = "BOUNCELOOP_LOG_HASH_KEY"

// Stack is a whole serve process: the enqueue client, the send handler,
// the asynq server with its web side, the SMTP pool, the counters.
type Stack struct {
	Client       *Client
	Handler      *Handler
	Server       *Server
	Pool         *sender.Pool
	Recorder     *feedback.Recorder
	Suppressions *feedback.Suppressions
	Metrics      *Metrics
	Loop         *feedback.Loop
	Policy       policy.Config // effective (built-ins applied)

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	shutdown sync.Once
}

// NewStack builds a stack; Start runs it.
func NewStack(sc StackConfig) (*Stack, error) {
	q := sc.Queue.WithDefaults()
	web := sc.Web.WithDefaults()
	pol := sc.Policy.WithDefaults()
	if err := pol.Validate(); err != nil {
		return nil, err
	}
	pool, err := sender.NewPool(sc.SMTP, sc.Resolver)
	if err != nil {
		return nil, err
	}
	keys := feedback.Keys{Prefix: sc.KeyPrefix}
	rec := feedback.NewRecorder(sc.Redis, keys)
	sup := feedback.NewSuppressions(sc.Redis, keys)
	metrics := NewMetrics()
	hashKey := []byte(os.Getenv(LogHashKeyEnv))
	if len(hashKey) == 0 {
		hashKey = make([]byte, 32)
		_, _ = rand.Read(hashKey)
	}
	limiter := policy.NewLimiter(sc.Redis, sc.KeyPrefix)
	if sc.SingleProcess {
		limiter = policy.NewLocalLimiter()
	}
	loop := feedback.NewLoop(sc.Redis, keys, nil)
	insp := asynq.NewInspectorFromRedisClient(sc.Redis)
	h := &Handler{
		Config: q, Policy: pol, Limiter: limiter, Templates: sc.Templates,
		Sender: pool, Classifier: sc.Classifier, Recorder: rec, Suppressions: sup, Metrics: metrics,
		Log: sc.Log.With().Str("component", "worker").Logger(), HashKey: hashKey,
		Loop: loop, Inspector: insp, Redis: sc.Redis,
	}
	client := NewClient(sc.Redis, ClientOptions{Config: q, Policy: pol, Templates: sc.Templates, Suppressions: sup, Recorder: rec})
	rates := func() map[string]float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		out := map[string]float64{}
		keys, err := KeyStates(ctx, h.policy(), loop) // the policy in force, reloads included
		if err != nil {
			return out
		}
		for _, k := range keys {
			out[k.Key] = k.Current.PerSecond()
		}
		return out
	}
	queues := pol.Queues()
	queues[policy.ReviewQueue] = 1 // operators run flagged messages from it
	srv := NewServer(ServerOptions{
		Redis: sc.Redis, ConnOpt: sc.ConnOpt, Handler: h, Config: q, Web: web, Queues: queues,
		Log: sc.Log, Metrics: metrics, Rates: rates, RetryDelay: sc.RetryDelay, Webhook: sc.Webhook,
		KeyPrefix: sc.KeyPrefix,
	})
	return &Stack{Client: client, Handler: h, Server: srv, Pool: pool, Recorder: rec, Suppressions: sup, Metrics: metrics, Loop: loop, Policy: pol}, nil
}

// Start starts the workers, the web side and the counter flushing.
func (s *Stack) Start() error {
	if err := s.setupReview(context.Background()); err != nil {
		return fmt.Errorf("queue: set up the review queue: %w", err)
	}
	if err := s.Server.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.Recorder.Run(ctx, time.Second); err != nil && !errors.Is(err, context.Canceled) {
			s.Handler.Log.Warn().Err(err).Msg("last flush of the counters failed")
		}
	}()
	go func() {
		defer s.wg.Done()
		s.resumeSuspended(ctx, resumeInterval)
	}()
	s.wg.Add(1)
	go s.runMonthlyReports(ctx)
	return nil
}

// ReviewPauseReason is the reason noted for the review queue's pause.
const ReviewPauseReason = "flagged messages wait here, archived with their answer: run one in the web UI, then resume review to send it"

// setupReview pauses the review queue the first time a stack starts on
// this Redis (a marker key remembers it, so an operator's resume stands).
// Flagged messages are archived there with their answer; one an operator
// runs moves to pending and is sent when review is resumed (`bounceloop
// domains resume review` or the web UI), so nothing flagged is ever sent
// without two deliberate steps.
func (s *Stack) setupReview(ctx context.Context) error {
	prefix := s.Server.o.KeyPrefix
	if prefix == "" {
		prefix = "bounceloop"
	}
	rdb := s.Server.o.Redis
	first, err := rdb.SetNX(ctx, prefix+":review:setup", time.Now().UTC().Format(time.RFC3339), 0).Result()
	if err != nil || !first {
		return err
	}
	if err := rdb.SAdd(ctx, asynqAllQueues, policy.ReviewQueue).Err(); err != nil {
		return err
	}
	if err := s.Handler.Inspector.PauseQueue(policy.ReviewQueue); err != nil && !strings.Contains(err.Error(), "already paused") {
		return err
	}
	return s.Loop.NotePause(ctx, policy.ReviewQueue, ReviewPauseReason)
}

// resumeInterval is how often a stack looks for suspensions that ended.
const resumeInterval = time.Second

// resumeSuspended resumes the queues whose suspension ended, every
// interval until ctx ends. Every serve process does it; the first wins.
func (s *Stack) resumeSuspended(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pauses, err := s.Loop.Pauses(ctx)
		if err != nil {
			continue
		}
		now := time.Now()
		for q, p := range pauses {
			if p.Until.IsZero() || p.Until.After(now) {
				continue
			}
			if err := s.Handler.Inspector.UnpauseQueue(q); err != nil && !strings.Contains(err.Error(), "not paused") {
				s.Handler.Log.Warn().Err(err).Str("queue", q).Msg("cannot resume a suspended queue")
				continue
			}
			if _, err := s.Loop.ClearPause(ctx, q); err == nil {
				s.Handler.Log.Info().Str("queue", q).Msg("suspension over: queue resumed")
			}
		}
	}
}

// Shutdown stops the workers (tasks in flight finish or go back to their
// queue), flushes the counters and closes the SMTP pool. Calls after the
// first do nothing.
func (s *Stack) Shutdown() {
	s.shutdown.Do(s.stop)
}

func (s *Stack) stop() {
	s.Server.Shutdown()
	if s.cancel != nil {
		s.cancel()
		s.wg.Wait()
	}
	_ = s.Handler.Inspector.Close()
	if err := s.Pool.Close(); err != nil {
		s.Handler.Log.Warn().Err(err).Msg("close the SMTP pool")
	}
}

// Reload applies a new [policy] section to the running stack: rates,
// limits and the loop's settings apply to the next task. Changes of the
// provider groups (queues) need a restart: they are refused with an
// error, and the running policy stays.
func (s *Stack) Reload(c policy.Config) error {
	pol := c.WithDefaults()
	if err := pol.Validate(); err != nil {
		return err
	}
	old, now := s.Policy.Queues(), pol.Queues()
	if len(old) != len(now) {
		return fmt.Errorf("queue: reload: the provider groups changed (%d queues, was %d): restart to apply", len(now), len(old))
	}
	for q := range now {
		if _, ok := old[q]; !ok {
			return fmt.Errorf("queue: reload: new queue %q: restart to apply", q)
		}
	}
	s.Handler.SetPolicy(pol)
	return nil
}

// String describes the stack for the start-up log.
func (s *Stack) String() string {
	return fmt.Sprintf("%d queues, web %s", len(s.Policy.Queues()), s.Server.Addr())
}
