package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// Cases on SAML login states and replay marks.

func newLogin() *store.LoginState {
	return &store.LoginState{
		RequestID:  "id-" + newToken(),
		ReturnPath: "/challenge_validator/" + newToken() + "?x=1&y=ü",
		Created:    created,
		Client:     "client-" + newToken(),
	}
}

func testLoginRoundTrip(t *testing.T, s store.Store) {
	l := newLogin()
	id := newToken()
	mustSaveLogin(t, s, id, l, base.Add(5*time.Minute), created)
	got, err := s.TakeLogin(t.Context(), id, soon)
	if err != nil {
		t.Fatalf("TakeLogin: %v", err)
	}
	sameLogin(t, got, l)
	if got, err := s.TakeLogin(t.Context(), id, soon); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second TakeLogin = %+v, %v, want ErrNotFound", got, err)
	}
}

func testLoginUnknown(t *testing.T, s store.Store) {
	mustSaveLogin(t, s, newToken(), newLogin(), base.Add(5*time.Minute), created)
	if got, err := s.TakeLogin(t.Context(), newToken(), soon); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("TakeLogin(unknown) = %+v, %v, want ErrNotFound", got, err)
	}
}

func testLoginExpired(t *testing.T, s store.Store) {
	expires := base.Add(5 * time.Minute)
	gone, kept := newToken(), newToken()
	mustSaveLogin(t, s, gone, newLogin(), expires, created)
	l := newLogin()
	mustSaveLogin(t, s, kept, l, base.Add(time.Hour), created)
	if got, err := s.TakeLogin(t.Context(), gone, expires.Add(time.Second)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("TakeLogin after expiry = %+v, %v, want ErrNotFound", got, err)
	}
	got, err := s.TakeLogin(t.Context(), kept, expires.Add(time.Second))
	if err != nil {
		t.Fatalf("TakeLogin of an unexpired login: %v", err)
	}
	sameLogin(t, got, l)
}

func testLoginCopiesInput(t *testing.T, s store.Store) {
	l := newLogin()
	want := *l
	id := newToken()
	mustSaveLogin(t, s, id, l, base.Add(5*time.Minute), created)
	l.RequestID = "changed"
	l.ReturnPath = "/changed"
	l.Created = base.Add(time.Hour)
	l.Client = "changed"
	got, err := s.TakeLogin(t.Context(), id, soon)
	if err != nil {
		t.Fatalf("TakeLogin: %v", err)
	}
	sameLogin(t, got, &want)
}

func testLoginConcurrentTake(t *testing.T, s store.Store) {
	const n = 20
	id := newToken()
	mustSaveLogin(t, s, id, newLogin(), base.Add(5*time.Minute), created)
	errs := make([]error, n)
	race(n, func(i int) {
		_, errs[i] = s.TakeLogin(t.Context(), id, soon)
	})
	taken := 0
	for i, err := range errs {
		switch {
		case err == nil:
			taken++
		case !errors.Is(err, store.ErrNotFound):
			t.Errorf("goroutine %d: TakeLogin = %v, want nil or ErrNotFound", i, err)
		}
	}
	if taken != 1 {
		t.Fatalf("%d of %d concurrent TakeLogin calls got the login, want exactly 1", taken, n)
	}
}

// loginTTL is how long the suite's logins live.
const loginTTL = 5 * time.Minute

// saveClientLogins saves n logins for client at now, until now+loginTTL,
// and returns their ids.
func saveClientLogins(t *testing.T, s store.Store, client string, n int, now time.Time) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		l := newLogin()
		l.Client = client
		ids[i] = newToken()
		mustSaveLogin(t, s, ids[i], l, now.Add(loginTTL), now)
	}
	return ids
}

