package store_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/storetest"
)

const (
	ttl   = 2 * time.Minute
	grace = time.Minute
)

var base = time.Unix(1_800_000_000, 0)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, storetest.Config{MaxLoginsPerClient: 20}, func(*testing.T) store.Store {
		return store.NewMemory(store.MemoryOptions{MaxLoginsPerClient: 20, ExpiredGrace: grace})
	})
}

// TestMemoryConformanceSmall runs the suite on a store near the smallest
// bound and grace it documents.
func TestMemoryConformanceSmall(t *testing.T) {
	storetest.Run(t, storetest.Config{MaxLoginsPerClient: 1}, func(*testing.T) store.Store {
		return store.NewMemory(store.MemoryOptions{MaxPending: 100, MaxLoginsPerClient: 1, ExpiredGrace: 15 * time.Second})
	})
}

func TestMemoryBound(t *testing.T) {
	m := store.NewMemory(store.MemoryOptions{MaxPending: 3, ExpiredGrace: grace})
	ctx := t.Context()
	for i := range 3 {
		mustCreate(t, m, challenge(uint64(i), base))
	}
	if err := m.Create(ctx, challenge(3, base), base); !errors.Is(err, store.ErrFull) {
		t.Fatalf("Create beyond the bound = %v, want ErrFull", err)
	}
	// A taken token is reported as such even when the store is full.
	if err := m.Create(ctx, challenge(0, base), base); !errors.Is(err, store.ErrExists) {
		t.Fatalf("Create of a taken token = %v, want ErrExists", err)
	}
	// Expired but within the grace: still remembered, still counted.
	dropAt := base.Add(ttl + grace)
	if err := m.Create(ctx, challenge(3, dropAt), dropAt); !errors.Is(err, store.ErrFull) {
		t.Fatalf("Create at the end of the grace = %v, want ErrFull", err)
	}
	if got := wantPoll(t, m, challenge(0, base).Token, dropAt, store.PollExpired); got != nil {
		t.Errorf("PollExpired came with %+v", got)
	}
	mustCreate(t, m, challenge(3, dropAt))
	// Past the grace, Create itself makes room: no sweep call is needed.
	later := dropAt.Add(time.Nanosecond)
	for i := 4; i < 6; i++ {
		mustCreate(t, m, challenge(uint64(i), later))
	}
	if l := m.Lens(); l.Challenges != 3 {
		t.Fatalf("%d challenges stored, want 3", l.Challenges)
	}
	if err := m.Create(ctx, challenge(6, later), later); !errors.Is(err, store.ErrFull) {
		t.Fatalf("Create beyond the bound = %v, want ErrFull", err)
	}
}

func TestMemoryDefaultBound(t *testing.T) {
	m := store.NewMemory(store.MemoryOptions{ExpiredGrace: grace})
	for i := range store.DefaultMaxPending {
		mustCreate(t, m, challenge(uint64(i), base))
	}
	if err := m.Create(t.Context(), challenge(store.DefaultMaxPending, base), base); !errors.Is(err, store.ErrFull) {
		t.Fatalf("Create beyond the default bound = %v, want ErrFull", err)
	}
}

// TestMemorySweep checks that the drop queue removes exactly the entries
// whose grace is over, and recognises items that no longer stand for their
// entry.
func TestMemorySweep(t *testing.T) {
	m := store.NewMemory(store.MemoryOptions{MaxPending: 100, ExpiredGrace: grace})
	// Ten challenges made one second apart.
	for i := range 10 {
		mustCreate(t, m, challenge(uint64(i), base.Add(time.Duration(i)*time.Second)))
	}
	if l := m.Lens(); l.Challenges != 10 || l.ChallengeQueue != 10 {
		t.Fatalf("lens %+v, want 10 challenges and 10 queued", l)
	}
	// Any call with a time sweeps: a poll for an unknown token 0.5 s after
	// the fourth challenge's grace ended drops the first four.
	at := base.Add(3*time.Second + ttl + grace + 500*time.Millisecond)
	wantPoll(t, m, "no-such-token", at, store.PollUnknown)
	if l := m.Lens(); l.Challenges != 6 || l.ChallengeQueue != 6 {
		t.Fatalf("lens %+v, want 6 challenges and 6 queued", l)
	}
	for i := range 10 {
		_, err := m.Get(t.Context(), challenge(uint64(i), base).Token, at)
		if gone := errors.Is(err, store.ErrNotFound); gone != (i < 4) {
			t.Errorf("challenge %d: Get = %v", i, err)
		}
	}

	// A deleted challenge leaves a stale item behind, which a sweep pops
	// without harm.
	tok := challenge(6, base).Token
	wantPoll(t, m, tok, at, store.PollExpired)
	if l := m.Lens(); l.Challenges != 5 || l.ChallengeQueue != 6 {
		t.Fatalf("lens %+v, want 5 challenges and 6 queued", l)
	}

	// The token is made again with a later expiry: when the old item comes
	// due it must not drop the new challenge.
	again := challenge(6, at)
	mustCreate(t, m, again)
	oldDrop := base.Add(6*time.Second + ttl + grace)
	if l := m.Lens(); l.Challenges != 6 || l.ChallengeQueue != 7 {
		t.Fatalf("lens %+v, want 6 challenges and 7 queued", l)
	}
	// Challenges 4 and 5 are due, the stale item between them and 7 goes.
	wantPoll(t, m, again.Token, oldDrop.Add(time.Second), store.PollPending)
	if l := m.Lens(); l.Challenges != 4 || l.ChallengeQueue != 4 {
		t.Fatalf("lens %+v, want 4 challenges and 4 queued", l)
	}

	// Past every drop time, everything goes.
	wantPoll(t, m, "no-such-token", at.Add(time.Hour), store.PollUnknown)
	if l := m.Lens(); l.Challenges != 0 || l.ChallengeQueue != 0 {
		t.Fatalf("lens %+v, want nothing left", l)
	}
}

