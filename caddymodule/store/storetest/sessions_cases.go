package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// The cases of RunSessions on recorded sessions.

const (
	alice = "alice@example.com"
	bob   = "bob@example.com"
)

func testRecordList(t *testing.T, s store.SessionStore) {
	// Nanoseconds and a location of its own: both must survive.
	t0 := authTime.Add(time.Hour)
	s1 := newSession(alice, t0)
	s2 := newSession(alice, t0.Add(time.Second))
	s2.Method, s2.IP = "cli", otherIP
	s3 := newSession(alice, t0.Add(2*time.Second))
	b1 := newSession(bob, t0)
	now := t0.Add(3 * time.Second)
	for _, x := range []*store.Session{s2, s1, s3, b1} {
		mustRecord(t, s, x, 10, now)
	}
	wantSessions(t, mustList(t, s, alice, now), s3, s2, s1)
	wantSessions(t, mustList(t, s, bob, now), b1)
	wantSessions(t, mustList(t, s, "carol@example.com", now))
	// Users are exact strings.
	wantSessions(t, mustList(t, s, "Alice@example.com", now))
}

func testRecordCopiesInput(t *testing.T, s store.SessionStore) {
	x := newSession(alice, base)
	want := *x
	mustRecord(t, s, x, 10, base)
	x.Method, x.IP, x.Expires = "changed", "changed", base.Add(time.Minute)
	wantSessions(t, mustList(t, s, alice, base.Add(time.Hour)), &want)
}

func testRecordReplacesSameID(t *testing.T, s store.SessionStore) {
	s1 := newSession(alice, base)
	s2 := newSession(alice, base.Add(time.Second))
	mustRecord(t, s, s1, 10, base)
	mustRecord(t, s, s2, 10, base.Add(time.Second))
	// The same id again, later and longer (a renewed token): one record,
	// the new one, now the newest.
	r := *s1
	r.Method, r.IP = "cli", otherIP
	r.Created, r.Expires = base.Add(2*time.Second), base.Add(2*sessionTTL)
	mustRecord(t, s, &r, 10, r.Created)
	wantSessions(t, mustList(t, s, alice, r.Created), &r, s2)
	wantSessions(t, mustList(t, s, alice, s2.Expires), &r)
}

func testRecordExpired(t *testing.T, s store.SessionStore) {
	x := newSession(alice, base)
	x.Expires = base.Add(time.Minute)
	mustRecord(t, s, x, 10, x.Expires)
	// Not stored: not even a list at an earlier time shows it.
	wantSessions(t, mustList(t, s, alice, base))

	// A live session replaced by an expired copy is gone.
	y := newSession(alice, base)
	mustRecord(t, s, y, 10, base)
	dead := *y
	dead.Expires = base.Add(time.Minute)
	mustRecord(t, s, &dead, 10, dead.Expires)
	wantSessions(t, mustList(t, s, alice, base))
}

func testRecordInvalid(t *testing.T, s store.SessionStore) {
	noID := newSession(alice, base)
	noID.ID = ""
	noUser := newSession("", base)
	for name, x := range map[string]*store.Session{"nil": nil, "no id": noID, "no user": noUser} {
		if err := s.RecordSession(t.Context(), x, 10, base); err == nil {
			t.Errorf("RecordSession of a session with %s: no error", name)
		}
	}
	wantSessions(t, mustList(t, s, "", base))
	wantSessions(t, mustList(t, s, alice, base))
}

func testListExpired(t *testing.T, s store.SessionStore) {
	x := newSession(alice, base)
	mustRecord(t, s, x, 10, base)
	wantSessions(t, mustList(t, s, alice, x.Expires.Add(-time.Nanosecond)), x)
	wantSessions(t, mustList(t, s, alice, x.Expires))
	wantSessions(t, mustList(t, s, alice, x.Expires.Add(time.Hour)))
}

// testListIsolation: what one object records, the other lists.
func testListIsolation(t *testing.T, a, b store.SessionStore) {
	x := newSession(alice, base)
	y := newSession(bob, base)
	mustRecord(t, a, x, 10, base)
	mustRecord(t, b, y, 10, base)
	wantSessions(t, mustList(t, b, alice, base), x)
	wantSessions(t, mustList(t, a, bob, base), y)
}

func testCapDropsOldest(t *testing.T, s store.SessionStore) {
	var all []*store.Session
	for i := range 5 {
		x := newSession(alice, base.Add(time.Duration(i)*time.Second))
		all = append(all, x)
		mustRecord(t, s, x, 3, x.Created)
	}
	mustRecord(t, s, newSession(bob, base), 3, base.Add(5*time.Second))
	wantSessions(t, mustList(t, s, alice, base.Add(5*time.Second)), all[4], all[3], all[2])
}

