package redisstore

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
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/redisstore/redistest"
)

// redisServer is a redis-server process the test owns, listening on a
// loopback port (and a unix socket) and never saving anything.
type redisServer struct {
	tb   testing.TB
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedis starts a redis-server on a free loopback port and stops it when
// the test ends. Without the binary it skips the test, or fails it when the
// environment variable CI is "true".
func startRedis(tb testing.TB) *redisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if _, statErr := os.Stat("/usr/bin/redis-server"); statErr != nil {
			msg := "redis-server not found (install Debian's redis-server package): " + err.Error()
			if os.Getenv("CI") == "true" {
				tb.Fatal(msg)
			}
			tb.Skip(msg)
		}
		bin = "/usr/bin/redis-server"
	}
	r := &redisServer{tb: tb, bin: bin, dir: tb.TempDir()}
	tb.Cleanup(r.stop)
	// Another process may take the free port between the probe and the
	// server's bind; try a few ports.
	for attempt := 0; ; attempt++ {
		r.port = freePort(tb)
		err := r.tryStart()
		if err == nil {
			return r
		}
		if attempt == 2 {
			tb.Fatalf("starting redis-server: %v", err)
		}
	}
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (r *redisServer) addr() string     { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }
func (r *redisServer) url() string      { return "redis://" + r.addr() + "/0" }
func (r *redisServer) sockPath() string { return filepath.Join(r.dir, "redis.sock") }

// start starts the server again on the same port after stop.
func (r *redisServer) start() {
	r.tb.Helper()
	if err := r.tryStart(); err != nil {
		r.tb.Fatalf("restarting redis-server: %v", err)
	}
}

func (r *redisServer) tryStart() error {
	log, err := os.OpenFile(filepath.Join(r.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(r.bin,
		"--port", strconv.Itoa(r.port),
		"--bind", "127.0.0.1",
		"--unixsocket", r.sockPath(),
		"--unixsocketperm", "700",
		"--save", "",
		"--appendonly", "no",
		"--dir", r.dir,
	)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()

	deadline := time.Now().Add(10 * time.Second)
	for {
		if redistest.Ping(r.addr()) == nil {
			return nil
		}
		select {
		case <-done:
			out, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			return fmt.Errorf("redis-server exited: %s", lastLines(string(out), 5))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.stop()
			return errors.New("redis-server did not answer PING within 10s")
		}
	}
}

// stop kills the server, if running, and waits for it to exit.
func (r *redisServer) stop() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd, r.done = nil, nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// client is a plain go-redis client on r, to look at what the store wrote.
func (r *redisServer) client(tb testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.addr()})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func mustNew(tb testing.TB, opts Options) *Store {
	tb.Helper()
	s, err := New(opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return s
}

func newStore(tb testing.TB, opts Options) *Store {
	tb.Helper()
	s := mustNew(tb, opts)
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

var prefixes atomic.Int64

// uniquePrefix isolates a test's keys on a shared server.
func uniquePrefix() string { return fmt.Sprintf("test%d:", prefixes.Add(1)) }

var tokens atomic.Int64

// testIP is the address every test challenge was generated from.
const testIP = "192.0.2.10"

func testChallenge(now time.Time) *store.Challenge {
	return &store.Challenge{
		Token:   fmt.Sprintf("00000000-0000-4000-8000-%012d", tokens.Add(1)),
		User:    "alice@example.com",
		IP:      testIP,
		Created: now,
		Expires: now.Add(2 * time.Minute),
		Status:  store.StatusPending,
	}
}

// approve views and approves c through s.
func approve(tb testing.TB, s store.Store, c *store.Challenge, now time.Time) {
	tb.Helper()
	if _, err := s.View(context.Background(), c.Token, "nonce-"+c.Token, now); err != nil {
		tb.Fatalf("View: %v", err)
	}
	a := store.Approval{Approver: "bob@example.com", Groups: []string{"admins"}, AuthTime: now.Add(-time.Minute)}
	if err := s.Approve(context.Background(), c.Token, "nonce-"+c.Token, a, now); err != nil {
		tb.Fatalf("Approve: %v", err)
	}
}
