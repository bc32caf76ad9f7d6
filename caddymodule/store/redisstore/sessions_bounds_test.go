package redisstore

import (
	"errors"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/redisstore/redistest"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/storetest"
)

// TestSessionsKeys checks the layout of the keys, that every key lives in
// one Cluster slot, that Redis expires every key by itself, and that the
// bounds hold in Redis itself: the per-user bound drops the records, and a
// write forgets the expired revocations.
func TestSessionsKeys(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.client(t)
	ctx := t.Context()
	prefix := uniquePrefix() + "s:"
	ss := newStore(t, Options{URL: srv.url()}).Sessions(prefix)
	g := newSessionKeys(prefix).group
	if !strings.HasPrefix(g, prefix+"{") || !strings.HasSuffix(g, "}") || len(g) != len(prefix)+18 {
		t.Fatalf("group %q, want %q+\"{\"+16 hex digits+\"}\"", g, prefix)
	}
	pttl := func(key string) time.Duration {
		t.Helper()
		d, err := rdb.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatalf("PTTL %s: %v", key, err)
		}
		return d
	}
	near := func(key string, want time.Duration) {
		t.Helper()
		if d := pttl(key); d > want+time.Second || d < want-time.Minute {
			t.Errorf("%s: time to live %s, want about %s", key, d, want)
		}
	}

	now := time.Now()
	var ids []string
	for i := range 5 {
		s := &store.Session{ID: "sid" + string(rune('a'+i)), User: "alice@example.com", Method: "saml", IP: "192.0.2.1",
			Created: now.Add(time.Duration(i) * time.Millisecond), Expires: now.Add(time.Hour)}
		if err := ss.RecordSession(ctx, s, 3, now); err != nil {
			t.Fatalf("RecordSession: %v", err)
		}
		ids = append(ids, s.ID)
	}
	near(g+"s:"+ids[4], time.Hour)
	near(g+"u:alice@example.com", time.Hour)
	if n, _ := rdb.ZCard(ctx, g+"u:alice@example.com").Result(); n != 3 {
		t.Errorf("the user's set holds %d sessions, want the bound, 3", n)
	}
	if n, _ := rdb.Exists(ctx, g+"s:"+ids[0], g+"s:"+ids[1]).Result(); n != 0 {
		t.Errorf("%d of the 2 sessions beyond the bound are still stored", n)
	}

	rv := store.Revocation{Kind: store.RevokeUser, Subject: "alice@example.com", At: now.Add(3 * time.Millisecond), Expires: now.Add(2 * time.Hour)}
	if err := ss.Revoke(ctx, rv, now); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if n, _ := rdb.Exists(ctx, g+"s:"+ids[2]).Result(); n != 0 {
		t.Error("the session the revocation ended is still stored")
	}
	near(g+"r", 2*time.Hour)
	near(g+"rx", 2*time.Hour)
	// A shorter record leaves the keys' lifetime alone.
	short := store.Revocation{Kind: store.RevokeSession, Subject: "sidx", At: now, Expires: now.Add(time.Minute)}
	if err := ss.Revoke(ctx, short, now); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	near(g+"r", 2*time.Hour)
	// A write after its expiry forgets it.
	later := now.Add(2 * time.Minute)
	if err := ss.Revoke(ctx, store.Revocation{Kind: store.RevokeBlock, Subject: "bob", At: later, Expires: later.Add(time.Hour)}, later); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if n, _ := rdb.HLen(ctx, g+"r").Result(); n != 2 {
		t.Errorf("%d revocation records, want 2 (the expired one forgotten)", n)
	}
	if n, _ := rdb.ZCard(ctx, g+"rx").Result(); n != 2 {
		t.Errorf("%d revocation expiries, want 2", n)
	}

	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) < 4 {
		t.Fatalf("KEYS: %q, %v", keys, err)
	}
	slot := redistest.KeySlot(g + "ev")
	for _, k := range keys {
		if !strings.HasPrefix(k, g) {
			t.Errorf("key %q is not under %q", k, g)
		}
		if redistest.KeySlot(k) != slot {
			t.Errorf("key %q is in slot %d, the channel in %d", k, redistest.KeySlot(k), slot)
		}
		if d := pttl(k); d <= 0 {
			t.Errorf("key %q has no time to live (%s)", k, d)
		}
	}
}

// TestSessionsPrefixes: two prefixes share nothing, events included.
func TestSessionsPrefixes(t *testing.T) {
	srv := startRedis(t)
	s := newStore(t, Options{URL: srv.url()})
	one, two := s.Sessions(uniquePrefix()), s.Sessions(uniquePrefix())
	events, _ := watchEvents(t, two)
	nextEvent(t, events, true, 10*time.Second)
	now := time.Now()
	first, second := revocation(now), revocation(now)
	if err := one.Revoke(t.Context(), first, now); err != nil {
		t.Fatal(err)
	}
	if err := two.Revoke(t.Context(), second, now); err != nil {
		t.Fatal(err)
	}
	wantRevokedEvent(t, nextEvent(t, events, false, 10*time.Second), second)
	if list, err := two.Revocations(t.Context(), now); err != nil || len(list) != 1 {
		t.Errorf("the second prefix's revocations: %v, %v; want its one", list, err)
	}
}

