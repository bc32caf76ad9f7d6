package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// BenchmarkSessionsRecord records sessions of 1000 users, bound 10 per
// user: once every user has 10, each record also drops the oldest.
func BenchmarkSessionsRecord(b *testing.B) {
	srv := startRedis(b)
	ss := newStore(b, Options{URL: srv.url()}).Sessions(uniquePrefix())
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s := benchSession(i, now)
		if err := ss.RecordSession(ctx, s, 10, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSessionsRecordParallel(b *testing.B) {
	srv := startRedis(b)
	ss := newStore(b, Options{URL: srv.url()}).Sessions(uniquePrefix())
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s := benchSession(int(tokens.Add(1)), now)
			if err := ss.RecordSession(ctx, s, 10, now); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func benchSession(i int, now time.Time) *store.Session {
	return &store.Session{ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), User: fmt.Sprintf("user%04d@example.com", i%1000),
		Method: "saml", IP: "192.0.2.10", Created: now.Add(time.Duration(i)), Expires: now.Add(12 * time.Hour)}
}

// BenchmarkSessionsRevoke revokes distinct sessions, with one watcher
// subscribed (as one Caddy instance would be).
func BenchmarkSessionsRevoke(b *testing.B) {
	srv := startRedis(b)
	prefix := uniquePrefix()
	ss := newStore(b, Options{URL: srv.url()}).Sessions(prefix)
	benchWatcher(b, newStore(b, Options{URL: srv.url()}).Sessions(prefix))
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rv := store.Revocation{Kind: store.RevokeSession, Subject: "sid" + strconv.Itoa(i), At: now, Expires: now.Add(12 * time.Hour)}
		if err := ss.Revoke(ctx, rv, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionsRevocations10k is one reload of 10,000 revocations.
func BenchmarkSessionsRevocations10k(b *testing.B) {
	srv := startRedis(b)
	ss := newStore(b, Options{URL: srv.url()}).Sessions(uniquePrefix())
	ctx := context.Background()
	now := time.Now()
	for i := range 10_000 {
		rv := store.Revocation{Kind: store.RevokeSession, Subject: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), At: now, Expires: now.Add(12 * time.Hour)}
		if err := ss.Revoke(ctx, rv, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		list, err := ss.Revocations(ctx, now)
		if err != nil || len(list) != 10_000 {
			b.Fatal(len(list), err)
		}
	}
}

// benchWatcher drains the events of a watcher of s until the benchmark ends.
func benchWatcher(b *testing.B, s store.SessionStore) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ready := make(chan struct{}, 1)
	go func() {
		defer close(done)
		s.Watch(ctx, func(e store.RevocationEvent) {
			if e.Reload() {
				select {
				case ready <- struct{}{}:
				default:
				}
			}
		})
	}()
	<-ready
	b.Cleanup(func() { cancel(); <-done })
}

// TestSessionsRedisMemory measures what Redis holds per recorded session
// and per revocation (used_memory before and after 20,000 of each) and
// logs it; the bound checked is generous.
func TestSessionsRedisMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("records 40,000 entries")
	}
	srv := startRedis(t)
	rdb := srv.client(t)
	ctx := t.Context()
	used := func() int64 {
		t.Helper()
		info, err := rdb.Info(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		t.Fatal("no used_memory in INFO")
		return 0
	}
	const n = 20_000
	now := time.Now()
	ss := newStore(t, Options{URL: srv.url()}).Sessions(uniquePrefix())
	before := used()
	for i := range n {
		if err := ss.RecordSession(ctx, benchSession(i, now), 20, now); err != nil {
			t.Fatal(err)
		}
	}
	perSession := float64(used()-before) / n
	before = used()
	for i := range n {
		// Sessions nobody recorded: nothing is dropped.
		rv := store.Revocation{Kind: store.RevokeSession, Subject: fmt.Sprintf("%08x-0000-4000-9000-%012x", i, i), At: now, Expires: now.Add(12 * time.Hour)}
		if err := ss.Revoke(ctx, rv, now); err != nil {
			t.Fatal(err)
		}
	}
	perRevocation := float64(used()-before) / n
	t.Logf("Redis: %.0f bytes per recorded session (20 per user), %.0f bytes per revocation (used_memory over %d each)",
		perSession, perRevocation, n)
	if perSession > 4096 || perRevocation > 2048 {
		t.Errorf("%.0f bytes per session (bound 4096), %.0f per revocation (bound 2048)", perSession, perRevocation)
	}
}
