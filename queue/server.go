package queue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/bounceloop/bounceloop/policy"
)

// ServerOptions wire a Server.
type ServerOptions struct {
	Redis   redis.UniversalClient
	ConnOpt asynq.RedisConnOpt // the same Redis, for the web UI (asynqmon opens its own client)
	Handler *Handler
	Config  Config         // the [queue] section (defaults applied)
	Web     WebConfig      // the [web] section (defaults applied)
	Queues  map[string]int // asynq queue → priority
	Log     zerolog.Logger
	Metrics *Metrics
	Rates   RateFunc
	// RetryDelay replaces the package's RetryDelay; nil keeps it.
	RetryDelay asynq.RetryDelayFunc
	// Webhook is the [webhook] section: POST /bounces.
	Webhook WebhookConfig
	// KeyPrefix is the prefix of bounceloop's own keys ("" = "bounceloop").
	KeyPrefix string
}

// Server is "bounceloop serve": the asynq server running the send
// handler, and one HTTP listener with the asynq web UI at /monitoring,
// /metrics and /healthz.
type Server struct {
	o     ServerOptions
	srv   *asynq.Server
	insp  *asynq.Inspector
	mons  []*asynqmon.HTTPHandler // the asynq web UIs: read-only, and full for the admin
	http  *http.Server
	ln    net.Listener
	wg    sync.WaitGroup
	start time.Time
}

// NewServer returns a server; Start runs it.
func NewServer(o ServerOptions) *Server {
	log := o.Log.With().Str("component", "asynq").Logger()
	retry := o.RetryDelay
	if retry == nil {
		retry = RetryDelay
	}
	srv := asynq.NewServerFromRedisClient(o.Redis, asynq.Config{
		Concurrency:     o.Config.Concurrency,
		Queues:          o.Queues,
		RetryDelayFunc:  retry,
		IsFailure:       IsFailure,
		ShutdownTimeout: o.Config.ShutdownTimeout.D(),
		// Throttled tasks come back through the retry set: forward them
		// soon after their delay, not at asynq's default of 5 s.
		DelayedTaskCheckInterval: delayedTaskCheckInterval,
		Logger:                   asynqLogger{log},
		LogLevel:                 asynqLevel(o.Log.GetLevel()),
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			// The handler logs each outcome; here only what it did not see.
			var se *SendError
			if !errors.As(err, &se) && !errors.Is(err, policy.ErrThrottled) {
				id, _ := asynq.GetTaskID(ctx)
				log.Warn().Err(err).Str("task_id", id).Msg("task failed")
			}
		}),
	})
	return &Server{o: o, srv: srv, insp: asynq.NewInspectorFromRedisClient(o.Redis)}
}

// delayedTaskCheckInterval is how often asynq moves due retries and
// scheduled tasks back to their queue.
const delayedTaskCheckInterval = 200 * time.Millisecond

// RetryDelay is the server's asynq.RetryDelayFunc: a throttled task comes
// back when the limiter says a slot is free (plus a little jitter); any
// other failure waits asynq's default exponential delay.
func RetryDelay(n int, err error, t *asynq.Task) time.Duration {
	var te *policy.ThrottledError
	if errors.As(err, &te) {
		return te.RetryIn + jitter(te.RetryIn/10+10*time.Millisecond)
	}
	var ra *retryAfter
	if errors.As(err, &ra) {
		return ra.in + jitter(ra.in/10+10*time.Millisecond)
	}
	return asynq.DefaultRetryDelayFunc(n, err, t)
}

// IsFailure is the server's asynq IsFailure: throttling is not a failure,
// so it does not spend the task's retry budget.
func IsFailure(err error) bool { return !errors.Is(err, policy.ErrThrottled) }

