package policy

import (
	"strings"
	"testing"
)

func TestRedisConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		c       RedisConfig
		wantErr string
	}{
		{"zero", RedisConfig{}, ""},
		{"single", RedisConfig{Addrs: []string{"127.0.0.1:6380"}, DB: 3, Prefix: "acme"}, ""},
		{"sentinel", RedisConfig{Addrs: []string{"127.0.0.1:26379"}, MasterName: "mymaster"}, ""},
		{"cluster", RedisConfig{Addrs: []string{"127.0.0.1:7000"}, Cluster: true}, ""},
		{"bad addr", RedisConfig{Addrs: []string{"localhost"}}, "redis.addrs[0]"},
		{"bad db", RedisConfig{DB: 16}, "redis.db"},
		{"cluster db", RedisConfig{Cluster: true, DB: 1}, "redis.db"},
		{"cluster and sentinel", RedisConfig{Cluster: true, MasterName: "m"}, "redis.cluster"},
		{"prefix with brace", RedisConfig{Prefix: "a{b}"}, "redis.prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if (err != nil) != (tt.wantErr != "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate(%+v) = %v, want error naming %q", tt.c, err, tt.wantErr)
			}
		})
	}
}

func TestRedisConfigOptions(t *testing.T) {
	t.Setenv(RedisPasswordEnv, "from-env")
	o := RedisConfig{Password: "from-file"}.UniversalOptions()
	if o.Password != "from-env" {
		t.Errorf("Password = %q, want the environment's", o.Password)
	}
	if len(o.Addrs) != 1 || o.Addrs[0] != DefaultRedisAddr {
		t.Errorf("Addrs = %v, want [%s]", o.Addrs, DefaultRedisAddr)
	}
	t.Setenv(RedisPasswordEnv, "")
	if o := (RedisConfig{Password: "from-file"}).UniversalOptions(); o.Password != "from-file" {
		t.Errorf("Password = %q, want the file's", o.Password)
	}
	if p := (RedisConfig{}).KeyPrefix(); p != "bounceloop" {
		t.Errorf("KeyPrefix() = %q, want bounceloop", p)
	}
}