// testCapOldestArrivingLate: a session older than those kept is itself
// the one dropped.
func testCapOldestArrivingLate(t *testing.T, s store.SessionStore) {
	s10 := newSession(alice, base.Add(10*time.Second))
	s20 := newSession(alice, base.Add(20*time.Second))
	old := newSession(alice, base.Add(5*time.Second))
	now := base.Add(30 * time.Second)
	for _, x := range []*store.Session{s10, s20, old} {
		mustRecord(t, s, x, 2, now)
	}
	wantSessions(t, mustList(t, s, alice, now), s20, s10)
}

// testCapIgnoresExpired: an expired session takes no place; the live ones
// stay even when older.
func testCapIgnoresExpired(t *testing.T, s store.SessionStore) {
	s1 := newSession(alice, base)
	mustRecord(t, s, s1, 2, base.Add(50*time.Second))
	s2 := newSession(alice, base.Add(51*time.Second))
	s2.Expires = base.Add(60 * time.Second)
	mustRecord(t, s, s2, 2, s2.Created)
	s3 := newSession(alice, base.Add(70*time.Second))
	mustRecord(t, s, s3, 2, s3.Created)
	wantSessions(t, mustList(t, s, alice, s3.Created), s3, s1)
}

// testCapConcurrent records sessions of one user from many goroutines
// through both objects: the newest stay, exactly as many as the bound.
func testCapConcurrent(t *testing.T, a, b store.SessionStore) {
	const n, bound = 20, 5
	all := make([]*store.Session, n)
	for i := range all {
		all[i] = newSession(alice, base.Add(time.Duration(i)*time.Second))
	}
	now := base.Add(n * time.Second)
	race(n, func(i int) {
		s := a
		if i%2 == 1 {
			s = b
		}
		if err := s.RecordSession(t.Context(), all[i], bound, now); err != nil {
			t.Errorf("RecordSession %d: %v", i, err)
		}
	})
	wantSessions(t, mustList(t, a, alice, now), all[19], all[18], all[17], all[16], all[15])
}

func testRevokeSession(t *testing.T, a, b store.SessionStore) {
	s1 := newSession(alice, base)
	s2 := newSession(alice, base.Add(time.Second))
	mustRecord(t, a, s1, 10, base)
	mustRecord(t, a, s2, 10, base.Add(time.Second))
	now := base.Add(time.Minute)
	rv := store.Revocation{Kind: store.RevokeSession, Subject: s1.ID, At: now, Expires: s1.Expires}
	mustRevoke(t, b, rv, now)
	wantSessions(t, mustList(t, a, alice, now), s2)
	wantRevocation(t, mustRevocations(t, a, now), rv)
	// A session nobody recorded (another instance's, or already dropped)
	// is revoked all the same.
	unknown := store.Revocation{Kind: store.RevokeSession, Subject: newToken(), At: now, Expires: now.Add(time.Hour)}
	mustRevoke(t, a, unknown, now)
	got := mustRevocations(t, b, now)
	wantRevocation(t, got, unknown)
	if len(got) != 2 {
		t.Errorf("%d revocations, want 2", len(got))
	}
}

func testRevokeUser(t *testing.T, a, b store.SessionStore) {
	s0 := newSession(alice, base)
	s1 := newSession(alice, base.Add(time.Second))
	s2 := newSession(alice, base.Add(2*time.Second))
	b0 := newSession(bob, base)
	now := base.Add(time.Minute)
	for _, x := range []*store.Session{s0, s1, s2, b0} {
		mustRecord(t, a, x, 10, x.Created)
	}
	// Sessions begun before At end; one begun at At does not.
	rv := store.Revocation{Kind: store.RevokeUser, Subject: alice, At: s1.Created, Expires: now.Add(sessionTTL)}
	mustRevoke(t, b, rv, now)
	wantSessions(t, mustList(t, a, alice, now), s2, s1)
	wantSessions(t, mustList(t, a, bob, now), b0)
	wantRevocation(t, mustRevocations(t, a, now), rv)
}