// TestMemoryQueueCompaction checks that challenges deleted long before their
// drop time cannot make the queue grow without bound.
func TestMemoryQueueCompaction(t *testing.T) {
	const n = 5000
	m := store.NewMemory(store.MemoryOptions{MaxPending: n, ExpiredGrace: time.Hour})
	for i := range n {
		mustCreate(t, m, challenge(uint64(i), base))
	}
	late := base.Add(ttl + time.Second)
	for i := range n {
		wantPoll(t, m, challenge(uint64(i), base).Token, late, store.PollExpired)
	}
	l := m.Lens()
	if l.Challenges != 0 {
		t.Fatalf("%d challenges left, want 0", l.Challenges)
	}
	if l.ChallengeQueue > 1100 {
		t.Fatalf("%d items queued for 0 challenges: the queue was not compacted", l.ChallengeQueue)
	}
}

func TestMemoryLoginBound(t *testing.T) {
	m := store.NewMemory(store.MemoryOptions{MaxPending: 2, ExpiredGrace: grace})
	ctx := t.Context()
	login := func(created time.Time) *store.LoginState {
		return &store.LoginState{RequestID: "req", ReturnPath: "/", Created: created}
	}
	expires := base.Add(5 * time.Minute)
	for _, id := range []string{"a", "b"} {
		if err := m.SaveLogin(ctx, id, login(base), expires, base); err != nil {
			t.Fatalf("SaveLogin(%s): %v", id, err)
		}
	}
	if err := m.SaveLogin(ctx, "c", login(base), expires, base); !errors.Is(err, store.ErrFull) {
		t.Fatalf("SaveLogin beyond the bound = %v, want ErrFull", err)
	}
	if err := m.SaveLogin(ctx, "a", login(base), expires, base); err != nil {
		t.Fatalf("SaveLogin replacing a login when full: %v", err)
	}
	// A login made after the others expired makes room by itself.
	if err := m.SaveLogin(ctx, "c", login(expires.Add(time.Second)), expires.Add(time.Hour), expires.Add(time.Second)); err != nil {
		t.Fatalf("SaveLogin after the others expired: %v", err)
	}
	if l := m.Lens(); l.Logins != 1 {
		t.Fatalf("%d logins stored, want 1", l.Logins)
	}
	if _, err := m.TakeLogin(ctx, "a", base); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("TakeLogin of a dropped login = %v, want ErrNotFound", err)
	}
}

