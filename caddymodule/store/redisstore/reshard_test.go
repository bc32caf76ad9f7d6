package redisstore

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/redisstore/redistest"
)

// TestClusterResharding moves the slots of live challenges from one master
// to another while twelve pollers on two instances poll them: slots marked
// migrating and importing, their keys MIGRATEd, the slots handed over a
// while later. Redirected calls (ASK during the move, MOVED after it) are
// followed, so: at most one poll per poller fails, no success is handed out
// twice, none is lost, challenges approved before and during the move are
// collected, challenges created during it land on the new master, and the
// pending ones are still pending there.
func TestClusterResharding(t *testing.T) {
	cl := redistest.StartClusterReplicas(t, 3, 1)
	opts := Options{ClusterAddrs: cl.Addrs, KeyPrefix: uniquePrefix()}
	a, b := newStore(t, opts), newStore(t, opts)
	ctx := t.Context()
	owner := cl.Layout(t)
	from, to := cl.Masters[0], cl.Masters[1]

	// Challenges on from: approved before the move (first polled once
	// their keys have moved), approved while their slots move, pending
	// throughout.
	now := time.Now()
	mine := func() *store.Challenge {
		for {
			if c := testChallenge(now); owner(a.keys.challenge(c.Token)) == from {
				if err := a.Create(ctx, c, now); err != nil {
					t.Fatalf("Create: %v", err)
				}
				return c
			}
		}
	}
	var early, during, pending []*store.Challenge
	for range 4 {
		c := mine()
		approve(t, a, c, now)
		early = append(early, c)
		during = append(during, mine())
		pending = append(pending, mine())
	}
	var slots []int
	for _, c := range slices.Concat(early, during, pending) {
		if s := redistest.KeySlot(a.keys.challenge(c.Token)); !slices.Contains(slots, s) {
			slots = append(slots, s)
		}
	}

	// Twelve pollers, six on each instance, each over the tokens polled so
	// far; an unavailable answer is counted per poller.
	var mu sync.Mutex
	polled := tokensOf(slices.Concat(during, pending))
	handed := map[string]int{}
	failed := make([]int, 12)
	var lastErr error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range failed {
		s := []*Store{a, b}[i%2]
		wg.Go(func() {
			for round := 0; ; round++ {
				mu.Lock()
				tokens := polled
				mu.Unlock()
				for j := range tokens {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
					tok := tokens[(j+i+round)%len(tokens)]
					out, _, err := s.Poll(context.Background(), tok, testIP, true, time.Now())
					mu.Lock()
					switch {
					case err != nil:
						failed[i]++
						lastErr = err
					case out == store.PollSuccess:
						handed[tok]++
					}
					mu.Unlock()
				}
			}
		})
	}
	stopPollers := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopPollers()

	time.Sleep(100 * time.Millisecond)
	for _, slot := range slots {
		redistest.BeginMove(t, slot, from, to)
	}
	time.Sleep(200 * time.Millisecond)
	moved := 0
	for _, slot := range slots {
		moved += redistest.MigrateKeys(t, slot, from, to)
	}
	if moved < len(early)+len(during)+len(pending) {
		t.Fatalf("moved %d keys, want at least %d", moved, len(early)+len(during)+len(pending))
	}
	// The keys are on to, their slots not yet handed over: every call for
	// them is redirected with ASK.
	mu.Lock()
	polled = append(polled, tokensOf(early)...)
	mu.Unlock()
	for _, c := range during {
		approve(t, b, c, now)
	}
	// New challenges in the moving slots: the creates go in pipelines
	// (batch.go), redirected with ASK too.
	for len(pending) < 6 {
		c := testChallenge(now)
		if !slices.Contains(slots, redistest.KeySlot(a.keys.challenge(c.Token))) {
			continue
		}
		if err := b.Create(ctx, c, now); err != nil {
			t.Fatalf("Create in a migrating slot: %v", err)
		}
		pending = append(pending, c)
	}
	time.Sleep(2 * time.Second)
	for _, slot := range slots {
		redistest.EndMove(t, slot, from, to, cl.Masters[2])
	}
	// Then MOVED, until the instances have learnt the new layout.
	redistest.Eventually(t, 10*time.Second, "the approved challenges collected", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range slices.Concat(early, during) {
			if handed[c.Token] == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond) // the collected ones polled again
	stopPollers()

	mu.Lock()
	defer mu.Unlock()
	for i, n := range failed {
		if n > 1 {
			t.Errorf("poller %d: %d polls failed, want at most one (last: %v)", i, n, lastErr)
		}
	}
	for _, c := range slices.Concat(early, during) {
		if n := handed[c.Token]; n != 1 {
			t.Errorf("challenge %s handed out %d times, want once", c.Token, n)
		}
	}
	for _, c := range pending {
		if n := handed[c.Token]; n != 0 {
			t.Errorf("pending challenge %s handed out %d times", c.Token, n)
		}
		if o := cl.Owner(t, a.keys.challenge(c.Token)); o != to {
			t.Errorf("challenge %s is served by %s, want the new master %s", c.Token, o.Addr, to.Addr)
		}
		if st, err := to.Client(t).HGet(ctx, a.keys.challenge(c.Token), "s").Result(); st != "pending" {
			t.Errorf("challenge %s on the new master: status %q (%v), want pending", c.Token, st, err)
		}
		for _, s := range []*Store{a, b} {
			if out, _, err := s.Poll(ctx, c.Token, testIP, true, time.Now()); out != store.PollPending || err != nil {
				t.Errorf("challenge %s after the move: %v, %v, want pending", c.Token, out, err)
			}
		}
	}
	if errors.Is(lastErr, store.ErrUnavailable) {
		t.Logf("a failed poll: %v", lastErr)
	}
}
