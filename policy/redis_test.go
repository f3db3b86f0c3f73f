package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
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
		{"several addrs, single server", RedisConfig{Addrs: []string{"127.0.0.1:6379", "127.0.0.1:6380"}}, "redis.addrs"},
		{"several sentinels", RedisConfig{Addrs: []string{"127.0.0.1:26379", "127.0.0.1:26380"}, MasterName: "m"}, ""},
		{"several seeds", RedisConfig{Addrs: []string{"127.0.0.1:7000", "127.0.0.1:7001"}, Cluster: true}, ""},
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

func TestSuspensionRules(t *testing.T) {
	c := DefaultConfig()
	tests := []struct {
		name   string
		reply  bounces.Reply
		domain string
		want   string
	}{
		{"google 4.7.28", bounces.Reply{Code: 421, Enhanced: "4.7.28", Text: "421-4.7.28 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail"}, "gmail.com", "google.421.4.7.28"},
		{"google 4.7.0 is not it", bounces.Reply{Code: 421, Enhanced: "4.7.0", Text: "421 4.7.0 Try again later"}, "gmail.com", ""},
		{"yahoo tss04", bounces.Reply{Code: 421, Enhanced: "4.7.0", Text: "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred"}, "yahoo.com", "yahoo.tss04"},
		{"yahoo tss04 lower case", bounces.Reply{Code: 421, Text: "421 [tss04] deferred"}, "yahoo.com", "yahoo.tss04"},
		{"plain deferral", bounces.Reply{Code: 451, Enhanced: "4.3.0", Text: "451 4.3.0 try later"}, "icloud.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := c.Suspension(tt.reply, tt.domain)
			if got := r.ID; ok != (tt.want != "") || got != tt.want {
				t.Errorf("Suspension(%q) = %q, %v; want %q", tt.reply.Text, got, ok, tt.want)
			}
			if ok && (r.Scope != ScopeProvider || r.Suspend <= 0) {
				t.Errorf("Suspension(%q) = %+v: want a provider scope and a duration", tt.reply.Text, r)
			}
		})
	}
}

func TestRuleValidation(t *testing.T) {
	tests := []struct {
		name string
		r    Rule
		want string
	}{
		{"ok", Rule{ID: "x", Codes: []int{421}, Suspend: Duration(time.Minute)}, ""},
		{"no id", Rule{Codes: []int{421}, Suspend: Duration(time.Minute)}, "policy.rules[0].id"},
		{"no condition", Rule{ID: "x", Suspend: Duration(time.Minute)}, "at least one of"},
		{"no suspend", Rule{ID: "x", Codes: []int{421}}, "suspend"},
		{"bad scope", Rule{ID: "x", Codes: []int{421}, Scope: "planet", Suspend: Duration(time.Minute)}, "scope"},
		{"bad code", Rule{ID: "x", Codes: []int{42}, Suspend: Duration(time.Minute)}, "codes[0]"},
		{"bad regexp", Rule{ID: "x", Text: "(", Suspend: Duration(time.Minute)}, `("x").text`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Rules = []Rule{tt.r}
			err := c.Validate()
			if (err != nil) != (tt.want != "") || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate(%+v) = %v, want an error naming %q", tt.r, err, tt.want)
			}
		})
	}
	// A user rule with a built-in id replaces it; others are added.
	merged := DefaultConfig().Merge(Config{Rules: []Rule{{ID: "yahoo.tss04", Text: "TSS04", Suspend: Duration(time.Hour)}, {ID: "mine", Codes: []int{421}, Suspend: Duration(time.Minute)}}})
	if len(merged.Rules) != 3 || merged.Rules[1].Suspend != Duration(time.Hour) || merged.Rules[2].ID != "mine" {
		t.Errorf("merged rules = %+v", merged.Rules)
	}
}
