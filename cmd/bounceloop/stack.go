package main

import (
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/bounceloop/bounceloop/cmd/bounceloop/internal/config"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/queue"
)

// redisFor connects to the config's Redis; with no address and embedded
// allowed, it starts the in-process one (close it with the returned func),
// which it says in RedisConfig's place: rc.Addrs is then the embedded one
// and isEmbedded true.
func redisFor(e *env, cfg config.Config, embedded bool) (rdb redis.UniversalClient, rc policy.RedisConfig, closeFn func(), isEmbedded bool, err error) {
	rc = cfg.Redis
	stop := func() {}
	if len(rc.Addrs) == 0 && embedded {
		emb, err := queue.StartEmbedded()
		if err != nil {
			return nil, rc, nil, false, err
		}
		e.log.Warn().Str("addr", emb.Addr()).Msg("no [redis] addrs in the config: using an embedded in-process Redis; its state is lost on exit")
		rc.Addrs = []string{emb.Addr()}
		rc.Cluster, rc.MasterName, rc.DB = false, "", 0
		stop = emb.Close
		isEmbedded = true
	}
	rdb = rc.NewClient()
	return rdb, rc, func() { _ = rdb.Close(); stop() }, isEmbedded, nil
}

// newStack builds the serve stack from the config.
func newStack(e *env, cfg config.Config, rdb redis.UniversalClient, rc policy.RedisConfig, single bool) (*queue.Stack, error) {
	cl, err := newClassifier(cfg)
	if err != nil {
		return nil, err
	}
	tpl, err := cfg.Templates.Open()
	if err != nil {
		return nil, err
	}
	st, err := queue.NewStack(queue.StackConfig{
		Redis: rdb, ConnOpt: queue.RedisConnOpt(rc), KeyPrefix: rc.KeyPrefix(),
		Queue: cfg.Queue, Web: cfg.Web, Webhook: cfg.Webhook, Policy: cfg.Policy, SMTP: cfg.SMTP,
		Templates: tpl, Classifier: cl, Log: e.log, SingleProcess: single,
	})
	if err != nil {
		return nil, fmt.Errorf("build the queue: %w", err)
	}
	return st, nil
}
