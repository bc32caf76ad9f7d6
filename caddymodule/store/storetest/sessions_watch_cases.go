package storetest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// The cases of RunSessions on Watch.

// testWatchEvents: a watcher of a hears of every Revoke and Unblock, made
// through b (another instance) or a, in order, each revocation as stored
// (merged with the earlier record).
func testWatchEvents(t *testing.T, a, b store.SessionStore) {
	w := startWatch(t, a, nil)
	if e := w.next(t, true); !e.Reload() {
		t.Fatalf("first event %s, want reload", describe(e))
	}
	// A second watcher, on the other object.
	w2 := startWatch(t, b, nil)
	if e := w2.next(t, true); !e.Reload() {
		t.Fatalf("second watcher's first event %s, want reload", describe(e))
	}

	now := base
	session := store.Revocation{Kind: store.RevokeSession, Subject: newToken(), At: now, Expires: now.Add(time.Hour)}
	user := store.Revocation{Kind: store.RevokeUser, Subject: alice, At: now, Expires: now.Add(time.Hour), Except: "kept"}
	block := store.Revocation{Kind: store.RevokeBlock, Subject: bob, At: now, Expires: now.Add(time.Hour)}
	earlier := store.Revocation{Kind: store.RevokeUser, Subject: alice, At: now.Add(-time.Minute), Expires: now.Add(2 * time.Hour),
		Except: "dropped"}
	merged := store.Revocation{Kind: store.RevokeUser, Subject: alice, At: now, Expires: now.Add(2 * time.Hour), Except: "kept"}

	mustRevoke(t, b, session, now)
	mustRevoke(t, b, user, now)
	mustRevoke(t, b, block, now)
	mustRevoke(t, a, earlier, now)
	if err := b.Unblock(t.Context(), bob, now); err != nil {
		t.Fatalf("Unblock: %v", err)
	}
	for _, w := range []*watcher{w, w2} {
		wantRevoked(t, w.next(t, false), session)
		wantRevoked(t, w.next(t, false), user)
		wantRevoked(t, w.next(t, false), block)
		wantRevoked(t, w.next(t, false), merged)
		if e := w.next(t, false); e.Unblocked != bob || e.Revoked != nil {
			t.Errorf("event %s, want unblocked %s", describe(e), bob)
		}
	}
	// An invalid revocation tells nobody anything.
	if err := b.Revoke(t.Context(), store.Revocation{Kind: "nonsense", Subject: alice, At: now, Expires: now}, now); err == nil {
		t.Fatal("Revoke of an unknown kind: no error")
	}
	mustRevoke(t, b, session, now)
	wantRevoked(t, w.next(t, false), session)
}

// testWatchReloadSeesEarlier: what was revoked before the watch began is
// there when the first reload event asks for a reload.
func testWatchReloadSeesEarlier(t *testing.T, a, b store.SessionStore) {
	rv := store.Revocation{Kind: store.RevokeUser, Subject: alice, At: base, Expires: base.Add(time.Hour)}
	mustRevoke(t, b, rv, base)
	var seen atomic.Bool
	w := startWatch(t, a, func(e store.RevocationEvent) {
		if !e.Reload() {
			return
		}
		list, err := a.Revocations(context.Background(), base)
		if err != nil {
			t.Errorf("Revocations from the watcher: %v", err)
			return
		}
		for _, r := range list {
			if sameRevocation(r, rv) {
				seen.Store(true)
			}
		}
	})
	if e := w.next(t, true); !e.Reload() {
		t.Fatalf("first event %s, want reload", describe(e))
	}
	if !seen.Load() {
		t.Error("the reload at the start of the watch did not see the earlier revocation")
	}
}

// testWatchEndsWithContext: Watch returns when its context ends, also when
// it has ended before the call, and calls its function no more.
func testWatchEndsWithContext(t *testing.T, s store.SessionStore) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(ctx, func(store.RevocationEvent) {})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch with an ended context did not return within 10s")
	}

	w := startWatch(t, s, nil)
	w.next(t, true)
	w.stop(t)
	mustRevoke(t, s, store.Revocation{Kind: store.RevokeBlock, Subject: alice, At: base, Expires: base.Add(time.Hour)}, base)
	select {
	case e := <-w.events:
		t.Errorf("event %s after Watch returned", describe(e))
	default:
	}
}

// testWatchConcurrentRevokes: revocations made at once through both
// objects each reach the watcher once.
func testWatchConcurrentRevokes(t *testing.T, a, b store.SessionStore) {
	w := startWatch(t, a, nil)
	w.next(t, true)
	const n = 20
	subjects := make([]string, n)
	for i := range subjects {
		subjects[i] = newToken()
	}
	race(n, func(i int) {
		s := a
		if i%2 == 1 {
			s = b
		}
		rv := store.Revocation{Kind: store.RevokeSession, Subject: subjects[i], At: base, Expires: base.Add(time.Hour)}
		if err := s.Revoke(t.Context(), rv, base); err != nil {
			t.Errorf("Revoke %d: %v", i, err)
		}
	})
	seen := map[string]int{}
	for range n {
		e := w.next(t, false)
		if e.Revoked == nil {
			t.Fatalf("event %s, want a revocation", describe(e))
		}
		seen[e.Revoked.Subject]++
	}
	for _, s := range subjects {
		if seen[s] != 1 {
			t.Errorf("revocation of %s heard %d times, want once", s, seen[s])
		}
	}
}
