package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/redisstore/redistest"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/storetest"
)

// TestSessionsConformance runs the session suite with two Stores (two
// connections, as two Caddy instances) on one server and one prefix.
func TestSessionsConformance(t *testing.T) {
	srv := startRedis(t)
	storetest.RunSessions(t, func(t *testing.T) (store.SessionStore, store.SessionStore) {
		prefix := uniquePrefix()
		a := newStore(t, Options{URL: srv.url()}).Sessions(prefix)
		b := newStore(t, Options{URL: srv.url()}).Sessions(prefix)
		return a, b
	})
}

// watchEvents runs s.Watch until the test ends (or stop is called) and
// hands its events over a channel; stop fails the test unless Watch
// returns within 10 seconds.
func watchEvents(t *testing.T, s store.SessionStore) (events chan store.RevocationEvent, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	events = make(chan store.RevocationEvent, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(ctx, func(e store.RevocationEvent) { events <- e })
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Watch did not return within 10s of its context ending")
		}
	}
	t.Cleanup(stop)
	return events, stop
}

// nextEvent waits up to limit for an event that reload says is wanted
// (true: a reload event; false: any other), dropping the others.
func nextEvent(t *testing.T, events chan store.RevocationEvent, reload bool, limit time.Duration) store.RevocationEvent {
	t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case e := <-events:
			if e.Reload() == reload {
				return e
			}
		case <-deadline:
			t.Fatalf("no event (reload: %v) within %s", reload, limit)
			return store.RevocationEvent{}
		}
	}
}

// revocation returns a RevokeSession of a fresh session id, made now.
func revocation(now time.Time) store.Revocation {
	return store.Revocation{Kind: store.RevokeSession, Subject: fmt.Sprintf("sid-%d", tokens.Add(1)),
		At: now, Expires: now.Add(time.Hour)}
}

func wantRevokedEvent(t *testing.T, e store.RevocationEvent, rv store.Revocation) {
	t.Helper()
	if e.Revoked == nil || e.Revoked.Key() != rv.Key() || !e.Revoked.At.Equal(rv.At) || !e.Revoked.Expires.Equal(rv.Expires) {
		t.Fatalf("event %+v, want the revocation %+v", e, rv)
	}
}

// TestSessionsWatchAcrossRestart kills the server under a watcher and
// starts it again, twice: while it is down a revocation fails in bounded
// time; once it is back, the watcher tells of the new subscription with a
// reload event, and a revocation made then reaches it.
func TestSessionsWatchAcrossRestart(t *testing.T) {
	srv := startRedis(t)
	prefix := uniquePrefix()
	a := newStore(t, Options{URL: srv.url()}).Sessions(prefix)
	b := newStore(t, Options{URL: srv.url()}).Sessions(prefix)
	events, _ := watchEvents(t, a)
	nextEvent(t, events, true, 10*time.Second)
	for round := range 2 {
		srv.stop()
		start := time.Now()
		err := b.Revoke(t.Context(), revocation(start), start)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("round %d: Revoke with Redis down = %v, want ErrUnavailable", round, err)
		}
		t.Logf("round %d: Revoke with Redis down failed after %s", round, time.Since(start).Round(time.Millisecond))
		srv.start()
		restarted := time.Now()
		nextEvent(t, events, true, 15*time.Second)
		t.Logf("round %d: reload event %s after the restart", round, time.Since(restarted).Round(time.Millisecond))
		rv := revocation(time.Now())
		if err := b.Revoke(t.Context(), rv, rv.At); err != nil {
			t.Fatalf("round %d: Revoke after the restart: %v", round, err)
		}
		wantRevokedEvent(t, nextEvent(t, events, false, 10*time.Second), rv)
	}
}