// testRevokeMerge: a record of the same kind and subject keeps the later
// time and the later expiry; the sessions the merged record ends go.
func testRevokeMerge(t *testing.T, a, b store.SessionStore) {
	rv := func(at, exp time.Duration) store.Revocation {
		return store.Revocation{Kind: store.RevokeUser, Subject: alice, At: base.Add(at), Expires: base.Add(exp)}
	}
	mustRevoke(t, a, rv(10*time.Second, time.Hour), base.Add(10*time.Second))
	mustRevoke(t, b, rv(5*time.Second, 2*time.Hour), base.Add(20*time.Second))
	wantRevocation(t, mustRevocations(t, a, base.Add(20*time.Second)), rv(10*time.Second, 2*time.Hour))

	x := newSession(alice, base.Add(20*time.Second))
	mustRecord(t, a, x, 10, x.Created)
	mustRevoke(t, b, rv(30*time.Second, 90*time.Minute), base.Add(30*time.Second))
	wantRevocation(t, mustRevocations(t, b, base.Add(30*time.Second)), rv(30*time.Second, 2*time.Hour))
	wantSessions(t, mustList(t, a, alice, base.Add(30*time.Second)))

	// The block of the same user is a record of its own.
	block := store.Revocation{Kind: store.RevokeBlock, Subject: alice, At: base, Expires: base.Add(time.Hour)}
	mustRevoke(t, a, block, base.Add(30*time.Second))
	longer := block
	longer.Expires = base.Add(3 * time.Hour)
	mustRevoke(t, b, longer, base.Add(40*time.Second))
	shorter := block
	shorter.Expires = base.Add(time.Minute)
	mustRevoke(t, a, shorter, base.Add(50*time.Second))
	got := mustRevocations(t, b, base.Add(50*time.Second))
	wantRevocation(t, got, longer)
	wantRevocation(t, got, rv(30*time.Second, 2*time.Hour))
}

// testRevokeMergeExpired: an expired record is replaced, not merged.
func testRevokeMergeExpired(t *testing.T, s store.SessionStore) {
	first := store.Revocation{Kind: store.RevokeUser, Subject: alice, At: base.Add(10 * time.Second), Expires: base.Add(time.Minute)}
	mustRevoke(t, s, first, first.At)
	second := store.Revocation{Kind: store.RevokeUser, Subject: alice, At: base.Add(5 * time.Second), Expires: base.Add(3 * time.Minute)}
	now := base.Add(2 * time.Minute)
	mustRevoke(t, s, second, now)
	got := mustRevocations(t, s, now)
	wantRevocation(t, got, second)
	if len(got) != 1 {
		t.Errorf("%d revocations, want 1", len(got))
	}
}

func testRevokeInvalid(t *testing.T, s store.SessionStore) {
	good := store.Revocation{Kind: store.RevokeSession, Subject: "sid", At: base, Expires: base.Add(time.Hour)}
	bad := map[string]func(*store.Revocation){
		"no kind":        func(r *store.Revocation) { r.Kind = "" },
		"unknown kind":   func(r *store.Revocation) { r.Kind = "everything" },
		"kind in caps":   func(r *store.Revocation) { r.Kind = "Session" },
		"no subject":     func(r *store.Revocation) { r.Subject = "" },
		"no time":        func(r *store.Revocation) { r.At = time.Time{} },
		"no expiry":      func(r *store.Revocation) { r.Expires = time.Time{} },
		"no time at all": func(r *store.Revocation) { r.At, r.Expires = time.Time{}, time.Time{} },
	}
	for name, change := range bad {
		rv := good
		change(&rv)
		if err := s.Revoke(t.Context(), rv, base); err == nil {
			t.Errorf("Revoke with %s: no error", name)
		}
	}
	if got := mustRevocations(t, s, base); len(got) != 0 {
		t.Errorf("invalid revocations were stored: %v", got)
	}
	if err := s.Unblock(t.Context(), "", base); err == nil {
		t.Error("Unblock of no user: no error")
	}
}

func testBlockUnblock(t *testing.T, a, b store.SessionStore) {
	x := newSession(alice, base)
	mustRecord(t, a, x, 10, base)
	block := store.Revocation{Kind: store.RevokeBlock, Subject: alice, At: base, Expires: base.Add(time.Hour)}
	user := store.Revocation{Kind: store.RevokeUser, Subject: alice, At: base, Expires: base.Add(time.Hour)}
	mustRevoke(t, a, block, base)
	// A block refuses new tokens; it does not end the sessions.
	wantSessions(t, mustList(t, b, alice, base), x)
	mustRevoke(t, a, user, base)
	got := mustRevocations(t, b, base)
	wantRevocation(t, got, block)
	wantRevocation(t, got, user)

	if err := b.Unblock(t.Context(), alice, base); err != nil {
		t.Fatalf("Unblock: %v", err)
	}
	got = mustRevocations(t, a, base)
	wantRevocation(t, got, user)
	if len(got) != 1 {
		t.Errorf("after Unblock: %d revocations, want only %s", len(got), user.Key())
	}
	// Unblocking a user without a block is no error.
	if err := a.Unblock(t.Context(), bob, base); err != nil {
		t.Errorf("Unblock of a user without a block: %v", err)
	}
	// A block ends by itself.
	short := store.Revocation{Kind: store.RevokeBlock, Subject: bob, At: base, Expires: base.Add(time.Minute)}
	mustRevoke(t, b, short, base)
	wantRevocation(t, mustRevocations(t, a, base.Add(time.Minute-time.Nanosecond)), short)
	if _, ok := mustRevocations(t, a, base.Add(time.Minute))[short.Key()]; ok {
		t.Error("the block is listed at its expiry")
	}
}

