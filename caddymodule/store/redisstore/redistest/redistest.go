// Package redistest starts real Redis deployments on loopback for tests: a
// server, a replica, Sentinels, and a Cluster (with or without replicas),
// each process owned by the test and killed when it ends. Sentinels are
// redis-server in sentinel mode. Without the Redis binaries (Debian's
// redis-server package, with redis-cli) a test is skipped, or fails when the
// environment variable CI is "true".
package redistest

import (
	"bufio"
	"context"
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

// Server is one redis-server (or redis-sentinel) process.
type Server struct {
	Port int
	Addr string // 127.0.0.1:Port
	Dir  string // its working directory, holding its log

	cmd  *exec.Cmd
	done chan struct{}
}

// Binary finds a Redis program, or skips the test (fails it under CI).
func Binary(tb testing.TB, name string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/bin/" + name; fileExists(p) {
		return p
	}
	msg := name + " not found (install Debian's redis-server package, which brings redis-cli)"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg + "; CI must run the Redis tests")
	}
	tb.Skip(msg)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// StartServer starts a redis-server on a free loopback port, saving nothing,
// with the extra arguments given.
func StartServer(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	bin := Binary(tb, "redis-server")
	return start(tb, "redis-server", func(port int, dir string) *exec.Cmd {
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"),
			// A replica syncs at once rather than after 5s.
			"--repl-diskless-sync-delay", "0"}
		return exec.Command(bin, append(args, extra...)...)
	}, false)
}

// startNode starts a redis-server with cluster mode on.
func startNode(tb testing.TB) *Server {
	tb.Helper()
	bin := Binary(tb, "redis-server")
	return start(tb, "redis-server", func(port int, dir string) *exec.Cmd {
		return exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"),
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "2000")
	}, true)
}

// start runs the process cmd makes, on a free port (and, for a cluster
// node, a free bus port at port+10000), until it answers PING.
func start(tb testing.TB, name string, cmd func(port int, dir string) *exec.Cmd, bus bool) *Server {
	tb.Helper()
	var last error
	for range 3 {
		s := &Server{Port: freePort(tb, bus), Dir: tb.TempDir()}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
		s.cmd = cmd(s.Port, s.Dir)
		if last = s.cmd.Start(); last != nil {
			continue
		}
		s.done = make(chan struct{})
		go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(s.cmd, s.done)
		tb.Cleanup(s.Kill)
		if last = s.awaitPing(); last == nil {
			return s
		}
		s.Kill()
	}
	tb.Fatalf("starting %s: %v", name, last)
	return nil
}

func (s *Server) awaitPing() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := Ping(s.Addr); err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("exited: %s", s.Log(5))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to PING within 10s: %s", s.Log(5))
		}
	}
}

// Kill kills the process (SIGKILL, as a crash) and waits for it to exit.
func (s *Server) Kill() {
	if s.cmd == nil || s.done == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.done = nil
}

// Log returns the last n lines of the process's log.
func (s *Server) Log(n int) string {
	out, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Client is a plain client of this one process, closed when the test ends.
func (s *Server) Client(tb testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// StartReplica starts a replica of primary and waits until it is in sync.
func StartReplica(tb testing.TB, primary *Server) *Server {
	tb.Helper()
	r := StartServer(tb, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
	c, pc := r.Client(tb), primary.Client(tb)
	// In sync on both ends: the replica's link is up, and the primary
	// counts it online (it does so at the replica's first acknowledgement
	// after the initial sync; until then WAIT does not count it).
	online := fmt.Sprintf("port=%d,state=online", r.Port)
	Eventually(tb, 10*time.Second, "replica in sync", func() bool {
		info, _ := c.Info(context.Background(), "replication").Result()
		pinfo, _ := pc.Info(context.Background(), "replication").Result()
		return strings.Contains(info, "master_link_status:up") && strings.Contains(pinfo, online)
	})
	return r
}

// Eventually polls cond until it holds, or fails the test after limit.
func Eventually(tb testing.TB, limit time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func freePort(tb testing.TB, bus bool) int {
	tb.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("finding a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !bus {
			l.Close()
			return port
		}
		if port+10000 <= 65535 {
			if b, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000))); err == nil {
				b.Close()
				l.Close()
				return port
			}
		}
		l.Close()
	}
	tb.Fatal("no free port with a free cluster bus port")
	return 0
}

// Ping checks that the server at addr answers PING, without go-redis.
func Ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}
