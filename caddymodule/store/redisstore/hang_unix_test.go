//go:build unix

package redisstore

import (
	"syscall"
	"testing"
	"time"
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
	if err := s.Create(ctx, c, c.Created); err != nil {
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

	expectAllUnavailable(t, "Redis hung", storeCalls(s, c, now), 1)

	resume()
	recovered := waitFor(t, 10*time.Second, func() error { return s.Ping(ctx) })
	t.Logf("the store recovered %s after the server resumed", recovered.Round(time.Millisecond))
	if _, err := s.Get(ctx, c.Token, now); err != nil {
		t.Errorf("Get after the server resumed: %v", err)
	}
}
