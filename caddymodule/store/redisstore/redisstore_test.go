package redisstore

import (
	"bufio"
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
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/storetest"
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
		if pingRaw(r.addr()) == nil {
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

// pingRaw checks that a server answers PING on addr, without go-redis.
func pingRaw(addr string) error {
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
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
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

func TestConformance(t *testing.T) {
	srv := startRedis(t)
	storetest.Run(t, storetest.Config{MaxLoginsPerClient: 20}, func(t *testing.T) store.Store {
		return mustNew(t, Options{URL: srv.url(), KeyPrefix: uniquePrefix(), MaxLoginsPerClient: 20})
	})
}

// TestConformanceSmall runs the suite with the smallest per-client bound
// and a short grace.
func TestConformanceSmall(t *testing.T) {
	srv := startRedis(t)
	storetest.Run(t, storetest.Config{MaxLoginsPerClient: 1}, func(t *testing.T) store.Store {
		return mustNew(t, Options{URL: srv.url(), KeyPrefix: uniquePrefix(), MaxLoginsPerClient: 1, ExpiredGrace: 15 * time.Second})
	})
}

func TestConformanceUnixSocket(t *testing.T) {
	srv := startRedis(t)
	s := newStore(t, Options{URL: "unix://" + srv.sockPath() + "?db=1"})
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping over the unix socket: %v", err)
	}
	c := testChallenge(time.Now())
	if err := s.Create(t.Context(), c, c.Created); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if n, err := srv.client(t).Exists(t.Context(), DefaultKeyPrefix+"c:"+c.Token).Result(); err != nil || n != 0 {
		t.Fatalf("challenge in db 0: %d, %v; want it in db 1 only", n, err)
	}
}

var tokens atomic.Int64

func testChallenge(now time.Time) *store.Challenge {
	return &store.Challenge{
		Token:   fmt.Sprintf("00000000-0000-4000-8000-%012d", tokens.Add(1)),
		User:    "alice@example.com",
		IP:      "192.0.2.10",
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

// TestPollExactlyOnceAcrossInstances has three Stores, as three Caddy
// instances would, create on one, approve on another and poll from all
// three at once: exactly one poll gets the success.
func TestPollExactlyOnceAcrossInstances(t *testing.T) {
	srv := startRedis(t)
	prefix := uniquePrefix()
	var instances [3]*Store
	for i := range instances {
		instances[i] = newStore(t, Options{URL: srv.url(), KeyPrefix: prefix})
	}
	const pollers = 50
	for round := range 5 {
		now := time.Now()
		c := testChallenge(now)
		if err := instances[0].Create(t.Context(), c, now); err != nil {
			t.Fatalf("Create: %v", err)
		}
		approve(t, instances[1], c, now)

		start := make(chan struct{})
		var wg sync.WaitGroup
		var successes, unknowns atomic.Int64
		for i := range pollers {
			wg.Go(func() {
				<-start
				out, got, err := instances[i%3].Poll(t.Context(), c.Token, c.IP, true, now.Add(time.Second))
				switch {
				case err != nil:
					t.Errorf("poller %d: %v", i, err)
				case out == store.PollSuccess:
					successes.Add(1)
					if got == nil || got.Approver != "bob@example.com" || len(got.Groups) != 1 || got.User != c.User {
						t.Errorf("poller %d: success came with %+v", i, got)
					}
				case out == store.PollUnknown:
					unknowns.Add(1)
				default:
					t.Errorf("poller %d: %v, want success or unknown", i, out)
				}
			})
		}
		close(start)
		wg.Wait()
		if successes.Load() != 1 || unknowns.Load() != pollers-1 {
			t.Fatalf("round %d: %d successes and %d unknown of %d polls, want 1 and %d",
				round, successes.Load(), unknowns.Load(), pollers, pollers-1)
		}
		for i, s := range instances {
			if _, err := s.Get(t.Context(), c.Token, now); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("instance %d: Get after the success = %v, want ErrNotFound", i, err)
			}
		}
	}
}

// TestKeys checks the key layout and that Redis expires every key by itself.
func TestKeys(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.client(t)
	prefix := uniquePrefix()
	const grace = 30 * time.Second
	s := newStore(t, Options{URL: srv.url(), KeyPrefix: prefix, ExpiredGrace: grace, MaxLoginsPerClient: 5})
	ctx := t.Context()

	pttl := func(key string) time.Duration {
		t.Helper()
		d, err := rdb.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatalf("PTTL %s: %v", key, err)
		}
		return d
	}
	near := func(what string, got, want time.Duration) {
		t.Helper()
		if got > want || got < want-5*time.Second {
			t.Errorf("%s: PTTL %s, want about %s", what, got, want)
		}
	}
	wantType := func(key, want string) {
		t.Helper()
		if typ := rdb.Type(ctx, key).Val(); typ != want {
			t.Errorf("key %s has type %q, want %q", key, typ, want)
		}
	}

	// The key's life is counted from the "now" the caller passes, so a
	// challenge made "in the past" (as the conformance suite's are) lives
	// as long as one made now.
	for _, created := range []time.Time{time.Now(), time.Unix(1_000_000_000, 0)} {
		c := testChallenge(created)
		if err := s.Create(ctx, c, created); err != nil {
			t.Fatalf("Create: %v", err)
		}
		key := prefix + "c:" + c.Token
		near("new challenge", pttl(key), 2*time.Minute+grace)
		approve(t, s, c, created)
		near("approved challenge", pttl(key), 2*time.Minute+grace)
		wantType(key, "hash")
		if n := rdb.HLen(ctx, key).Val(); n != 13 {
			t.Errorf("approved challenge has %d fields, want 13: %v", n, rdb.HGetAll(ctx, key).Val())
		}
	}

	now := time.Now()
	l := &store.LoginState{RequestID: "id", Created: now, Client: "192.0.2.10"}
	if err := s.SaveLogin(ctx, "login-1", l, now.Add(5*time.Minute), now); err != nil {
		t.Fatalf("SaveLogin: %v", err)
	}
	near("login", pttl(prefix+"{l}:login-1"), 5*time.Minute)
	wantType(prefix+"{l}:login-1", "hash")
	near("client's logins", pttl(prefix+"{l}c:192.0.2.10"), 5*time.Minute)
	wantType(prefix+"{l}c:192.0.2.10", "zset")
	l.Client = ""
	if err := s.SaveLogin(ctx, "login-2", l, now.Add(time.Minute), now); err != nil {
		t.Fatalf("SaveLogin: %v", err)
	}
	near("login without a client", pttl(prefix+"{l}:login-2"), time.Minute)

	for _, step := range []struct {
		expires time.Duration
		want    time.Duration
		fresh   bool
	}{
		{time.Hour, time.Hour, true},
		{2 * time.Hour, 2 * time.Hour, false}, // a later expiry extends the mark
		{time.Minute, 2 * time.Hour, false},   // an earlier one does not shorten it
	} {
		now := time.Now()
		fresh, err := s.MarkOnce(ctx, "assertion-1", now.Add(step.expires), now)
		if err != nil || fresh != step.fresh {
			t.Fatalf("MarkOnce(+%s) = %v, %v, want %v", step.expires, fresh, err, step.fresh)
		}
		near("mark", pttl(prefix+"o:assertion-1"), step.want)
	}
	wantType(prefix+"o:assertion-1", "hash")
	now = time.Now()
	if fresh, err := s.MarkOnce(ctx, "assertion-2", now.Add(-time.Second), now); err != nil || !fresh {
		t.Errorf("MarkOnce(past, unknown key) = %v, %v, want true", fresh, err)
	}
	if n := rdb.Exists(ctx, prefix+"o:assertion-2").Val(); n != 0 {
		t.Errorf("MarkOnce with a past expiry recorded the key")
	}
	if fresh, err := s.MarkOnce(ctx, "assertion-1", now.Add(-time.Second), now); err != nil || fresh {
		t.Errorf("MarkOnce(past, recorded key) = %v, %v, want false", fresh, err)
	}

	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			t.Errorf("key %q outside the prefix %q", k, prefix)
		}
		if d := pttl(k); d < 0 {
			t.Errorf("key %q has no expiry", k)
		}
	}
}