// TestMemoryLoginClients checks that the per-client lists follow the
// logins out of the store, however they leave, and that logins are not
// bounded per client unless asked.
func TestMemoryLoginClients(t *testing.T) {
	m := store.NewMemory(store.MemoryOptions{MaxPending: 10, MaxLoginsPerClient: 2})
	ctx := t.Context()
	save := func(id, client string, now time.Time) error {
		l := &store.LoginState{RequestID: id, Created: now, Client: client}
		return m.SaveLogin(ctx, id, l, now.Add(time.Minute), now)
	}
	for _, id := range []string{"a", "b"} {
		if err := save(id, "x", base); err != nil {
			t.Fatalf("SaveLogin(%s): %v", id, err)
		}
	}
	if err := save("c", "y", base); err != nil {
		t.Fatalf("SaveLogin(c): %v", err)
	}
	if l := m.Lens(); l.Clients != 2 {
		t.Fatalf("lens %+v, want 2 clients", l)
	}
	if _, err := m.TakeLogin(ctx, "c", base); err != nil {
		t.Fatalf("TakeLogin(c): %v", err)
	}
	if err := save("a", "z", base); err != nil {
		t.Fatalf("SaveLogin moving a: %v", err)
	}
	// Past their expiry the sweep drops b and a, and their clients with them.
	if err := save("d", "", base.Add(time.Hour)); err != nil {
		t.Fatalf("SaveLogin(d): %v", err)
	}
	if l := m.Lens(); l.Clients != 0 || l.Logins != 1 {
		t.Fatalf("lens %+v, want no client and 1 login", l)
	}

	unbounded := store.NewMemory(store.MemoryOptions{MaxPending: 10})
	for i := range 10 {
		id := fmt.Sprint(i)
		l := &store.LoginState{RequestID: id, Client: "x"}
		if err := unbounded.SaveLogin(ctx, id, l, base.Add(time.Minute), base); err != nil {
			t.Fatalf("SaveLogin(%d) without a per-client bound: %v", i, err)
		}
	}
	if l := unbounded.Lens(); l.Clients != 0 {
		t.Fatalf("lens %+v: clients tracked without a per-client bound", l)
	}
}

// TestMemoryOutOfOrderExpiry checks that a full table finds the entries
// that are due wherever they are, not only at the front of its order.
func TestMemoryOutOfOrderExpiry(t *testing.T) {
	m := store.NewMemory(store.MemoryOptions{MaxPending: 3})
	ctx := t.Context()
	for i, expires := range []time.Duration{time.Hour, time.Minute, time.Minute} {
		if fresh, err := m.MarkOnce(ctx, fmt.Sprint(i), base.Add(expires), base); !fresh || err != nil {
			t.Fatalf("MarkOnce(%d) = %v, %v", i, fresh, err)
		}
	}
	later := base.Add(2 * time.Minute)
	if fresh, err := m.MarkOnce(ctx, "3", later.Add(time.Hour), later); !fresh || err != nil {
		t.Fatalf("MarkOnce with two marks due behind one that is not = %v, %v", fresh, err)
	}
	if l := m.Lens(); l.Once != 2 {
		t.Fatalf("lens %+v, want 2 marks", l)
	}
	if fresh, err := m.MarkOnce(ctx, "0", later.Add(time.Hour), later); fresh || err != nil {
		t.Fatalf("MarkOnce of the mark still held = %v, %v, want false", fresh, err)
	}
}

// TestMemoryDefaults checks the zero options.
func TestMemoryDefaults(t *testing.T) {
	m := store.NewMemory(store.MemoryOptions{})
	c := challenge(1, base)
	mustCreate(t, m, c)
	wantPoll(t, m, c.Token, c.Expires.Add(store.DefaultExpiredGrace), store.PollExpired)
	mustCreate(t, m, c)
	wantPoll(t, m, c.Token, c.Expires.Add(store.DefaultExpiredGrace+1), store.PollUnknown)

	none := store.NewMemory(store.MemoryOptions{ExpiredGrace: -1})
	mustCreate(t, none, c)
	wantPoll(t, none, c.Token, c.Expires.Add(1), store.PollUnknown)
}

func TestMemoryMarkOnceBound(t *testing.T) {
	m := store.NewMemory(store.MemoryOptions{MaxPending: 2, ExpiredGrace: grace})
	ctx := t.Context()
	expires := base.Add(time.Hour)
	for _, key := range []string{"a", "b"} {
		if fresh, err := m.MarkOnce(ctx, key, expires, base); !fresh || err != nil {
			t.Fatalf("MarkOnce(%s) = %v, %v, want true", key, fresh, err)
		}
	}
	if _, err := m.MarkOnce(ctx, "c", expires, base); !errors.Is(err, store.ErrFull) {
		t.Fatalf("MarkOnce beyond the bound = %v, want ErrFull", err)
	}
	if fresh, err := m.MarkOnce(ctx, "a", expires, base); fresh || err != nil {
		t.Fatalf("MarkOnce of a known key when full = %v, %v, want false", fresh, err)
	}
	// A key whose expiry is already past is new, and takes no room.
	if fresh, err := m.MarkOnce(ctx, "d", base.Add(-time.Second), base); !fresh || err != nil {
		t.Fatalf("MarkOnce with a past expiry = %v, %v, want true", fresh, err)
	}
	if l := m.Lens(); l.Once != 2 || l.OnceQueue != 2 {
		t.Fatalf("lens %+v, want 2 keys and 2 queued", l)
	}
}