func testRevocationsExpire(t *testing.T, s store.SessionStore) {
	var all []store.Revocation
	for i, d := range []time.Duration{time.Minute, 2 * time.Minute, time.Hour} {
		rv := store.Revocation{Kind: store.RevokeSession, Subject: fmt.Sprintf("sid%d", i), At: base, Expires: base.Add(d)}
		all = append(all, rv)
		mustRevoke(t, s, rv, base)
	}
	for _, c := range []struct {
		at   time.Time
		want []store.Revocation
	}{
		{base.Add(time.Minute - time.Nanosecond), all},
		{base.Add(time.Minute), all[1:]},
		{base.Add(2*time.Minute - time.Nanosecond), all[1:]},
		{base.Add(time.Hour), nil},
		{base.Add(24 * time.Hour), nil},
	} {
		got := mustRevocations(t, s, c.at)
		if len(got) != len(c.want) {
			t.Errorf("at %s: %d revocations, want %d", c.at.Sub(base), len(got), len(c.want))
		}
		for _, w := range c.want {
			wantRevocation(t, got, w)
		}
	}
	// A later write forgets the expired ones too.
	late := store.Revocation{Kind: store.RevokeUser, Subject: alice, At: base.Add(2 * time.Hour), Expires: base.Add(3 * time.Hour)}
	mustRevoke(t, s, late, late.At)
	if got := mustRevocations(t, s, base); len(got) != 1 {
		t.Errorf("after a later revocation, %d records remain at base, want the 1 unexpired", len(got))
	}
}

func testRevocationTimesExact(t *testing.T, s store.SessionStore) {
	rv := store.Revocation{Kind: store.RevokeUser, Subject: "ünïcode user <x@example.com>", At: authTime,
		Expires: authTime.Add(sessionTTL + 987*time.Nanosecond)}
	mustRevoke(t, s, rv, authTime)
	wantRevocation(t, mustRevocations(t, s, authTime), rv)
}

// testRevokeUserExcept: "sign out everywhere else" spares one session.
func testRevokeUserExcept(t *testing.T, a, b store.SessionStore) {
	s0 := newSession(alice, base)
	s1 := newSession(alice, base.Add(time.Second))
	s2 := newSession(alice, base.Add(2*time.Second))
	for _, x := range []*store.Session{s0, s1, s2} {
		mustRecord(t, a, x, 10, x.Created)
	}
	now := base.Add(time.Minute)
	rv := store.Revocation{Kind: store.RevokeUser, Subject: alice, At: now, Expires: now.Add(sessionTTL), Except: s1.ID}
	mustRevoke(t, b, rv, now)
	wantSessions(t, mustList(t, a, alice, now), s1)
	wantRevocation(t, mustRevocations(t, a, now), rv)
}

// testRevokeMergeExcept: the spared session goes with the later time; on
// a tie the stored one stays.
func testRevokeMergeExcept(t *testing.T, s store.SessionStore) {
	rv := func(at time.Duration, except string) store.Revocation {
		return store.Revocation{Kind: store.RevokeUser, Subject: alice, At: base.Add(at), Expires: base.Add(time.Hour), Except: except}
	}
	mustRevoke(t, s, rv(10*time.Second, "one"), base)
	mustRevoke(t, s, rv(5*time.Second, "two"), base)
	wantRevocation(t, mustRevocations(t, s, base), rv(10*time.Second, "one"))
	mustRevoke(t, s, rv(10*time.Second, "three"), base)
	wantRevocation(t, mustRevocations(t, s, base), rv(10*time.Second, "one"))
	mustRevoke(t, s, rv(20*time.Second, ""), base)
	wantRevocation(t, mustRevocations(t, s, base), rv(20*time.Second, ""))
	mustRevoke(t, s, rv(30*time.Second, "a,b:c"), base)
	wantRevocation(t, mustRevocations(t, s, base), rv(30*time.Second, "a,b:c"))
}
