package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMasterName is the name the sentinels of StartSentinel monitor
// their master under ([redis] master_name).
const SentinelMasterName = "bounceloop-test"

// Sentinel is a Redis Sentinel deployment of one test's own: a master, one
// replica of it (replicaof) and one or three sentinels, every process on a
// free loopback port, without persistence (no RDB snapshots, no
// append-only file), its files in a temporary folder (in /dev/shm when
// there is one: see tmpfs). StartSentinel starts
// one; every process is killed and the folder removed when the test ends.
// Its methods are safe for concurrent use.
type Sentinel struct {
	name      string
	sentinels []string
	data      []string // the data nodes: the first master, then its replica

	mu   sync.Mutex
	cmds map[string]*exec.Cmd // address → process, until killed
}

// StartSentinel starts a master, its replica and n sentinels (n is 1 or
// 3; the quorum is n/2+1: 1 or 2) monitoring the master as
// SentinelMasterName, with down-after-milliseconds 1000 and
// failover-timeout 10000, all with Debian's redis-server (`redis-server
// <file> --sentinel` for the sentinels). It returns once the replica's
// link to the master is up and every sentinel knows the master, the
// replica (not down) and, with three, the other two sentinels: ready for
// a failover. The data nodes run with repl-diskless-sync-delay 0 (Redis's
// default 5 s would delay a demoted master's resynchronisation); args are
// added to both data nodes' command line (for example
// "--min-replicas-to-write", "1"). When the test failed, the tail of every
// process's log (the sentinels' at notice level: +switch-master and the
// other events) is logged before the folder goes.
//
// It skips the test when redis-server is missing, and fails it instead
// under CI=true.
func StartSentinel(tb testing.TB, n int, args ...string) *Sentinel {
	tb.Helper()
	if n != 1 && n != 3 {
		tb.Fatalf("redistest: StartSentinel with %d sentinels, want 1 or 3", n)
	}
	s, err := startSentinel(tb, n, args)
	if err != nil {
		if errors.Is(err, errNotInstalled) && os.Getenv("CI") != "true" {
			tb.Skipf("redistest: no Redis Sentinel: %v", err)
		}
		tb.Fatalf("redistest: Redis Sentinel: %v", err)
	}
	return s
}

// MasterName is the monitored master's name, for [redis] master_name.
func (s *Sentinel) MasterName() string { return s.name }

// Addrs are the sentinels' host:port, for [redis] addrs.
func (s *Sentinel) Addrs() []string { return append([]string(nil), s.sentinels...) }

// DataAddrs are the data nodes' host:port: the master at start, then its
// replica. Which is master now, ask MasterAddr.
func (s *Sentinel) DataAddrs() []string { return append([]string(nil), s.data...) }