// TestSessionsRedisDown: with nothing listening every call fails with
// ErrUnavailable in bounded time, and Watch keeps trying without calling
// its function, and returns once its context ends.
func TestSessionsRedisDown(t *testing.T) {
	s := newStore(t, Options{URL: "redis://127.0.0.1:" + strconv.Itoa(freePort(t))}).Sessions("")
	ctx := t.Context()
	now := time.Now()
	for name, call := range map[string]func() error{
		"record": func() error {
			return s.RecordSession(ctx, &store.Session{ID: "x", User: "u", Created: now, Expires: now.Add(time.Hour)}, 3, now)
		},
		"list":        func() error { _, err := s.ListSessions(ctx, "u", now); return err },
		"revoke":      func() error { return s.Revoke(ctx, revocation(now), now) },
		"unblock":     func() error { return s.Unblock(ctx, "u", now) },
		"revocations": func() error { _, err := s.Revocations(ctx, now); return err },
	} {
		start := time.Now()
		if err := call(); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable", name, err)
		}
		t.Logf("%s failed after %s", name, time.Since(start).Round(time.Millisecond))
	}
	events, stop := watchEvents(t, s)
	time.Sleep(300 * time.Millisecond)
	stop()
	select {
	case e := <-events:
		t.Errorf("Watch without Redis called its function: %+v", e)
	default:
	}
}

// TestSessionsBadPrefix: a prefix that would scatter the keys over a
// cluster gives a store that refuses every call.
func TestSessionsBadPrefix(t *testing.T) {
	srv := startRedis(t)
	s := newStore(t, Options{URL: srv.url()}).Sessions("site{}:")
	now := time.Now()
	if err := s.Revoke(t.Context(), revocation(now), now); err == nil || !strings.Contains(err.Error(), "prefix") {
		t.Errorf("Revoke with a bad prefix: %v, want an error about the prefix", err)
	}
	if _, err := s.Revocations(t.Context(), now); err == nil {
		t.Error("Revocations with a bad prefix: no error")
	}
	_, stop := watchEvents(t, s)
	stop()
}

// TestSessionsWatchNoLeak: once Watch has returned, its goroutines are
// gone, after restarts of the server too.
func TestSessionsWatchNoLeak(t *testing.T) {
	srv := startRedis(t)
	s := newStore(t, Options{URL: srv.url()}).Sessions(uniquePrefix())
	before := runtime.NumGoroutine()
	for range 3 {
		events, stop := watchEvents(t, s)
		nextEvent(t, events, true, 10*time.Second)
		srv.stop()
		srv.start()
		nextEvent(t, events, true, 15*time.Second)
		stop()
	}
	redistest.Eventually(t, 10*time.Second, "goroutines back to their number before", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

// TestSessionsCluster runs the suite on a Cluster of three masters, and
// checks that an event reaches a subscriber on every node, not only on the
// one that holds the site's keys.
func TestSessionsCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	storetest.RunSessions(t, func(t *testing.T) (store.SessionStore, store.SessionStore) {
		prefix := uniquePrefix()
		a := newStore(t, Options{ClusterAddrs: cl.Addrs}).Sessions(prefix)
		b := newStore(t, Options{ClusterAddrs: cl.Addrs}).Sessions(prefix)
		return a, b
	})

	prefix := uniquePrefix()
	ss := newStore(t, Options{ClusterAddrs: cl.Addrs}).Sessions(prefix)
	channel := newSessionKeys(prefix).channel()
	var subs []<-chan *redis.Message
	for _, n := range cl.Nodes {
		ps := n.Client(t).Subscribe(t.Context(), channel)
		t.Cleanup(func() { _ = ps.Close() })
		if _, err := ps.Receive(t.Context()); err != nil {
			t.Fatalf("subscribing on %s: %v", n.Addr, err)
		}
		subs = append(subs, ps.Channel())
	}
	now := time.Now()
	rv := revocation(now)
	if err := ss.Revoke(t.Context(), rv, now); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	for i, ch := range subs {
		select {
		case m := <-ch:
			e, ok := decodeEvent(m.Payload)
			if !ok {
				t.Fatalf("node %s: payload %q is no event", cl.Nodes[i].Addr, m.Payload)
			}
			wantRevokedEvent(t, e, rv)
		case <-time.After(10 * time.Second):
			t.Fatalf("node %s: no event within 10s", cl.Nodes[i].Addr)
		}
	}
}
