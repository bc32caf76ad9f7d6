package redisstore

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// TestConcurrentCreatesShareRoundTrips: creates sent at once (and so batched
// into shared pipelines) each get their own answer: every distinct token is
// stored with its own fields, and of several creates of one token exactly
// one wins.
func TestConcurrentCreatesShareRoundTrips(t *testing.T) {
	srv := startRedis(t)
	s := newStore(t, Options{URL: srv.url(), KeyPrefix: uniquePrefix()})
	ctx := t.Context()
	now := time.Now()
	var wg sync.WaitGroup
	distinct := make([]*store.Challenge, 200)
	errs := make([]error, len(distinct))
	for i := range distinct {
		distinct[i] = testChallenge(now)
		distinct[i].User = distinct[i].Token + "@example.com"
		wg.Add(1)
		go func(i int) { defer wg.Done(); errs[i] = s.Create(ctx, distinct[i], now) }(i)
	}
	dup := testChallenge(now)
	var mu sync.Mutex
	wins, exists := 0, 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Create(ctx, dup, now)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, store.ErrExists):
				exists++
			default:
				t.Errorf("duplicate create: %v", err)
			}
		}()
	}
	wg.Wait()
	for i, c := range distinct {
		if errs[i] != nil {
			t.Fatalf("create %d: %v", i, errs[i])
		}
		got, err := s.Get(ctx, c.Token, now)
		if err != nil || got.User != c.User {
			t.Fatalf("challenge %d came back as %+v, %v", i, got, err)
		}
	}
	if wins != 1 || exists != 19 {
		t.Errorf("duplicate creates: %d won, %d refused; want 1 and 19", wins, exists)
	}
}

// TestCreateAfterClose: a closed store refuses at once instead of hanging.
func TestCreateAfterClose(t *testing.T) {
	srv := startRedis(t)
	s := mustNew(t, Options{URL: srv.url(), KeyPrefix: uniquePrefix()})
	_ = s.Close()
	done := make(chan error, 1)
	go func() { done <- s.Create(t.Context(), testChallenge(time.Now()), time.Now()) }()
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("create after close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("create after close hangs")
	}
}
