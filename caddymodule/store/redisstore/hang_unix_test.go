//go:build unix

package redisstore

import (
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// TestRedisHung freezes the server (SIGSTOP): connections are still
// accepted by the kernel but nothing answers, as with an overloaded Redis.
// Every call must fail with ErrUnavailable after about the timeouts, and the
// store must work again once the server resumes.
func TestRedisHung(t *testing.T) {
	srv := startRedis(t)
	s := newStore(t, Options{URL: srv.url(), KeyPrefix: uniquePrefix()})
	ctx := t.Context()
	now := time.Now()
	c := testChallenge(now)
	if err := s.Create(ctx, c); err != nil {
		t.Fatalf("Create: %v", err)
	}

	srv.mu.Lock()
	proc := srv.cmd.Process
	srv.mu.Unlock()
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP: %v", err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := proc.Signal(syscall.SIGCONT); err != nil {
				t.Errorf("SIGCONT: %v", err)
			}
		}
	}
	t.Cleanup(resume)

	var wg sync.WaitGroup
	for name, call := range storeCalls(s, c, now) {
		wg.Go(func() {
			start := time.Now()
			err := call(ctx)
			took := time.Since(start)
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%s with Redis hung = %v, want ErrUnavailable", name, err)
			}
			if took > 10*time.Second {
				t.Errorf("%s with Redis hung took %s", name, took)
			}
			t.Logf("%s with Redis hung: %s after %s", name, err, took.Round(time.Millisecond))
		})
	}
	wg.Wait()

	resume()
	recovered := waitFor(t, 10*time.Second, func() error { return s.Ping(ctx) })
	t.Logf("the store recovered %s after the server resumed", recovered.Round(time.Millisecond))
	if _, err := s.Get(ctx, c.Token); err != nil {
		t.Errorf("Get after the server resumed: %v", err)
	}
}