func TestMemoryClose(t *testing.T) {
	m := store.NewMemory(store.MemoryOptions{ExpiredGrace: grace})
	ctx := t.Context()
	c := challenge(1, base)
	mustCreate(t, m, c)
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.Get(ctx, c.Token, base); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Get after Close = %v, want ErrUnavailable", err)
	}
	if err := m.Create(ctx, challenge(2, base), base); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Create after Close = %v, want ErrUnavailable", err)
	}
	if _, _, err := m.Poll(ctx, c.Token, c.IP, true, base); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Poll after Close = %v, want ErrUnavailable", err)
	}
	if _, err := m.MarkOnce(ctx, "k", base.Add(time.Hour), base); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("MarkOnce after Close = %v, want ErrUnavailable", err)
	}
}

func TestMemoryNilArguments(t *testing.T) {
	m := store.NewMemory(store.MemoryOptions{ExpiredGrace: grace})
	if err := m.Create(t.Context(), nil, base); err == nil {
		t.Error("Create(nil) succeeded")
	}
	if err := m.SaveLogin(t.Context(), "id", nil, base, base); err == nil {
		t.Error("SaveLogin(nil) succeeded")
	}
}

// TestMemoryZeroTimes checks that zero times are kept as such.
func TestMemoryZeroTimes(t *testing.T) {
	m := store.NewMemory(store.MemoryOptions{ExpiredGrace: grace})
	c := &store.Challenge{Token: "zero", Status: store.StatusPending}
	mustCreate(t, m, c)
	got, err := m.Get(t.Context(), "zero", time.Time{})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !got.Created.IsZero() || !got.Expires.IsZero() || got.User != "" || got.IP != "" {
		t.Fatalf("got %+v, want zero times and empty strings", got)
	}
}

// TestMemoryRecordRoundTrip checks that challenges of shapes the
// conformance suite does not make come back as stored, and that the poller
// compares their IPs as strings.
func TestMemoryRecordRoundTrip(t *testing.T) {
	long := strings.Repeat("ü", 300)
	many := make([]string, 200)
	for i := range many {
		many[i] = fmt.Sprint("group-", i)
	}
	tests := []struct {
		name   string
		modify func(c *store.Challenge)
	}{
		{"ipv6", func(c *store.Challenge) { c.IP = "2001:db8::42" }},
		{"ipv4 mapped", func(c *store.Challenge) { c.IP = "::ffff:192.0.2.10" }},
		{"ipv4 leading zero", func(c *store.Challenge) { c.IP = "192.0.2.010" }},
		{"ipv4 with zone", func(c *store.Challenge) { c.IP = "fe80::1%eth0" }},
		{"not an ip", func(c *store.Challenge) { c.IP = "unknown" }},
		{"empty ip", func(c *store.Challenge) { c.IP = "" }},
		{"long user", func(c *store.Challenge) { c.User = long }},
		{"empty status", func(c *store.Challenge) { c.Status = "" }},
		{"other status", func(c *store.Challenge) { c.Status = "denied" }},
		{"made viewed", func(c *store.Challenge) { c.Viewed, c.Nonce = true, "n" }},
		{"made approved", func(c *store.Challenge) {
			c.Status, c.Viewed, c.Nonce, c.Approver, c.Groups = store.StatusSuccess, true, "n", long, many
			c.AuthTime = base.Add(-time.Hour + 1)
		}},
		{"sub-second times", func(c *store.Challenge) {
			c.Created = c.Created.Add(123456789)
			c.Expires = c.Expires.Add(987654321)
		}},
		{"far times", func(c *store.Challenge) {
			c.Created = time.Date(1700, 1, 1, 0, 0, 0, 1, time.UTC)
			c.Expires = time.Date(2250, 12, 31, 23, 59, 59, 999999999, time.UTC)
		}},
	}
	m := store.NewMemory(store.MemoryOptions{ExpiredGrace: grace})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := challenge(uint64(i), base)
			tt.modify(c)
			want := *c
			mustCreate(t, m, c)
			got, err := m.Get(t.Context(), c.Token, base)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			sameChallenge(t, got, &want)
			// The poller compares IPs as strings, whatever their form.
			if outcome, _, _ := m.Poll(t.Context(), c.Token, c.IP+" ", true, base); outcome != store.PollUnauthorized {
				t.Errorf("Poll from %q = %v, want unauthorized", c.IP+" ", outcome)
			}
			outcome, _, err := m.Poll(t.Context(), c.Token, c.IP, true, base)
			if err != nil || outcome == store.PollUnauthorized {
				t.Fatalf("Poll from %q = %v, %v", c.IP, outcome, err)
			}
		})
	}
	if outcome, _, _ := m.Poll(t.Context(), challenge(1, base).Token, "192.0.2.10", true, base); outcome != store.PollUnauthorized {
		t.Errorf("Poll of a challenge made from ::ffff:192.0.2.10 from 192.0.2.10 = %v, want unauthorized", outcome)
	}
}
