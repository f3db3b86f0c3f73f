package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bounceloop/bounceloop/cmd/bounceloop/internal/config"
	"github.com/bounceloop/bounceloop/queue"
)

const serveHelp = `Usage: bounceloop serve [--config FILE]

Runs the sending queue: asynq workers that send the enqueued messages over
SMTP at each domain's pace (shared with every other serve process through
Redis), and one HTTP listener ([web] listen, default 127.0.0.1:8080) with
  /monitoring  the asynq web UI (read-only unless [web] read_only = false)
  /metrics     Prometheus metrics: queues, attempts and answers by class per
               domain, current rates
  /healthz     "ok", or 503 "degraded" while Redis does not answer
  /bounces     POST later bounces (NDJSON or a bounce message), signed with
               HMAC-SHA256 ([webhook] secret; 404 without one)
Every route but /healthz and the signed POST /bounces requires credentials:
basic auth or a bearer token of the admin ([web] username/password, token)
or of a viewer (viewer_username/viewer_password, viewer_token: pages and
/metrics, the asynq web UI read-only). Secrets from the environment
(BOUNCELOOP_WEB_PASSWORD, BOUNCELOOP_WEB_TOKEN, BOUNCELOOP_WEB_VIEWER_PASSWORD,
BOUNCELOOP_WEB_VIEWER_TOKEN) or the config. Without any credential those
routes answer 401 unless [web] open = true.

The config is read again on SIGHUP and when the file changes (checked
every 2 s): new rates and loop settings apply to the next message without a
restart; a file that does not load, or that changes the provider groups
(queues), keeps the running config and the log says why.

Without [redis] addrs an embedded in-process Redis is used (state lost on
exit). SIGTERM or SIGINT stops gracefully: SMTP transactions in flight finish
within [queue] shutdown_timeout or their tasks go back to the queue.

Flags:
`

func serveCommand(fs *flag.FlagSet) func(context.Context, *env, []string) int {
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), serveHelp)
		fs.PrintDefaults()
	}
	return func(ctx context.Context, e *env, args []string) int {
		if len(args) > 0 {
			fmt.Fprintf(e.stderr, "bounceloop serve: unexpected arguments %q\n", args)
			return exitUsage
		}
		rdb, rc, closeRedis, embedded, err := redisFor(e, e.cfg, true)
		if err != nil {
			e.log.Error().Err(err).Msg("cannot start Redis")
			return exitSkipped
		}
		defer closeRedis()
		st, err := newStack(e, e.cfg, rdb, rc, embedded)
		if err != nil {
			e.log.Error().Err(err).Msg("cannot build the queue")
			return exitUsage
		}
		if err := st.Start(); err != nil {
			e.log.Error().Err(err).Msg("cannot start")
			return exitSkipped
		}
		e.log.Info().Str("web", st.Server.Addr()).Int("queues", len(st.Policy.Queues())).Msg("serving")
		watching := make(chan struct{})
		if e.configPath != "" {
			go func() {
				defer close(watching)
				watchConfig(ctx, e, st)
			}()
		} else {
			close(watching)
		}
		<-ctx.Done()
		<-watching
		e.log.Info().Msg("shutting down: waiting for SMTP transactions in flight")
		st.Shutdown()
		e.log.Info().Msg("stopped")
		return exitOK
	}
}

// watchConfig reloads the config file on SIGHUP and when its modification
// time changes, until ctx ends.
func watchConfig(ctx context.Context, e *env, st *queue.Stack) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	mtime := func() time.Time {
		if fi, err := os.Stat(e.configPath); err == nil {
			return fi.ModTime()
		}
		return time.Time{}
	}
	last := mtime()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		case <-tick.C:
			m := mtime()
			if m.Equal(last) {
				continue
			}
			last = m
		}
		cfg, err := config.Load(e.configPath)
		if err == nil {
			err = st.Reload(cfg.Policy)
		}
		if err != nil {
			e.log.Error().Err(err).Str("config", e.configPath).Msg("config not reloaded: keeping the running one")
			continue
		}
		e.log.Info().Str("config", e.configPath).Msg("config reloaded: new rates apply to the next message")
	}
}