// TestMarkLeftByEarlierVersion: a replay mark an earlier version wrote as a
// plain string still counts as recorded.
func TestMarkLeftByEarlierVersion(t *testing.T) {
	srv := startRedis(t)
	prefix := uniquePrefix()
	s := newStore(t, Options{URL: srv.url(), KeyPrefix: prefix})
	ctx := t.Context()
	if err := srv.client(t).Set(ctx, prefix+"o:old", "1", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if fresh, err := s.MarkOnce(ctx, "old", now.Add(time.Hour), now); err != nil || fresh {
		t.Errorf("MarkOnce of a mark left as a string = %v, %v, want false", fresh, err)
	}
}

// TestPrefixesShareNothing has two stores with different key prefixes on one
// server, as two sites would: neither sees the other's challenges, logins,
// per-client counts or replay marks.
func TestPrefixesShareNothing(t *testing.T) {
	srv := startRedis(t)
	a := newStore(t, Options{URL: srv.url(), KeyPrefix: uniquePrefix(), MaxLoginsPerClient: 1})
	b := newStore(t, Options{URL: srv.url(), KeyPrefix: uniquePrefix(), MaxLoginsPerClient: 1})
	ctx := t.Context()
	now := time.Now()

	c := testChallenge(now)
	if err := a.Create(ctx, c, now); err != nil {
		t.Fatalf("Create in a: %v", err)
	}
	if _, err := b.Get(ctx, c.Token, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("b.Get of a's challenge = %v, want ErrNotFound", err)
	}
	if err := b.Create(ctx, c, now); err != nil {
		t.Fatalf("Create of the same token in b: %v", err)
	}
	approve(t, a, c, now)
	if out, _, err := b.Poll(ctx, c.Token, c.IP, true, now); err != nil || out != store.PollPending {
		t.Errorf("b.Poll after a approved = %v, %v, want pending", out, err)
	}
	if err := b.Cancel(ctx, c.Token, now); err != nil {
		t.Fatalf("b.Cancel: %v", err)
	}
	if out, _, err := a.Poll(ctx, c.Token, c.IP, true, now); err != nil || out != store.PollSuccess {
		t.Errorf("a.Poll after b cancelled its own = %v, %v, want success", out, err)
	}

	l := &store.LoginState{RequestID: "req", Created: now, Client: "192.0.2.10"}
	if err := a.SaveLogin(ctx, "login", l, now.Add(time.Minute), now); err != nil {
		t.Fatalf("a.SaveLogin: %v", err)
	}
	if err := b.SaveLogin(ctx, "other", l, now.Add(time.Minute), now); err != nil {
		t.Errorf("b.SaveLogin for a client busy in a: %v", err)
	}
	if _, err := b.TakeLogin(ctx, "login", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("b.TakeLogin of a's login = %v, want ErrNotFound", err)
	}
	if _, err := a.TakeLogin(ctx, "login", now); err != nil {
		t.Errorf("a.TakeLogin: %v", err)
	}

	for _, s := range []*Store{a, b} {
		if fresh, err := s.MarkOnce(ctx, "assertion", now.Add(time.Hour), now); err != nil || !fresh {
			t.Errorf("MarkOnce of a key the other store marked = %v, %v, want true", fresh, err)
		}
	}
}

// TestExactTimes checks expiry and grace to the nanosecond, as the memory
// store compares them, across a millisecond boundary.
func TestExactTimes(t *testing.T) {
	srv := startRedis(t)
	const grace = 10 * time.Second
	s := newStore(t, Options{URL: srv.url(), KeyPrefix: uniquePrefix(), ExpiredGrace: grace})
	ctx := t.Context()
	base := time.Unix(1_800_000_000, 999_999) // just below a millisecond

	for _, tc := range []struct {
		at   time.Duration // after Expires
		want store.PollOutcome
	}{
		{0, store.PollPending},
		{time.Nanosecond, store.PollExpired},
		{grace, store.PollExpired},
		{grace + time.Nanosecond, store.PollUnknown},
	} {
		c := testChallenge(base)
		if err := s.Create(ctx, c, c.Created); err != nil {
			t.Fatal(err)
		}
		at := c.Expires.Add(tc.at)
		got, _, err := s.Poll(ctx, c.Token, c.IP, true, at)
		if err != nil || got != tc.want {
			t.Errorf("Poll at Expires%+v = %v, %v, want %v", tc.at, got, err, tc.want)
		}
		stored, err := s.Get(ctx, c.Token, at)
		switch {
		case tc.want == store.PollPending && err != nil:
			t.Errorf("Get: %v", err)
		case tc.want == store.PollPending && (!stored.Created.Equal(c.Created) || !stored.Expires.Equal(c.Expires)):
			t.Errorf("times came back as %s, %s, want %s, %s", stored.Created, stored.Expires, c.Created, c.Expires)
		case tc.want != store.PollPending && !errors.Is(err, store.ErrNotFound):
			t.Errorf("Get after %v = %v, want ErrNotFound", tc.want, err)
		}
	}

	zero := testChallenge(time.Time{})
	zero.Expires = time.Time{}
	if err := s.Create(ctx, zero, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, zero.Token, time.Time{}); err != nil || !got.Created.IsZero() || !got.Expires.IsZero() {
		t.Errorf("zero times came back as %+v, %v", got, err)
	}
}

// TestRedisDown stops the server in the middle of a flow: every call fails
// with ErrUnavailable in bounded time, and the same Store works again once
// the server is back.
func TestRedisDown(t *testing.T) {
	srv := startRedis(t)
	s := newStore(t, Options{URL: srv.url(), KeyPrefix: uniquePrefix()})
	ctx := t.Context()
	now := time.Now()
	c := testChallenge(now)
	if err := s.Create(ctx, c, c.Created); err != nil {
		t.Fatalf("Create: %v", err)
	}
	approve(t, s, c, now)

	srv.stop()
	// Each call twice at once, to see that concurrent callers are bounded too.
	expectAllUnavailable(t, "Redis down", storeCalls(s, c, now), 2)

	srv.start()
	recovered := waitFor(t, 10*time.Second, func() error { return s.Ping(ctx) })
	t.Logf("the store recovered %s after the restart", recovered.Round(time.Millisecond))
	// The restarted server kept nothing; the flow works again from the start.
	if out, _, err := s.Poll(ctx, c.Token, c.IP, true, now); err != nil || out != store.PollUnknown {
		t.Fatalf("Poll of a challenge lost with the restart = %v, %v, want unknown", out, err)
	}
	c = testChallenge(now)
	if err := s.Create(ctx, c, c.Created); err != nil {
		t.Fatalf("Create after the restart: %v", err)
	}
	approve(t, s, c, now)
	if out, _, err := s.Poll(ctx, c.Token, c.IP, true, now); err != nil || out != store.PollSuccess {
		t.Fatalf("Poll after the restart = %v, %v, want success", out, err)
	}
}

// expectAllUnavailable runs every call copies times at once and checks that
// each fails with ErrUnavailable within a bound (no hang).
func expectAllUnavailable(t *testing.T, state string, calls map[string]func(context.Context) error, copies int) {
	t.Helper()
	var wg sync.WaitGroup
	for name, call := range calls {
		for range copies {
			wg.Go(func() {
				start := time.Now()
				err := call(t.Context())
				took := time.Since(start)
				if !errors.Is(err, store.ErrUnavailable) {
					t.Errorf("%s with %s = %v, want ErrUnavailable", name, state, err)
				}
				if took > 10*time.Second {
					t.Errorf("%s with %s took %s", name, state, took)
				}
				t.Logf("%s with %s: %s after %s", name, state, err, took.Round(time.Millisecond))
			})
		}
	}
	wg.Wait()
}

// storeCalls returns one call of each method of s.
func storeCalls(s *Store, c *store.Challenge, now time.Time) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"Ping":   s.Ping,
		"Create": func(ctx context.Context) error { return s.Create(ctx, testChallenge(now), now) },
		"Get": func(ctx context.Context) error {
			_, err := s.Get(ctx, c.Token, now)
			return err
		},
		"View": func(ctx context.Context) error {
			_, err := s.View(ctx, c.Token, "n", now)
			return err
		},
		"Approve": func(ctx context.Context) error {
			return s.Approve(ctx, c.Token, "n", store.Approval{Approver: "bob@example.com"}, now)
		},
		"Cancel": func(ctx context.Context) error {
			return s.Cancel(ctx, c.Token, now)
		},
		"Poll": func(ctx context.Context) error {
			_, _, err := s.Poll(ctx, c.Token, c.IP, true, now)
			return err
		},
		"SaveLogin": func(ctx context.Context) error {
			return s.SaveLogin(ctx, "l", &store.LoginState{Created: now, Client: "192.0.2.10"}, now.Add(time.Minute), now)
		},
		"TakeLogin": func(ctx context.Context) error {
			_, err := s.TakeLogin(ctx, "l", now)
			return err
		},
		"MarkOnce": func(ctx context.Context) error {
			_, err := s.MarkOnce(ctx, "k", now.Add(time.Minute), now)
			return err
		},
	}
}