// Start starts the workers and the HTTP listener.
func (s *Server) Start() error {
	mux := asynq.NewServeMux()
	mux.Handle(TypeSend, s.o.Handler)
	mux.HandleFunc(TypeMonthlyReport, s.reports().HandleMonthlyReport)
	if s.o.Web.Listen != "off" {
		ln, err := net.Listen("tcp", s.o.Web.Listen)
		if err != nil {
			return fmt.Errorf("queue: web.listen: %w", err)
		}
		s.ln = ln
		if !newAuthenticator(s.o.Web).configured() {
			s.o.Log.Warn().Str("listen", ln.Addr().String()).Msg("web: no credentials configured: every route but /healthz answers 401; " +
				"set [web] username with " + WebPasswordEnv + ", or " + WebTokenEnv + ", or open = true")
		}
		// A client that sends slowly, or keeps an idle connection, does not
		// hold a connection for ever; a body (a webhook batch of up to
		// [webhook] max_body) has a minute. Responses are not bounded: the
		// CSV export streams.
		s.http = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.o.Log.Error().Err(err).Msg("http listener stopped")
			}
		}()
	}
	if err := s.srv.Start(mux); err != nil {
		s.closeHTTP()
		return fmt.Errorf("queue: start workers: %w", err)
	}
	s.start = time.Now()
	return nil
}

// Addr is the HTTP listener's address ("" when off).
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops taking tasks, waits up to the shutdown timeout for the
// ones running (tasks not finished by then go back to their queue), then
// stops the HTTP listener.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.closeHTTP()
}

func (s *Server) closeHTTP() {
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.http.Shutdown(ctx)
		cancel()
		s.wg.Wait()
	}
	for _, m := range s.mons {
		_ = m.Close()
	}
	_ = s.insp.Close()
}

// routes is the HTTP side: /healthz open, /bounces behind its HMAC
// signature, the rest behind credentials (see WebConfig and authenticator).
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", s.healthz)
	mux.Handle("/bounces", s.webhook()) // its own HMAC check, not basic auth; 404 without a secret
	private := http.NewServeMux()
	private.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		if err := writeMetrics(w, s.o.Metrics, s.insp, s.o.Rates); err != nil {
			s.o.Log.Warn().Err(err).Msg("metrics")
		}
	})
	if s.o.ConnOpt != nil {
		// Viewers get the read-only UI (its API answers 405 to anything
		// but GET); the admin the full one unless [web] read_only.
		view := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: s.o.ConnOpt, ReadOnly: true})
		s.mons = append(s.mons, view)
		var mon http.Handler = view
		if ro := s.o.Web.ReadOnly; ro != nil && !*ro {
			full := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: s.o.ConnOpt})
			s.mons = append(s.mons, full)
			mon = byRole(full, view)
		}
		private.Handle("/monitoring/", mon)
		private.Handle("/monitoring", http.RedirectHandler("/monitoring/", http.StatusFound))
	}
	s.pages(private)
	private.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		http.Redirect(w, r, "/monitoring/", http.StatusFound)
	})
	mux.Handle("/", newAuthenticator(s.o.Web).wrap(private))
	return mux
}

// healthz answers 200 "ok" when Redis answers, 503 "degraded" otherwise.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.o.Redis.Ping(ctx).Err(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "degraded: redis:", err)
		return
	}
	fmt.Fprintln(w, "ok")
}

// RedisConnOpt returns asynq's connection options for a [redis] section
// (or for addr when the embedded Redis runs).
func RedisConnOpt(c policy.RedisConfig) asynq.RedisConnOpt {
	o := c.UniversalOptions()
	switch {
	case c.Cluster:
		return asynq.RedisClusterClientOpt{Addrs: o.Addrs, Username: o.Username, Password: o.Password}
	case c.MasterName != "":
		return asynq.RedisFailoverClientOpt{MasterName: c.MasterName, SentinelAddrs: o.Addrs, Username: o.Username, Password: o.Password, DB: c.DB}
	default:
		return asynq.RedisClientOpt{Addr: o.Addrs[0], Username: o.Username, Password: o.Password, DB: c.DB}
	}
}
