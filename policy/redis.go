package policy

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisConfig is the [redis] section of config.toml: where every shared
// decision, counter and queue lives. The zero value means one server at
// 127.0.0.1:6379, database 0, key prefix "bounceloop".
//
// Three shapes, as asynq supports:
//   - a single server: one address in Addrs (or none for the default);
//   - Sentinel: MasterName set, Addrs are the sentinels;
//   - Cluster: Cluster true, Addrs are seed nodes (DB must be 0).
type RedisConfig struct {
	Addrs      []string `toml:"addrs"`       // host:port; default ["127.0.0.1:6379"]
	MasterName string   `toml:"master_name"` // Sentinel master name; "" = no Sentinel
	Cluster    bool     `toml:"cluster"`     // Redis Cluster
	DB         int      `toml:"db"`          // database number (single server and Sentinel), 0..15
	Username   string   `toml:"username"`    // ACL user; "" = default user
	// Password authenticates to Redis. Prefer the environment variable
	// BOUNCELOOP_REDIS_PASSWORD, which overrides it; it is never logged.
	Password string `toml:"password"`
	Prefix   string `toml:"prefix"` // key prefix of bounceloop's own keys; default "bounceloop"
}

// DefaultRedisAddr is the address used when Addrs is empty.
const DefaultRedisAddr = "127.0.0.1:6379"

// RedisPasswordEnv names the environment variable that overrides
// RedisConfig.Password.
const RedisPasswordEnv = "BOUNCELOOP_REDIS_PASSWORD"

// Validate checks the section; errors name the key.
func (c RedisConfig) Validate() error {
	for i, a := range c.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("policy: redis.addrs[%d]: %q is not host:port", i, a)
		}
	}
	if c.DB < 0 || c.DB > 15 {
		return fmt.Errorf("policy: redis.db: %d is not in 0..15", c.DB)
	}
	if c.Cluster && c.MasterName != "" {
		return fmt.Errorf("policy: redis.cluster and redis.master_name: choose Cluster or Sentinel, not both")
	}
	if c.Cluster && c.DB != 0 {
		return fmt.Errorf("policy: redis.db: Redis Cluster has only database 0")
	}
	if len(c.Addrs) > 1 && !c.Cluster && c.MasterName == "" {
		// go-redis would take several addresses for a Cluster's seeds
		// while asynq's web UI used the first as a single server.
		return fmt.Errorf("policy: redis.addrs: %d addresses need cluster = true (Cluster seeds) or master_name (Sentinel); a single server takes one", len(c.Addrs))
	}
	if strings.ContainsAny(c.Prefix, " {}\r\n") {
		return fmt.Errorf("policy: redis.prefix: %q must not contain spaces or braces", c.Prefix)
	}
	return nil
}

// KeyPrefix returns Prefix or its default "bounceloop".
func (c RedisConfig) KeyPrefix() string {
	if c.Prefix == "" {
		return "bounceloop"
	}
	return c.Prefix
}

// UniversalOptions returns the go-redis options of the section, with the
// password from the environment when set there.
func (c RedisConfig) UniversalOptions() *redis.UniversalOptions {
	addrs := c.Addrs
	if len(addrs) == 0 {
		addrs = []string{DefaultRedisAddr}
	}
	pw := c.Password
	if v := os.Getenv(RedisPasswordEnv); v != "" {
		pw = v
	}
	return &redis.UniversalOptions{
		Addrs:         addrs,
		MasterName:    c.MasterName,
		IsClusterMode: c.Cluster,
		DB:            c.DB,
		Username:      c.Username,
		Password:      pw,
	}
}

// NewClient returns a client for the section: a plain, failover (Sentinel)
// or cluster client as configured. The caller closes it.
func (c RedisConfig) NewClient() redis.UniversalClient {
	return redis.NewUniversalClient(c.UniversalOptions())
}
