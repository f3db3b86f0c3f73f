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
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterAddrs starts a Redis Cluster of three masters without replicas
// for this test: three redis-server processes with --cluster-enabled yes on
// free loopback ports (client and bus port each), data in a temporary
// folder, joined by `redis-cli --cluster create ... --cluster-replicas 0
// --cluster-yes`. It returns the three addresses (seed nodes for a
// ClusterClient) once every node says cluster_state:ok with all 16384
// slots assigned; the processes are killed and the folder removed when the
// test ends.
//
// It skips the test when redis-server or redis-cli is missing (Debian:
// redis-server depends on redis-tools, which has redis-cli), and fails it
// instead under CI=true.
func ClusterAddrs(tb testing.TB) []string {
	tb.Helper()
	addrs, err := startCluster(tb)
	if err != nil {
		if errors.Is(err, errNotInstalled) && os.Getenv("CI") != "true" {
			tb.Skipf("redistest: no Redis Cluster: %v", err)
		}
		tb.Fatalf("redistest: Redis Cluster: %v", err)
	}
	return addrs
}

// ClusterClient returns a ClusterClient of a cluster started by
// ClusterAddrs for this test; it is closed when the test ends (before the
// cluster stops).
func ClusterClient(tb testing.TB) (*redis.ClusterClient, []string) {
	tb.Helper()
	addrs := ClusterAddrs(tb)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb, addrs
}

var errNotInstalled = errors.New("not installed")

func startCluster(tb testing.TB) ([]string, error) {
	server, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is %w (apt-get install -y redis-server)", errNotInstalled)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli is %w (apt-get install -y redis-tools)", errNotInstalled)
	}
	dir, err := os.MkdirTemp("", "redistest-cluster-")
	if err != nil {
		return nil, err
	}
	var cmds []*exec.Cmd
	tb.Cleanup(func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		_ = os.RemoveAll(dir)
	})
	ports, err := freePorts(6) // a client and a bus port per node
	if err != nil {
		return nil, err
	}
	var addrs []string
	for i := 0; i < 3; i++ {
		port, bus := ports[2*i], ports[2*i+1]
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("node-%d.log", i)))
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(server, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
			"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", port), "--cluster-node-timeout", "5000",
			"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--loglevel", "warning")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			return nil, fmt.Errorf("start redis-server: %w", err)
		}
		logf.Close() // the child holds its own descriptor
		cmds = append(cmds, cmd)
		addrs = append(addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	for _, a := range addrs {
		if err := ping(a, 10*time.Second); err != nil {
			return nil, fmt.Errorf("cluster node %s: %w (log in %s)", a, err, dir)
		}
	}
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	if err := waitClusterOK(addrs, 30*time.Second); err != nil {
		return nil, err
	}
	return addrs, nil
}

// freePorts returns n distinct free loopback ports (held open together
// while they are chosen, so none is handed out twice).
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var out []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// waitClusterOK waits until every node reports cluster_state:ok, 16384
// slots assigned and every other node known.
func waitClusterOK(addrs []string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for _, a := range addrs {
		rdb := redis.NewClient(&redis.Options{Addr: a})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, err := rdb.ClusterInfo(ctx).Result()
			cancel()
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_slots_assigned:16384") &&
				strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", len(addrs))) {
				break
			}
			if time.Now().After(deadline) {
				_ = rdb.Close()
				return fmt.Errorf("cluster node %s not ready after %v: %v\n%s", a, within, err, info)
			}
			<-time.After(100 * time.Millisecond)
		}
		_ = rdb.Close()
	}
	return nil
}

// Slot returns the Redis Cluster hash slot of key (CRC16/XMODEM of the key,
// or of its hash tag: the part between the first "{" and the first "}"
// after it, when not empty; modulo 16384), as CLUSTER KEYSLOT does.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

// SameSlot returns a go-redis hook that reports with tb.Errorf every
// operation that Redis Cluster would refuse with CROSSSLOT: a script or
// function call (EVAL, EVALSHA, their _RO forms, FCALL) whose keys hash to
// more than one slot, a multi-key command (DEL, MGET, MSET, RENAME, ...)
// over more than one slot, and a MULTI/EXEC transaction whose commands'
// keys span slots. Plain pipelines may span slots (a ClusterClient splits
// them by slot). Add it to a single-server client to check on one Redis
// what a cluster would refuse:
//
//	rdb.AddHook(redistest.SameSlot(t))
func SameSlot(tb testing.TB) redis.Hook { return sameSlot{tb} }

type sameSlot struct{ tb testing.TB }

func (h sameSlot) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h sameSlot) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.check(cmd.Args(), CommandKeys(cmd.Args()))
		return next(ctx, cmd)
	}
}

func (h sameSlot) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "multi" {
			var keys []string
			var names []string
			for _, c := range cmds {
				if n := c.Name(); n == "multi" || n == "exec" {
					continue
				}
				k := CommandKeys(c.Args())
				keys = append(keys, k...)
				if len(k) > 0 {
					names = append(names, c.Name())
				}
			}
			h.check([]any{"MULTI " + strings.Join(names, " ")}, keys)
		} else {
			for _, c := range cmds {
				h.check(c.Args(), CommandKeys(c.Args()))
			}
		}
		return next(ctx, cmds)
	}
}

func (h sameSlot) check(args []any, keys []string) {
	if len(keys) < 2 {
		return
	}
	s := Slot(keys[0])
	for _, k := range keys[1:] {
		if Slot(k) != s {
			h.tb.Errorf("redistest: %v: keys in more than one cluster slot: %q (slot %d) and %q (slot %d)",
				args[0], keys[0], s, k, Slot(k))
			return
		}
	}
}

// CommandKeys returns the keys of a command given as go-redis arguments
// (name first): every key of the multi-key commands and scripts, and the
// first argument of any other command that takes a key. Commands without
// keys give none.
func CommandKeys(args []any) []string {
	if len(args) < 2 {
		return nil
	}
	name := strings.ToLower(fmt.Sprint(args[0]))
	str := func(xs []any) []string {
		out := make([]string, 0, len(xs))
		for _, x := range xs {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	numbered := func(at int) []string { // numkeys at args[at], keys after it
		if len(args) <= at {
			return nil
		}
		n, err := strconv.Atoi(fmt.Sprint(args[at]))
		if err != nil || n < 0 || at+1+n > len(args) {
			return nil
		}
		return str(args[at+1 : at+1+n])
	}
	switch name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		return numbered(2)
	case "del", "unlink", "exists", "mget", "touch", "watch", "sunion", "sinter", "sdiff",
		"sunionstore", "sinterstore", "sdiffstore", "pfcount", "pfmerge":
		return str(args[1:])
	case "mset", "msetnx":
		var out []string
		for i := 1; i < len(args); i += 2 {
			out = append(out, fmt.Sprint(args[i]))
		}
		return out
	case "rename", "renamenx", "rpoplpush", "brpoplpush", "lmove", "blmove", "smove", "copy":
		if len(args) < 3 {
			return nil
		}
		return str(args[1:3])
	case "zunionstore", "zinterstore", "zdiffstore":
		return append([]string{fmt.Sprint(args[1])}, numbered(2)...)
	case "ping", "echo", "info", "time", "dbsize", "select", "hello", "auth", "client", "cluster",
		"script", "function", "config", "command", "flushdb", "flushall", "publish", "subscribe",
		"multi", "exec", "discard", "quit", "readonly", "readwrite", "scan", "memory", "debug", "wait":
		return nil
	}
	return []string{fmt.Sprint(args[1])}
}