// waitFor calls f until it succeeds and returns how long that took.
func waitFor(t *testing.T, limit time.Duration, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := f()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("still failing after %s: %v", limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestNewDoesNotConnect(t *testing.T) {
	const secret = "s3cr3t-pw"
	url := "redis://user:" + secret + "@" + net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))) + "/0"
	start := time.Now()
	s, err := New(Options{URL: url})
	if err != nil {
		t.Fatalf("New with nothing listening: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if took := time.Since(start); took > time.Second {
		t.Errorf("New took %s", took)
	}
	for _, call := range []func() error{
		func() error { return s.Ping(t.Context()) },
		func() error { _, _, err := s.Poll(t.Context(), "t", "ip", true, time.Now()); return err },
	} {
		err := call()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("call with nothing listening = %v, want ErrUnavailable", err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q shows the password", err)
		}
	}
}

func TestNewBadOptions(t *testing.T) {
	const secret = "s3cr3t-pw"
	for _, opts := range []Options{
		{URL: "redis://user:" + secret + "@host:notaport/0"},
		{URL: "redis://user:" + secret + "@[::1/0"},
		{URL: "redis://user:" + secret + "%zz@host/0"},
		{URL: "redis://user:" + secret + "@host:6379/0?password=" + secret},
		{URL: "user:" + secret + "@host:6379"},
		{URL: "http://user:" + secret + "@host/0"},
		{URL: "redis://user:" + secret + "@host/notadb"},
		{URL: "redis://user:" + secret + "@host/0?bogus=1"},
		{URL: "redis://user:" + secret + "@host/0?dial_timeout=forever"},
		{URL: "unix://user:" + secret + "@"},
		{URL: "redis://host/0", Password: secret, InsecureSkipVerify: true},
		{URL: "redis://host/0", Password: secret, ReadTimeout: -time.Second},
		{URL: "redis://host/0", Password: secret, PoolSize: -1},
	} {
		s, err := New(opts)
		if err == nil {
			_ = s.Close()
			t.Errorf("New(%+v) succeeded", opts)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("New(%+v) error %q shows the password", opts, err)
		}
		t.Logf("%q: %v", opts.URL, err)
		if errors.Is(err, store.ErrUnavailable) {
			t.Errorf("New(%+v) error %q is ErrUnavailable, want a configuration error", opts, err)
		}
	}
}

