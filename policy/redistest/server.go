package redistest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a redis-server of one test's own, on a free loopback port with
// its data in a temporary folder: for tests that stop, kill and restart
// Redis (persistence, reconnection), which the shared test Redis must never
// see. StartServer starts one; it is killed and its folder removed when the
// test ends. Its methods are safe for concurrent use.
type Server struct {
	bin  string
	args []string
	addr string
	dir  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// StartServer starts redis-server on a free 127.0.0.1 port with the data
// folder t.TempDir() and no RDB snapshots, plus args (for example
// "--appendonly", "yes"), and waits until it answers. It skips the test
// when redis-server is not installed, or fails it under CI=true.
func StartServer(tb testing.TB, args ...string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redistest: redis-server is not installed under CI")
		}
		tb.Skip("redistest: redis-server is not installed (apt-get install -y redis-server)")
	}
	port, err := freePort()
	if err != nil {
		tb.Fatalf("redistest: free port: %v", err)
	}
	s := &Server{bin: bin, args: args, dir: tb.TempDir(), addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	tb.Cleanup(func() { _ = s.Kill() })
	if err := s.Start(); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	return s
}

// Addr is the server's host:port; it stays the same across restarts.
func (s *Server) Addr() string { return s.addr }

// Dir is the server's data folder (the append-only file lives there).
func (s *Server) Dir() string { return s.dir }

// Start starts the server (again: same port, same folder, so it loads what
// it persisted) and waits up to 30 s until it answers PING, loading
// included. Starting a running server is an error.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("redis-server on %s: already running", s.addr)
	}
	_, port, _ := net.SplitHostPort(s.addr)
	args := append([]string{"--bind", "127.0.0.1", "--port", port, "--save", "", "--dir", s.dir,
		"--daemonize", "no", "--loglevel", "warning"}, s.args...)
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server on %s: %w", s.addr, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	if err := ping(s.addr, 30*time.Second); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("redis-server on %s: %w", s.addr, err)
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// Stop stops the server gracefully (SIGTERM: Redis writes and syncs its
// append-only file, then exits) and waits for it, killing it after 30 s.
// Stopping a stopped server does nothing.
func (s *Server) Stop() error { return s.end(syscall.SIGTERM) }

// Kill kills the server (SIGKILL: a crash; what was not yet synced to the
// append-only file is lost) and waits for it. Killing a stopped server
// does nothing.
func (s *Server) Kill() error { return s.end(syscall.SIGKILL) }

func (s *Server) end(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	cmd, exited := s.cmd, s.exited
	s.cmd, s.exited = nil, nil
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("redis-server on %s: %w", s.addr, err)
	}
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-exited:
		return nil
	case <-t.C:
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("redis-server on %s: still running 30 s after %v: killed", s.addr, sig)
	}
}