// MasterAddr asks the first sentinel that answers for the current
// master's address (SENTINEL GET-MASTER-ADDR-BY-NAME).
func (s *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	var errs []error
	for _, a := range s.sentinels {
		addr, err := masterOf(ctx, a, s.name)
		if err == nil {
			return addr, nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

// Failover forces a failover (SENTINEL FAILOVER on the first sentinel:
// no agreement needed) and waits up to within until every sentinel names
// the other data node as master and ROLE there says master. It returns
// the old and the new master's address. It does not wait for the old
// master to become the new one's replica: the sentinels turn it into one
// when they next poll it (INFO, every 10 s), and until then it is a
// second master that takes the writes of any client still connected to
// it (they are lost when it resynchronises). WaitMaster with the old
// address among the replicas waits for that.
func (s *Sentinel) Failover(ctx context.Context, within time.Duration) (from, to string, err error) {
	from, err = s.MasterAddr(ctx)
	if err != nil {
		return "", "", err
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.sentinels[0]})
	defer sc.Close()
	if err := sc.Failover(ctx, s.name).Err(); err != nil {
		return from, "", fmt.Errorf("SENTINEL FAILOVER %s: %w", s.name, err)
	}
	to = s.data[0]
	if from == to {
		to = s.data[1]
	}
	return from, to, s.WaitMaster(ctx, to, nil, within)
}

// WaitMaster waits up to within until every sentinel still running names
// master as the master, ROLE on master says "master", and every address of
// replicas is its replica with the link up (ROLE says "connected").
func (s *Sentinel) WaitMaster(ctx context.Context, master string, replicas []string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := s.checkMaster(ctx, master, replicas)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", within, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Sentinel) checkMaster(ctx context.Context, master string, replicas []string) error {
	for _, a := range s.sentinels {
		if !s.running(a) {
			continue
		}
		got, err := masterOf(ctx, a, s.name)
		if err != nil {
			return err
		}
		if got != master {
			return fmt.Errorf("sentinel %s names %s as master, want %s", a, got, master)
		}
	}
	role, err := Role(ctx, master)
	if err != nil {
		return err
	}
	if role[0] != "master" {
		return fmt.Errorf("%s: ROLE %v, want master", master, role)
	}
	for _, r := range replicas {
		role, err := Role(ctx, r)
		if err != nil {
			return err
		}
		if len(role) < 4 || role[0] != "slave" || net.JoinHostPort(role[1], role[2]) != master || role[3] != "connected" {
			return fmt.Errorf("%s: ROLE %v, want a connected replica of %s", r, role, master)
		}
	}
	return nil
}

// Role returns the first fields of ROLE on the server at addr as text: a
// master gives ["master", <replication offset>], a replica ["slave",
// <master host>, <master port>, <link state>, <offset>], a sentinel
// ["sentinel"].
func Role(ctx context.Context, addr string) ([]string, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	v, err := rdb.Do(ctx, "ROLE").Slice()
	if err != nil {
		return nil, fmt.Errorf("ROLE on %s: %w", addr, err)
	}
	var out []string
	for _, x := range v {
		switch x := x.(type) {
		case []any: // a master's replicas, a sentinel's masters
		default:
			out = append(out, fmt.Sprint(x))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("ROLE on %s: %v", addr, v)
	}
	return out, nil
}

// Kill kills (SIGKILL) the process at addr, a data node or a sentinel, and
// waits for it. Killing one that is not running does nothing.
func (s *Sentinel) Kill(addr string) error {
	s.mu.Lock()
	cmd := s.cmds[addr]
	delete(s.cmds, addr)
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", addr, err)
	}
	_ = cmd.Wait()
	return nil
}

func (s *Sentinel) running(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmds[addr] != nil
}

func (s *Sentinel) killAll() {
	s.mu.Lock()
	var addrs []string
	for a := range s.cmds {
		addrs = append(addrs, a)
	}
	s.mu.Unlock()
	for _, a := range addrs {
		_ = s.Kill(a)
	}
}

func masterOf(ctx context.Context, sentinel, name string) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel, MaxRetries: -1})
	defer sc.Close()
	hp, err := sc.GetMasterAddrByName(ctx, name).Result()
	if err != nil {
		return "", fmt.Errorf("sentinel %s: get-master-addr-by-name %s: %w", sentinel, name, err)
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("sentinel %s: get-master-addr-by-name %s: %v", sentinel, name, hp)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}