func TestNewOptions(t *testing.T) {
	for _, tc := range []struct {
		opts  Options
		check func(*redis.Options) error
	}{
		{Options{}, func(o *redis.Options) error {
			if o.Addr != "127.0.0.1:6379" || o.DialTimeout != DefaultDialTimeout ||
				o.ReadTimeout != DefaultReadTimeout || o.WriteTimeout != DefaultWriteTimeout ||
				o.MaxRetries != 0 || o.TLSConfig != nil || !o.ContextTimeoutEnabled {
				return errors.New("defaults not applied")
			}
			return nil
		}},
		{Options{URL: "redis://u:p@h:1/2?read_timeout=3s&max_retries=2", Username: "v", Password: "q", WriteTimeout: 5 * time.Second}, func(o *redis.Options) error {
			if o.Username != "v" || o.Password != "q" || o.DB != 2 || o.ReadTimeout != 3*time.Second ||
				o.WriteTimeout != 5*time.Second || o.MaxRetries != 2 {
				return errors.New("URL and overrides not combined")
			}
			return nil
		}},
		{Options{URL: "redis://us%40er:p@ss/w?rd#x%25@host:6380/2"}, func(o *redis.Options) error {
			if o.Username != "us@er" || o.Password != "p@ss/w?rd#x%" || o.Addr != "host:6380" || o.DB != 2 {
				return errors.New("user info not taken out")
			}
			return nil
		}},
		{Options{URL: "unix://:pw@/run/redis.sock"}, func(o *redis.Options) error {
			if o.Username != "" || o.Password != "pw" || o.Addr != "/run/redis.sock" {
				return errors.New("user info not taken out")
			}
			return nil
		}},
		{Options{URL: "rediss://cache.example.com:6380", InsecureSkipVerify: true}, func(o *redis.Options) error {
			if o.TLSConfig == nil || o.TLSConfig.ServerName != "cache.example.com" || !o.TLSConfig.InsecureSkipVerify {
				return errors.New("TLS not set up")
			}
			return nil
		}},
		{Options{URL: "redis://cache.example.com:6380", TLS: true}, func(o *redis.Options) error {
			if o.TLSConfig == nil || o.TLSConfig.ServerName != "cache.example.com" || o.TLSConfig.InsecureSkipVerify {
				return errors.New("TLS not set up")
			}
			return nil
		}},
		{Options{URL: "unix:///run/redis.sock?db=3", PoolSize: 7}, func(o *redis.Options) error {
			if o.Network != "unix" || o.Addr != "/run/redis.sock" || o.DB != 3 || o.PoolSize != 7 {
				return errors.New("unix socket not set up")
			}
			return nil
		}},
	} {
		s := newStore(t, tc.opts)
		if err := tc.check(s.rdb.Options()); err != nil {
			t.Errorf("New(%+v): %v: %+v", tc.opts, err, s.rdb.Options())
		}
	}
	s := newStore(t, Options{})
	if s.keys.prefix != DefaultKeyPrefix || s.grace != DefaultExpiredGrace || s.perClient != 0 {
		t.Errorf("prefix %q grace %s logins per client %d, want the defaults", s.keys.prefix, s.grace, s.perClient)
	}
	if s := newStore(t, Options{ExpiredGrace: -1}); s.grace != 0 {
		t.Errorf("negative grace gave %s, want 0", s.grace)
	}
}

