package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/storetest"
)

func TestConformance(t *testing.T) {
	srv := startRedis(t)
	storetest.Run(t, storetest.Config{MaxLoginsPerClient: 20}, func(t *testing.T) store.Store {
		return mustNew(t, Options{URL: srv.url(), KeyPrefix: uniquePrefix(), MaxLoginsPerClient: 20})
	})
}

// TestConformanceSmall runs the suite with the smallest per-client bound
// and a short grace.
func TestConformanceSmall(t *testing.T) {
	srv := startRedis(t)
	storetest.Run(t, storetest.Config{MaxLoginsPerClient: 1}, func(t *testing.T) store.Store {
		return mustNew(t, Options{URL: srv.url(), KeyPrefix: uniquePrefix(), MaxLoginsPerClient: 1, ExpiredGrace: 15 * time.Second})
	})
}

func TestConformanceUnixSocket(t *testing.T) {
	srv := startRedis(t)
	s := newStore(t, Options{URL: "unix://" + srv.sockPath() + "?db=1"})
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping over the unix socket: %v", err)
	}
	c := testChallenge(time.Now())
	if err := s.Create(t.Context(), c, c.Created); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if n, err := srv.client(t).Exists(t.Context(), DefaultKeyPrefix+"c:"+c.Token).Result(); err != nil || n != 0 {
		t.Fatalf("challenge in db 0: %d, %v; want it in db 1 only", n, err)
	}
}

// TestPollExactlyOnceAcrossInstances has three Stores, as three Caddy
// instances would, create on one, approve on another and poll from all
// three at once: exactly one poll gets the success.
func TestPollExactlyOnceAcrossInstances(t *testing.T) {
	srv := startRedis(t)
	prefix := uniquePrefix()
	var instances [3]*Store
	for i := range instances {
		instances[i] = newStore(t, Options{URL: srv.url(), KeyPrefix: prefix})
	}
	const pollers = 50
	for round := range 5 {
		now := time.Now()
		c := testChallenge(now)
		if err := instances[0].Create(t.Context(), c, now); err != nil {
			t.Fatalf("Create: %v", err)
		}
		approve(t, instances[1], c, now)

		start := make(chan struct{})
		var wg sync.WaitGroup
		var successes, unknowns atomic.Int64
		for i := range pollers {
			wg.Go(func() {
				<-start
				out, got, err := instances[i%3].Poll(t.Context(), c.Token, c.IP, true, now.Add(time.Second))
				switch {
				case err != nil:
					t.Errorf("poller %d: %v", i, err)
				case out == store.PollSuccess:
					successes.Add(1)
					if got == nil || got.Approver != "bob@example.com" || len(got.Groups) != 1 || got.User != c.User {
						t.Errorf("poller %d: success came with %+v", i, got)
					}
				case out == store.PollUnknown:
					unknowns.Add(1)
				default:
					t.Errorf("poller %d: %v, want success or unknown", i, out)
				}
			})
		}
		close(start)
		wg.Wait()
		if successes.Load() != 1 || unknowns.Load() != pollers-1 {
			t.Fatalf("round %d: %d successes and %d unknown of %d polls, want 1 and %d",
				round, successes.Load(), unknowns.Load(), pollers, pollers-1)
		}
		for i, s := range instances {
			if _, err := s.Get(t.Context(), c.Token, now); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("instance %d: Get after the success = %v, want ErrNotFound", i, err)
			}
		}
	}
}

