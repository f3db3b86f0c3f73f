// Package redistest gives tests a real Redis: the server at
// $TEST_REDIS_ADDR when it is set, else a redis-server (Debian's package)
// started on a free loopback port for the test binary and stopped when it
// ends. Every test gets its own key prefix and its keys are deleted when it
// ends; no test ever flushes a database.
//
// When no Redis can be had, tests are skipped, except under CI=true where
// they fail: a missing Redis must never pass CI silently.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }
//
// and in a test:
//
//	rdb, prefix := redistest.Client(t)
//
// ClusterAddrs starts a Redis Cluster of three masters for one test, and
// the SameSlot hook reports what a cluster would refuse (CROSSSLOT); with
// REDISTEST_SAME_SLOT=1 every client of Client and DB carries it.
// StartSentinel starts a master, a replica and one or three sentinels for
// one test, with Failover, WaitMaster and Kill to drive a failover.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	mu       sync.Mutex
	addr     string
	startErr error
	started  *exec.Cmd
	dataDir  string
)

// Run runs the tests of m and stops the redis-server this package started,
// if any. Its result is the exit status for os.Exit.
func Run(m *testing.M) int {
	code := m.Run()
	stop()
	return code
}

// Addr returns the address of the test Redis, starting one when needed. It
// skips the test (fails it under CI=true) when none can be had.
func Addr(tb testing.TB) string {
	tb.Helper()
	a, err := ensure()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redistest: no Redis under CI: %v", err)
		}
		tb.Skipf("redistest: no Redis: %v (set TEST_REDIS_ADDR or install redis-server)", err)
	}
	return a
}

// Client returns a client of the test Redis and a key prefix unique to
// this test ("test:<hex>"). Keys under the prefix are deleted and the
// client closed when the test ends.
func Client(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	a := Addr(tb)
	rdb := redis.NewClient(&redis.Options{Addr: a, DB: 0})
	prefix := "test:" + randomHex(8)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rdb.Close()
		ctl := redis.NewClient(&redis.Options{Addr: a, DB: 0}) // without the test's hooks
		defer ctl.Close()
		if err := DeletePrefix(ctx, ctl, prefix); err != nil {
			tb.Errorf("redistest: clean up %s: %v", prefix, err)
		}
	})
	checkSlots(tb, rdb)
	return rdb, prefix
}

// SameSlotEnv names the environment variable that, set to 1, adds the
// SameSlot hook to every client of Client and DB: any test then fails on
// an operation a Redis Cluster would refuse (CROSSSLOT).
const SameSlotEnv = "REDISTEST_SAME_SLOT"

func checkSlots(tb testing.TB, rdb *redis.Client) {
	if os.Getenv(SameSlotEnv) == "1" {
		rdb.AddHook(SameSlot(tb))
	}
}

// DeletePrefix deletes every key that starts with prefix.
func DeletePrefix(ctx context.Context, rdb *redis.Client, prefix string) error {
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := rdb.Del(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return rdb.Del(ctx, batch...).Err()
	}
	return nil
}

func ensure() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if addr != "" || startErr != nil {
		return addr, startErr
	}
	if a := os.Getenv("TEST_REDIS_ADDR"); a != "" {
		if err := ping(a, 5*time.Second); err != nil {
			startErr = fmt.Errorf("TEST_REDIS_ADDR=%s: %w", a, err)
			return "", startErr
		}
		addr = a
		return addr, nil
	}
	addr, startErr = start()
	return addr, startErr
}

// start runs redis-server on a free loopback port without persistence.
func start() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("redis-server is not installed (apt-get install -y redis-server)")
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("start redis-server: %w", err)
	}
	a := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := ping(a, 10*time.Second); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("redis-server on %s: %w", a, err)
	}
	started, dataDir = cmd, dir
	return a, nil
}

func stop() {
	mu.Lock()
	defer mu.Unlock()
	if started != nil {
		_ = started.Process.Kill()
		_ = started.Wait()
		_ = os.RemoveAll(dataDir)
		started = nil
	}
}

func ping(a string, within time.Duration) error {
	rdb := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(50 * time.Millisecond)
		<-t.C
	}
}

func freePort() (int, error) {
	ps, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return ps[0], nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// DB returns a client of a database of the test Redis that this test
// holds alone: for code with fixed key names (asynq's "asynq:" keys) that
// a key prefix cannot separate. Databases 1..15 are leased across
// processes through a key in database 0 ("redistest:lease:db:N", expiring
// after 15 minutes); the database must be empty when taken, and it is
// flushed — only it — and released when the test ends. Database 0 is
// never handed out nor flushed.
func DB(tb testing.TB) *redis.Client {
	tb.Helper()
	a := Addr(tb)
	ctl := redis.NewClient(&redis.Options{Addr: a, DB: 0})
	defer ctl.Close()
	token := randomHex(8)
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		for db := 1; db <= 15; db++ {
			lease := fmt.Sprintf("redistest:lease:db:%d", db)
			ok, err := ctl.SetNX(ctx, lease, token, 15*time.Minute).Result()
			if err != nil {
				tb.Fatalf("redistest: lease a database: %v", err)
			}
			if !ok {
				continue
			}
			rdb := redis.NewClient(&redis.Options{Addr: a, DB: db})
			if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 0 {
				// Someone's data without a lease: leave it alone, try the next.
				_ = rdb.Close()
				_ = ctl.Del(ctx, lease).Err()
				continue
			}
			checkSlots(tb, rdb)
			tb.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := rdb.FlushDB(ctx).Err(); err != nil {
					tb.Errorf("redistest: flush database %d: %v", db, err)
				}
				_ = rdb.Close()
				ctl := redis.NewClient(&redis.Options{Addr: a, DB: 0})
				defer ctl.Close()
				if v, _ := ctl.Get(ctx, lease).Result(); v == token {
					_ = ctl.Del(ctx, lease).Err()
				}
			})
			return rdb
		}
		if time.Now().After(deadline) {
			tb.Fatal("redistest: no free database among 1..15 for 2 minutes")
		}
		<-time.After(100 * time.Millisecond)
	}
}