func TestClosed(t *testing.T) {
	srv := startRedis(t)
	s := mustNew(t, Options{URL: srv.url(), KeyPrefix: uniquePrefix()})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	now := time.Now()
	for name, call := range storeCalls(s, testChallenge(now), now) {
		if err := call(t.Context()); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s after Close = %v, want ErrUnavailable", name, err)
		}
	}
}

// TestOutOfMemory checks that Create reports ErrFull when Redis refuses
// writes for lack of memory, and that the rest of the flow is unaffected.
func TestOutOfMemory(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.client(t)
	s := newStore(t, Options{URL: srv.url(), KeyPrefix: uniquePrefix(), MaxLoginsPerClient: 1})
	ctx := t.Context()
	now := time.Now()
	c := testChallenge(now)
	if err := s.Create(ctx, c, c.Created); err != nil {
		t.Fatal(err)
	}
	if _, err := s.View(ctx, c.Token, "nonce", now); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	err := s.Create(ctx, testChallenge(now), now)
	if !errors.Is(err, store.ErrFull) {
		t.Errorf("Create with Redis out of memory = %v, want ErrFull", err)
	}
	t.Logf("Create with Redis out of memory: %v", err)
	err = s.Approve(ctx, c.Token, "nonce", store.Approval{Approver: "bob@example.com", Groups: []string{"admins"}, AuthTime: now}, now)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Approve with Redis out of memory = %v, want ErrUnavailable", err)
	}
	if got, err := s.Get(ctx, c.Token, now); err != nil || got.Status != store.StatusPending || got.Approver != "" || len(got.Groups) != 0 {
		t.Errorf("a refused Approve changed the challenge: %+v, %v", got, err)
	}
	if out, _, err := s.Poll(ctx, c.Token, c.IP, true, now); err != nil || out != store.PollPending {
		t.Errorf("Poll with Redis out of memory = %v, %v, want pending", out, err)
	}
	// A refused login leaves nothing behind: neither the login nor a count
	// against its client.
	l := &store.LoginState{RequestID: "req", Created: now, Client: "192.0.2.10"}
	err = s.SaveLogin(ctx, "login", l, now.Add(time.Minute), now)
	if !errors.Is(err, store.ErrFull) {
		t.Errorf("SaveLogin with Redis out of memory = %v, want ErrFull", err)
	}
	if _, err := s.TakeLogin(ctx, "login", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TakeLogin of a refused login = %v, want ErrNotFound", err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveLogin(ctx, "login", l, now.Add(time.Minute), now); err != nil {
		t.Errorf("SaveLogin once memory is back, with a bound of one per client: %v", err)
	}
	if err := s.Create(ctx, testChallenge(now), now); err != nil {
		t.Errorf("Create once memory is back: %v", err)
	}
}

func BenchmarkCreate(b *testing.B) {
	srv := startRedis(b)
	s := newStore(b, Options{URL: srv.url(), KeyPrefix: uniquePrefix()})
	ctx := context.Background()
	c := testChallenge(time.Now())
	prefix := c.Token[:24]
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Token = prefix + strconv.Itoa(i)
		if err := s.Create(ctx, c, c.Created); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPollPending(b *testing.B) {
	srv := startRedis(b)
	s := newStore(b, Options{URL: srv.url(), KeyPrefix: uniquePrefix()})
	ctx := context.Background()
	now := time.Now()
	c := testChallenge(now)
	if err := s.Create(ctx, c, c.Created); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		out, _, err := s.Poll(ctx, c.Token, c.IP, true, now)
		if err != nil || out != store.PollPending {
			b.Fatal(out, err)
		}
	}
}