// wantClientBusy fails unless one more login for client at now is refused
// with ErrClientBusy.
func wantClientBusy(t *testing.T, s store.Store, client string, now time.Time) {
	t.Helper()
	l := newLogin()
	l.Client = client
	id := newToken()
	if err := s.SaveLogin(t.Context(), id, l, now.Add(loginTTL), now); !errors.Is(err, store.ErrClientBusy) {
		t.Fatalf("SaveLogin beyond the bound for %q at %s = %v, want ErrClientBusy", client, now.Sub(base), err)
	}
	if _, err := s.TakeLogin(t.Context(), id, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused login was stored: TakeLogin = %v, want ErrNotFound", err)
	}
}

// testLoginClientBound: one client holds at most the bound of logins; other
// clients, and logins without a client, are not affected.
func testLoginClientBound(t *testing.T, s store.Store, cfg Config) {
	const client, other = "192.0.2.0/24", "2001:db8::/64"
	ids := saveClientLogins(t, s, client, cfg.MaxLoginsPerClient, created)
	wantClientBusy(t, s, client, soon)
	saveClientLogins(t, s, other, cfg.MaxLoginsPerClient, soon)
	wantClientBusy(t, s, other, soon)
	saveClientLogins(t, s, "", cfg.MaxLoginsPerClient+2, soon)
	// The refusals took nothing away: every login is still there.
	for _, id := range ids {
		got, err := s.TakeLogin(t.Context(), id, soon)
		if err != nil {
			t.Fatalf("TakeLogin: %v", err)
		}
		if got.Client != client {
			t.Errorf("login for %q came back for %q", client, got.Client)
		}
	}
}

// testLoginClientExpiryFreesSlot: an expired login no longer counts, to the
// nanosecond.
func testLoginClientExpiryFreesSlot(t *testing.T, s store.Store, cfg Config) {
	const client = "198.51.100.0/24"
	first := saveClientLogins(t, s, client, 1, created)
	saveClientLogins(t, s, client, cfg.MaxLoginsPerClient-1, soon)
	expiry := created.Add(loginTTL)
	wantClientBusy(t, s, client, expiry)
	after := expiry.Add(time.Nanosecond)
	saveClientLogins(t, s, client, 1, after)
	wantClientBusy(t, s, client, after)
	if _, err := s.TakeLogin(t.Context(), first[0], after); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TakeLogin of the expired login = %v, want ErrNotFound", err)
	}
	// Once all have expired, the client has its whole bound again.
	later := after.Add(loginTTL + time.Second)
	saveClientLogins(t, s, client, cfg.MaxLoginsPerClient, later)
	wantClientBusy(t, s, client, later)
}

// testLoginClientTakeFreesSlot: a login taken back is no longer held.
func testLoginClientTakeFreesSlot(t *testing.T, s store.Store, cfg Config) {
	const client = "192.0.2.77"
	ids := saveClientLogins(t, s, client, cfg.MaxLoginsPerClient, created)
	wantClientBusy(t, s, client, soon)
	if _, err := s.TakeLogin(t.Context(), ids[0], soon); err != nil {
		t.Fatalf("TakeLogin: %v", err)
	}
	saveClientLogins(t, s, client, 1, soon)
	wantClientBusy(t, s, client, soon)
}

// testLoginClientReplace: saving again under an id replaces that login, for
// the client's count too.
func testLoginClientReplace(t *testing.T, s store.Store, cfg Config) {
	const client, other = "192.0.2.1", "192.0.2.2"
	ids := saveClientLogins(t, s, client, cfg.MaxLoginsPerClient, created)
	l := newLogin()
	l.Client = client
	mustSaveLogin(t, s, ids[0], l, soon.Add(loginTTL), soon)
	wantClientBusy(t, s, client, soon)
	// Moved to another client, the login frees its slot.
	l.Client = other
	mustSaveLogin(t, s, ids[0], l, soon.Add(loginTTL), soon)
	saveClientLogins(t, s, client, 1, soon)
	wantClientBusy(t, s, client, soon)
	got, err := s.TakeLogin(t.Context(), ids[0], soon)
	if err != nil {
		t.Fatalf("TakeLogin: %v", err)
	}
	sameLogin(t, got, l)
}

