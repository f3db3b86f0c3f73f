package redistest

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestSentinelHarness starts a Sentinel deployment, fails it over (forced
// with three sentinels; by killing the master with one) and checks that a
// go-redis failover client finds the new master: it reads what it wrote
// before, writes again, and its connection's ROLE and port are the new
// master's.
func TestSentinelHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis Sentinel deployments")
	}
	for _, tt := range []struct {
		name      string
		sentinels int
		kill      bool
	}{
		{"SENTINEL FAILOVER, 3 sentinels", 3, false},
		{"master killed, 1 sentinel", 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := StartSentinel(t, tt.sentinels)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if got := len(s.Addrs()); got != tt.sentinels {
				t.Fatalf("Addrs() = %v, want %d sentinels", s.Addrs(), tt.sentinels)
			}
			for _, a := range s.Addrs() {
				if role, err := Role(ctx, a); err != nil || role[0] != "sentinel" {
					t.Errorf("Role(%s) = %v, %v, want sentinel", a, role, err)
				}
			}
			rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName(), SentinelAddrs: s.Addrs()})
			defer rdb.Close()
			if err := rdb.Set(ctx, "before", "1", 0).Err(); err != nil {
				t.Fatal(err)
			}
			if n, err := rdb.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
				t.Fatalf("WAIT 1 = %d, %v, want the replica to acknowledge", n, err)
			}
			old, err := s.MasterAddr(ctx)
			if err != nil || old != s.DataAddrs()[0] {
				t.Fatalf("MasterAddr() = %q, %v, want %s", old, err, s.DataAddrs()[0])
			}
			want := s.DataAddrs()[1]
			start := time.Now()
			if tt.kill {
				if err := s.Kill(old); err != nil {
					t.Fatal(err)
				}
				if err := s.WaitMaster(ctx, want, nil, 20*time.Second); err != nil {
					t.Fatal(err)
				}
			} else {
				from, to, err := s.Failover(ctx, 20*time.Second)
				if err != nil || from != old || to != want {
					t.Fatalf("Failover() = %s, %s, %v, want %s, %s", from, to, err, old, want)
				}
			}
			t.Logf("%s: master %s → %s in %v", tt.name, old, want, time.Since(start).Round(time.Millisecond))
			if !tt.kill {
				// The sentinels demote the old master at their next INFO.
				if err := s.WaitMaster(ctx, want, []string{old}, 20*time.Second); err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: old master %s a connected replica after %v", tt.name, old, time.Since(start).Round(time.Millisecond))
			}
			if got, err := s.MasterAddr(ctx); err != nil || got != want {
				t.Errorf("MasterAddr() after = %q, %v, want %s", got, err, want)
			}
			// The client follows: its writes succeed (retried while it
			// switches) and land on the new master.
			deadline := time.Now().Add(10 * time.Second)
			for {
				err := rdb.Set(ctx, "after", "2", 0).Err()
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("SET after the failover: %v", err)
				}
				<-time.After(100 * time.Millisecond)
			}
			if v, err := rdb.Get(ctx, "before").Result(); err != nil || v != "1" {
				t.Errorf("GET before = %q, %v, want 1 (written before the failover)", v, err)
			}
			if role, err := rdb.Do(ctx, "ROLE").Slice(); err != nil || role[0] != "master" {
				t.Errorf("ROLE through the client = %v, %v, want master", role, err)
			}
			info, err := rdb.Info(ctx, "server").Result()
			_, port, _ := net.SplitHostPort(want)
			if err != nil || !strings.Contains(info, "tcp_port:"+port+"\r\n") {
				t.Errorf("the client's server is not the new master %s: %v", want, err)
			}
			direct := redis.NewClient(&redis.Options{Addr: want})
			defer direct.Close()
			if v, err := direct.Get(ctx, "after").Result(); err != nil || v != "2" {
				t.Errorf("GET after on %s = %q, %v, want 2", want, v, err)
			}
		})
	}
}
