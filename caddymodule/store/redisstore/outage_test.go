package redisstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

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