// testLoginClientConcurrent races saves for one client: exactly the bound
// of them succeeds.
func testLoginClientConcurrent(t *testing.T, s store.Store, cfg Config) {
	const client = "203.0.113.9"
	n := cfg.MaxLoginsPerClient + 10
	errs := make([]error, n)
	race(n, func(i int) {
		l := newLogin()
		l.Client = client
		errs[i] = s.SaveLogin(t.Context(), newToken(), l, soon.Add(loginTTL), soon)
	})
	saved := 0
	for i, err := range errs {
		switch {
		case err == nil:
			saved++
		case !errors.Is(err, store.ErrClientBusy):
			t.Errorf("goroutine %d: SaveLogin = %v, want nil or ErrClientBusy", i, err)
		}
	}
	if saved != cfg.MaxLoginsPerClient {
		t.Fatalf("%d of %d concurrent logins saved, want the bound %d", saved, n, cfg.MaxLoginsPerClient)
	}
}

func testMarkOnce(t *testing.T, s store.Store) {
	expires := base.Add(time.Hour)
	key, other := "assertion-"+newToken(), "assertion-"+newToken()
	mustMarkOnce(t, s, key, expires, base, true)
	mustMarkOnce(t, s, key, expires, base, false)
	mustMarkOnce(t, s, key, expires.Add(time.Hour), soon, false)
	mustMarkOnce(t, s, other, expires, soon, true)
	mustMarkOnce(t, s, other, expires, soon, false)
	mustMarkOnce(t, s, key, expires, soon, false)
}

func testMarkOnceConcurrent(t *testing.T, s store.Store) {
	const n = 20
	key := "assertion-" + newToken()
	expires := base.Add(time.Hour)
	fresh := make([]bool, n)
	errs := make([]error, n)
	race(n, func(i int) {
		fresh[i], errs[i] = s.MarkOnce(t.Context(), key, expires, base)
	})
	count := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("goroutine %d: MarkOnce: %v", i, errs[i])
		}
		if fresh[i] {
			count++
		}
	}
	if count != 1 {
		t.Fatalf("%d of %d concurrent MarkOnce calls reported a new key, want exactly 1", count, n)
	}
}

// testMarkOnceAfterExpiry: a mark holds until its expiry, to the
// nanosecond, and is new again after it.
func testMarkOnceAfterExpiry(t *testing.T, s store.Store) {
	key := "assertion-" + newToken()
	expires := base.Add(100*time.Millisecond + 1)
	mustMarkOnce(t, s, key, expires, base, true)
	mustMarkOnce(t, s, key, expires, base, false)
	mustMarkOnce(t, s, key, expires, expires, false)
	after := expires.Add(time.Nanosecond)
	mustMarkOnce(t, s, key, after.Add(time.Hour), after, true)
	mustMarkOnce(t, s, key, after.Add(time.Hour), after, false)
}

// testMarkOnceExtends: a repeated key keeps the later of its two expiries.
func testMarkOnceExtends(t *testing.T, s store.Store) {
	key := "assertion-" + newToken()
	mustMarkOnce(t, s, key, base.Add(time.Minute), base, true)
	mustMarkOnce(t, s, key, base.Add(time.Hour), base, false)
	mustMarkOnce(t, s, key, base.Add(time.Second), base.Add(30*time.Minute), false)
	mustMarkOnce(t, s, key, base.Add(2*time.Hour), base.Add(time.Hour+1), true)
}

// testMarkOncePastExpiry: a key whose expiry is already past is new unless
// it is recorded, and is not recorded.
func testMarkOncePastExpiry(t *testing.T, s store.Store) {
	key := "assertion-" + newToken()
	mustMarkOnce(t, s, key, base.Add(-time.Second), base, true)
	mustMarkOnce(t, s, key, base.Add(-time.Second), base, true)
	mustMarkOnce(t, s, key, base.Add(time.Hour), base, true)
	mustMarkOnce(t, s, key, base.Add(-time.Second), base, false)
}