// TestSessionsWatchFrozenServer: a watcher whose server stops answering
// (SIGSTOP: the connection stays open, nothing comes) gives the connection
// up and subscribes again once the server answers, which it tells with a
// reload event: messages published meanwhile (by another primary, after a
// failover) could have been missed on the old connection.
func TestSessionsWatchFrozenServer(t *testing.T) {
	srv := redistest.StartServer(t)
	prefix := uniquePrefix()
	a := newStore(t, Options{URL: "redis://" + srv.Addr}).Sessions(prefix)
	b := newStore(t, Options{URL: "redis://" + srv.Addr}).Sessions(prefix)
	events, _ := watchEvents(t, a)
	nextEvent(t, events, true, 10*time.Second)
	resume := srv.Freeze(t)
	// Longer than a ping and its wait for the pong.
	time.Sleep(3 * defaultPingEvery)
	resume()
	resumed := time.Now()
	nextEvent(t, events, true, 15*time.Second)
	t.Logf("reload event %s after the server answered again", time.Since(resumed).Round(time.Millisecond))
	rv := revocation(time.Now())
	if err := b.Revoke(t.Context(), rv, rv.At); err != nil {
		t.Fatalf("Revoke after the resume: %v", err)
	}
	wantRevokedEvent(t, nextEvent(t, events, false, 10*time.Second), rv)
}

// TestSessionsLatency measures how long a revocation made through one
// Store takes to reach the watcher of another: the figure is logged; the
// test checks only that every event arrives, in order.
func TestSessionsLatency(t *testing.T) {
	srv := startRedis(t)
	prefix := uniquePrefix()
	a := newStore(t, Options{URL: srv.url()}).Sessions(prefix)
	b := newStore(t, Options{URL: srv.url()}).Sessions(prefix)
	events, _ := watchEvents(t, b)
	nextEvent(t, events, true, 10*time.Second)
	const n = 200
	took := make([]time.Duration, n)
	for i := range took {
		rv := revocation(time.Now())
		start := time.Now()
		if err := a.Revoke(t.Context(), rv, rv.At); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		wantRevokedEvent(t, nextEvent(t, events, false, 10*time.Second), rv)
		took[i] = time.Since(start)
	}
	slices.Sort(took)
	t.Logf("Revoke on one Store to the event on another's watcher, %d revocations: min %s, median %s, p99 %s, max %s",
		n, took[0], took[n/2], took[n*99/100], took[n-1])
}

// TestSessionsSentinelFailover kills the primary under a watcher: once the
// sentinels have promoted the replica, the watcher subscribes there and
// tells so with a reload event, a revocation made before the kill (and
// replicated) is still listed, and one made after it reaches the watcher.
func TestSessionsSentinelFailover(t *testing.T) {
	primary := redistest.StartServer(t)
	replica := redistest.StartReplica(t, primary)
	sent := redistest.StartSentinels(t, primary, 1, 3, downAfter)
	opts := Options{MasterName: redistest.MasterName, SentinelAddrs: sent.Addrs,
		DialTimeout: 250 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond}
	prefix := uniquePrefix()
	a := newStore(t, opts).Sessions(prefix)
	b := newStore(t, opts).Sessions(prefix)
	ctx := t.Context()
	events, _ := watchEvents(t, a)
	nextEvent(t, events, true, 10*time.Second)
	before := revocation(time.Now())
	if err := b.Revoke(ctx, before, before.At); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	wantRevokedEvent(t, nextEvent(t, events, false, 10*time.Second), before)
	redistest.WaitReplicated(t, primary, replica)

	killed := time.Now()
	primary.Kill()
	nextEvent(t, events, true, 30*time.Second)
	t.Logf("reload event %s after the kill (down-after %s)", time.Since(killed).Round(time.Millisecond), downAfter)
	list, err := a.Revocations(ctx, time.Now())
	if err != nil || len(list) != 1 || list[0].Key() != before.Key() {
		t.Errorf("revocations after the failover: %v, %v; want %s", list, err, before.Key())
	}
	after := revocation(time.Now())
	waitFor(t, 20*time.Second, func() error { return b.Revoke(ctx, after, after.At) })
	wantRevokedEvent(t, nextEvent(t, events, false, 10*time.Second), after)
	if addr, err := sent.Primary(ctx); err != nil || addr != replica.Addr {
		t.Errorf("the sentinels' primary is %q (%v), want the replica %s", addr, err, replica.Addr)
	}
}