// TestKeys checks the key layout and that Redis expires every key by itself.
func TestKeys(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.client(t)
	prefix := uniquePrefix()
	const grace = 30 * time.Second
	s := newStore(t, Options{URL: srv.url(), KeyPrefix: prefix, ExpiredGrace: grace, MaxLoginsPerClient: 5})
	ctx := t.Context()

	pttl := func(key string) time.Duration {
		t.Helper()
		d, err := rdb.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatalf("PTTL %s: %v", key, err)
		}
		return d
	}
	near := func(what string, got, want time.Duration) {
		t.Helper()
		if got > want || got < want-5*time.Second {
			t.Errorf("%s: PTTL %s, want about %s", what, got, want)
		}
	}
	wantType := func(key, want string) {
		t.Helper()
		if typ := rdb.Type(ctx, key).Val(); typ != want {
			t.Errorf("key %s has type %q, want %q", key, typ, want)
		}
	}

	// The key's life is counted from the "now" the caller passes, so a
	// challenge made "in the past" (as the conformance suite's are) lives
	// as long as one made now.
	for _, created := range []time.Time{time.Now(), time.Unix(1_000_000_000, 0)} {
		c := testChallenge(created)
		if err := s.Create(ctx, c, created); err != nil {
			t.Fatalf("Create: %v", err)
		}
		key := prefix + "c:" + c.Token
		near("new challenge", pttl(key), 2*time.Minute+grace)
		approve(t, s, c, created)
		near("approved challenge", pttl(key), 2*time.Minute+grace)
		wantType(key, "hash")
		if n := rdb.HLen(ctx, key).Val(); n != 13 {
			t.Errorf("approved challenge has %d fields, want 13: %v", n, rdb.HGetAll(ctx, key).Val())
		}
	}

	now := time.Now()
	l := &store.LoginState{RequestID: "id", Created: now, Client: "192.0.2.10"}
	if err := s.SaveLogin(ctx, "login-1", l, now.Add(5*time.Minute), now); err != nil {
		t.Fatalf("SaveLogin: %v", err)
	}
	// The logins' keys carry the prefix's own hash tag (see keys.go).
	sum := sha256.Sum256([]byte(prefix))
	group := prefix + "{" + hex.EncodeToString(sum[:])[:16] + "}"
	near("login", pttl(group+"l:login-1"), 5*time.Minute)
	wantType(group+"l:login-1", "hash")
	near("client's logins", pttl(group+"lc:192.0.2.10"), 5*time.Minute)
	wantType(group+"lc:192.0.2.10", "zset")
	l.Client = ""
	if err := s.SaveLogin(ctx, "login-2", l, now.Add(time.Minute), now); err != nil {
		t.Fatalf("SaveLogin: %v", err)
	}
	near("login without a client", pttl(group+"l:login-2"), time.Minute)

	for _, step := range []struct {
		expires time.Duration
		want    time.Duration
		fresh   bool
	}{
		{time.Hour, time.Hour, true},
		{2 * time.Hour, 2 * time.Hour, false}, // a later expiry extends the mark
		{time.Minute, 2 * time.Hour, false},   // an earlier one does not shorten it
	} {
		now := time.Now()
		fresh, err := s.MarkOnce(ctx, "assertion-1", now.Add(step.expires), now)
		if err != nil || fresh != step.fresh {
			t.Fatalf("MarkOnce(+%s) = %v, %v, want %v", step.expires, fresh, err, step.fresh)
		}
		near("mark", pttl(prefix+"o:assertion-1"), step.want)
	}
	wantType(prefix+"o:assertion-1", "hash")
	now = time.Now()
	if fresh, err := s.MarkOnce(ctx, "assertion-2", now.Add(-time.Second), now); err != nil || !fresh {
		t.Errorf("MarkOnce(past, unknown key) = %v, %v, want true", fresh, err)
	}
	if n := rdb.Exists(ctx, prefix+"o:assertion-2").Val(); n != 0 {
		t.Errorf("MarkOnce with a past expiry recorded the key")
	}
	if fresh, err := s.MarkOnce(ctx, "assertion-1", now.Add(-time.Second), now); err != nil || fresh {
		t.Errorf("MarkOnce(past, recorded key) = %v, %v, want false", fresh, err)
	}

	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			t.Errorf("key %q outside the prefix %q", k, prefix)
		}
		if d := pttl(k); d < 0 {
			t.Errorf("key %q has no expiry", k)
		}
	}
}