func startSentinel(tb testing.TB, n int, extra []string) (*Sentinel, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is %w (apt-get install -y redis-server)", errNotInstalled)
	}
	dir, err := os.MkdirTemp(tmpfs(), "redistest-sentinel-")
	if err != nil {
		return nil, err
	}
	s := &Sentinel{name: SentinelMasterName, cmds: map[string]*exec.Cmd{}}
	tb.Cleanup(func() {
		s.killAll()
		if tb.Failed() { // the sentinels' events (+sdown, +switch-master, ...) and the nodes' warnings
			logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
			for _, l := range logs {
				if b, err := os.ReadFile(l); err == nil && len(b) > 0 {
					if len(b) > 3000 {
						b = b[len(b)-3000:]
					}
					tb.Logf("redistest: %s (tail):\n%s", filepath.Base(l), b)
				}
			}
		}
		_ = os.RemoveAll(dir)
	})
	ports, err := freePorts(2 + n)
	if err != nil {
		return nil, err
	}
	addr := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	start := func(name, a string, args ...string) error {
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			return err
		}
		defer logf.Close() // the child holds its own descriptor
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start redis-server (%s): %w", name, err)
		}
		s.mu.Lock()
		s.cmds[a] = cmd
		s.mu.Unlock()
		return nil
	}
	master := addr(ports[0])
	for i, p := range ports[:2] {
		args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(p), "--save", "", "--appendonly", "no",
			"--dir", dir, "--dbfilename", fmt.Sprintf("dump-%d.rdb", p), "--daemonize", "no", "--loglevel", "warning",
			"--repl-diskless-sync-delay", "0"} // a replica (re)joining is served at once, not after 5 s
		if i == 1 {
			args = append(args, "--replicaof", "127.0.0.1", strconv.Itoa(ports[0]))
		}
		args = append(args, extra...)
		if err := start(fmt.Sprintf("data-%d", p), addr(p), args...); err != nil {
			return nil, err
		}
		s.data = append(s.data, addr(p))
	}
	for _, a := range s.data {
		if err := ping(a, 10*time.Second); err != nil {
			return nil, fmt.Errorf("data node %s: %w (log in %s)", a, err, dir)
		}
	}
	// The sentinels rewrite their file (the replicas and sentinels they
	// find, each failover): one file each, in the folder.
	quorum := n/2 + 1
	for _, p := range ports[2:] {
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", p))
		text := fmt.Sprintf(`bind 127.0.0.1
port %d
dir %s
daemonize no
loglevel notice
sentinel monitor %s 127.0.0.1 %d %d
sentinel down-after-milliseconds %[3]s 1000
sentinel failover-timeout %[3]s 10000
sentinel parallel-syncs %[3]s 1
`, p, dir, s.name, ports[0], quorum)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			return nil, err
		}
		if err := start(fmt.Sprintf("sentinel-%d", p), addr(p), conf, "--sentinel"); err != nil {
			return nil, err
		}
		s.sentinels = append(s.sentinels, addr(p))
	}
	for _, a := range s.sentinels {
		if err := ping(a, 10*time.Second); err != nil {
			return nil, fmt.Errorf("sentinel %s: %w (log in %s)", a, err, dir)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitMaster(ctx, master, s.data[1:], 10*time.Second); err != nil {
		return nil, fmt.Errorf("replication: %w (logs in %s)", err, dir)
	}
	if err := s.waitReady(ctx, 20*time.Second); err != nil {
		return nil, fmt.Errorf("%w (logs in %s)", err, dir)
	}
	return s, nil
}

// tmpfs returns "/dev/shm" when it is a folder this process can write
// (a tmpfs on Linux), else "" (the default temporary folder). A sentinel
// rewrites and fsyncs its configuration file at every event, in its event
// loop; on a busy disk one fsync took over 2 s here, which sends a
// sentinel into TILT mode (30 s without acting), and the failover it was
// leading never completed.
func tmpfs() string {
	const shm = "/dev/shm"
	f, err := os.CreateTemp(shm, "redistest-probe-")
	if err != nil {
		return ""
	}
	_ = f.Close()
	_ = os.Remove(f.Name())
	return shm
}

// waitReady waits until every sentinel knows the replica, not down and
// with its link to the master up, and the other sentinels.
func (s *Sentinel) waitReady(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for _, a := range s.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: a, MaxRetries: -1})
		for {
			err := s.sentinelReady(ctx, sc)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				_ = sc.Close()
				return fmt.Errorf("sentinel %s not ready after %v: %w", a, within, err)
			}
			<-time.After(50 * time.Millisecond)
		}
		_ = sc.Close()
	}
	return nil
}

func (s *Sentinel) sentinelReady(ctx context.Context, sc *redis.SentinelClient) error {
	m, err := sc.Master(ctx, s.name).Result()
	if err != nil {
		return err
	}
	if got, want := m["num-other-sentinels"], strconv.Itoa(len(s.sentinels)-1); got != want {
		return fmt.Errorf("num-other-sentinels %s, want %s", got, want)
	}
	rs, err := sc.Replicas(ctx, s.name).Result()
	if err != nil {
		return err
	}
	if len(rs) != 1 {
		return fmt.Errorf("%d replicas known, want 1", len(rs))
	}
	r := rs[0]
	if strings.Contains(r["flags"], "down") || r["master-link-status"] != "ok" {
		return fmt.Errorf("replica %s:%s: flags %q, master-link-status %q", r["ip"], r["port"], r["flags"], r["master-link-status"])
	}
	return nil
}
