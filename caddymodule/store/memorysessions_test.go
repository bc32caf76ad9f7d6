package store_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/storetest"
)

func TestMemorySessionsConformance(t *testing.T) {
	storetest.RunSessions(t, func(*testing.T) (store.SessionStore, store.SessionStore) {
		m := store.NewMemorySessions()
		return m, m
	})
}

// TestMemorySessionsWatcherCallsStore: a watcher's function may call the
// store, revocations included, and a watcher that has not yet taken its
// events does not hold up Revoke.
func TestMemorySessionsWatcherCallsStore(t *testing.T) {
	m := store.NewMemorySessions()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	base := time.Unix(1_800_000_000, 0)
	events := make(chan store.RevocationEvent, 10)
	release := make(chan struct{})
	inReload := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Watch(ctx, func(e store.RevocationEvent) {
			if e.Reload() {
				inReload <- struct{}{}
			}
			<-release
			if e.Revoked != nil && e.Revoked.Subject == "first" {
				// In reply to one revocation, another.
				rv := store.Revocation{Kind: store.RevokeSession, Subject: "second", At: base, Expires: base.Add(time.Hour)}
				if err := m.Revoke(context.Background(), rv, base); err != nil {
					t.Errorf("Revoke from the watcher: %v", err)
				}
			}
			events <- e
		})
	}()
	// The watcher is stuck in its reload: Revoke returns all the same.
	<-inReload
	revoked := make(chan error, 1)
	go func() {
		revoked <- m.Revoke(t.Context(), store.Revocation{Kind: store.RevokeSession, Subject: "first", At: base, Expires: base.Add(time.Hour)}, base)
	}()
	select {
	case err := <-revoked:
		if err != nil {
			t.Fatalf("Revoke: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Revoke waited for a busy watcher")
	}
	close(release)
	var got []string
	for len(got) < 3 {
		select {
		case e := <-events:
			if e.Reload() {
				got = append(got, "reload")
			} else {
				got = append(got, e.Revoked.Subject)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("events %q, then none within 10s (a watcher that revokes must not deadlock)", got)
		}
	}
	if want := []string{"reload", "first", "second"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	cancel()
	<-done
}

// TestMemorySessionsSize measures the heap a recorded session and a
// revocation take, and keeps it within a generous bound.
func TestMemorySessionsSize(t *testing.T) {
	const n = 100_000
	base := time.Unix(1_800_000_000, 0)
	perSession := heapPer(t, n, func(m *store.MemorySessions, i int) {
		s := &store.Session{
			ID:      fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i),
			User:    fmt.Sprintf("user%06d@example.com", i/10), // 10 sessions a user
			Method:  "saml",
			IP:      "192.0.2.10",
			Created: base.Add(time.Duration(i) * time.Millisecond),
			Expires: base.Add(12 * time.Hour),
		}
		if err := m.RecordSession(context.Background(), s, 10, base); err != nil {
			t.Fatal(err)
		}
	})
	perRevocation := heapPer(t, n, func(m *store.MemorySessions, i int) {
		rv := store.Revocation{Kind: store.RevokeSession, Subject: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i),
			At: base, Expires: base.Add(12 * time.Hour)}
		if err := m.Revoke(context.Background(), rv, base); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("memory store: %.0f bytes per recorded session, %.0f bytes per revocation (heap growth over %d records)",
		perSession, perRevocation, n)
	if perSession > 2048 || perRevocation > 1024 {
		t.Errorf("%.0f bytes per session (bound 2048), %.0f per revocation (bound 1024)", perSession, perRevocation)
	}
}

// heapPer returns the heap growth per record of n calls of add on a new
// store.
func heapPer(t *testing.T, n int, add func(m *store.MemorySessions, i int)) float64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := store.NewMemorySessions()
	for i := range n {
		add(m, i)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(m)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}