// TestMarkLeftByEarlierVersion: a replay mark an earlier version wrote as a
// plain string still counts as recorded.
func TestMarkLeftByEarlierVersion(t *testing.T) {
	srv := startRedis(t)
	prefix := uniquePrefix()
	s := newStore(t, Options{URL: srv.url(), KeyPrefix: prefix})
	ctx := t.Context()
	if err := srv.client(t).Set(ctx, prefix+"o:old", "1", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if fresh, err := s.MarkOnce(ctx, "old", now.Add(time.Hour), now); err != nil || fresh {
		t.Errorf("MarkOnce of a mark left as a string = %v, %v, want false", fresh, err)
	}
}

// TestPrefixesShareNothing has two stores with different key prefixes on one
// server, as two sites would: neither sees the other's challenges, logins,
// per-client counts or replay marks.
func TestPrefixesShareNothing(t *testing.T) {
	srv := startRedis(t)
	a := newStore(t, Options{URL: srv.url(), KeyPrefix: uniquePrefix(), MaxLoginsPerClient: 1})
	b := newStore(t, Options{URL: srv.url(), KeyPrefix: uniquePrefix(), MaxLoginsPerClient: 1})
	ctx := t.Context()
	now := time.Now()

	c := testChallenge(now)
	if err := a.Create(ctx, c, now); err != nil {
		t.Fatalf("Create in a: %v", err)
	}
	if _, err := b.Get(ctx, c.Token, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("b.Get of a's challenge = %v, want ErrNotFound", err)
	}
	if err := b.Create(ctx, c, now); err != nil {
		t.Fatalf("Create of the same token in b: %v", err)
	}
	approve(t, a, c, now)
	if out, _, err := b.Poll(ctx, c.Token, c.IP, true, now); err != nil || out != store.PollPending {
		t.Errorf("b.Poll after a approved = %v, %v, want pending", out, err)
	}
	if err := b.Cancel(ctx, c.Token, now); err != nil {
		t.Fatalf("b.Cancel: %v", err)
	}
	if out, _, err := a.Poll(ctx, c.Token, c.IP, true, now); err != nil || out != store.PollSuccess {
		t.Errorf("a.Poll after b cancelled its own = %v, %v, want success", out, err)
	}

	l := &store.LoginState{RequestID: "req", Created: now, Client: "192.0.2.10"}
	if err := a.SaveLogin(ctx, "login", l, now.Add(time.Minute), now); err != nil {
		t.Fatalf("a.SaveLogin: %v", err)
	}
	if err := b.SaveLogin(ctx, "other", l, now.Add(time.Minute), now); err != nil {
		t.Errorf("b.SaveLogin for a client busy in a: %v", err)
	}
	if _, err := b.TakeLogin(ctx, "login", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("b.TakeLogin of a's login = %v, want ErrNotFound", err)
	}
	if _, err := a.TakeLogin(ctx, "login", now); err != nil {
		t.Errorf("a.TakeLogin: %v", err)
	}

	for _, s := range []*Store{a, b} {
		if fresh, err := s.MarkOnce(ctx, "assertion", now.Add(time.Hour), now); err != nil || !fresh {
			t.Errorf("MarkOnce of a key the other store marked = %v, %v, want true", fresh, err)
		}
	}
}

// TestExactTimes checks expiry and grace to the nanosecond, as the memory
// store compares them, across a millisecond boundary.
func TestExactTimes(t *testing.T) {
	srv := startRedis(t)
	const grace = 10 * time.Second
	s := newStore(t, Options{URL: srv.url(), KeyPrefix: uniquePrefix(), ExpiredGrace: grace})
	ctx := t.Context()
	base := time.Unix(1_800_000_000, 999_999) // just below a millisecond

	for _, tc := range []struct {
		at   time.Duration // after Expires
		want store.PollOutcome
	}{
		{0, store.PollPending},
		{time.Nanosecond, store.PollExpired},
		{grace, store.PollExpired},
		{grace + time.Nanosecond, store.PollUnknown},
	} {
		c := testChallenge(base)
		if err := s.Create(ctx, c, c.Created); err != nil {
			t.Fatal(err)
		}
		at := c.Expires.Add(tc.at)
		got, _, err := s.Poll(ctx, c.Token, c.IP, true, at)
		if err != nil || got != tc.want {
			t.Errorf("Poll at Expires%+v = %v, %v, want %v", tc.at, got, err, tc.want)
		}
		stored, err := s.Get(ctx, c.Token, at)
		switch {
		case tc.want == store.PollPending && err != nil:
			t.Errorf("Get: %v", err)
		case tc.want == store.PollPending && (!stored.Created.Equal(c.Created) || !stored.Expires.Equal(c.Expires)):
			t.Errorf("times came back as %s, %s, want %s, %s", stored.Created, stored.Expires, c.Created, c.Expires)
		case tc.want != store.PollPending && !errors.Is(err, store.ErrNotFound):
			t.Errorf("Get after %v = %v, want ErrNotFound", tc.want, err)
		}
	}

	zero := testChallenge(time.Time{})
	zero.Expires = time.Time{}
	if err := s.Create(ctx, zero, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, zero.Token, time.Time{}); err != nil || !got.Created.IsZero() || !got.Expires.IsZero() {
		t.Errorf("zero times came back as %+v, %v", got, err)
	}
}

func BenchmarkCreate(b *testing.B) {
	srv := startRedis(b)
	s := newStore(b, Options{URL: srv.url(), KeyPrefix: uniquePrefix()})
	ctx := context.Background()
	c := testChallenge(time.Now())
	prefix := c.Token[:24]
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Token = prefix + strconv.Itoa(i)
		if err := s.Create(ctx, c, c.Created); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPollPending(b *testing.B) {
	srv := startRedis(b)
	s := newStore(b, Options{URL: srv.url(), KeyPrefix: uniquePrefix()})
	ctx := context.Background()
	now := time.Now()
	c := testChallenge(now)
	if err := s.Create(ctx, c, c.Created); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		out, _, err := s.Poll(ctx, c.Token, c.IP, true, now)
		if err != nil || out != store.PollPending {
			b.Fatal(out, err)
		}
	}
}
