package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// SessionsBackend makes one new, empty backend for a subtest and returns two
// store objects on it: a and b. A backend shared by several instances (Redis)
// returns two objects, as two instances would hold, so that the suite sees
// what b does reach a watcher of a; a backend of one process (memory)
// returns the same object twice.
type SessionsBackend func(t *testing.T) (a, b store.SessionStore)

// RunSessions runs the conformance suite for store.SessionStore against the
// backends newBackend makes, one subtest per case.
//
// The store must use the times it is given, never its own clock, and must
// remember a record until its expiry (the suite looks at most a day after
// base). Watch must call its function with a reload event first, then with
// an event for every Revoke and Unblock made through either object, within
// 10 seconds; it may add reload events at any time.
func RunSessions(t *testing.T, newBackend SessionsBackend) {
	t.Helper()
	for _, tc := range sessionCases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newBackend(t)
			if a == nil || b == nil {
				t.Fatal("newBackend returned nil")
			}
			tc.run(t, a, b)
		})
	}
}

var sessionCases = []struct {
	name string
	run  func(t *testing.T, a, b store.SessionStore)
}{
	{"RecordList", one(testRecordList)},
	{"RecordCopiesInput", one(testRecordCopiesInput)},
	{"RecordReplacesSameID", one(testRecordReplacesSameID)},
	{"RecordExpired", one(testRecordExpired)},
	{"RecordInvalid", one(testRecordInvalid)},
	{"ListExpired", one(testListExpired)},
	{"ListIsolation", testListIsolation},
	{"CapDropsOldest", one(testCapDropsOldest)},
	{"CapDropsOldestArrivingLate", one(testCapOldestArrivingLate)},
	{"CapIgnoresExpired", one(testCapIgnoresExpired)},
	{"CapConcurrent", testCapConcurrent},
	{"RevokeSession", testRevokeSession},
	{"RevokeUser", testRevokeUser},
	{"RevokeUserExcept", testRevokeUserExcept},
	{"RevokeMergeExcept", one(testRevokeMergeExcept)},
	{"RevokeMerge", testRevokeMerge},
	{"RevokeMergeExpired", one(testRevokeMergeExpired)},
	{"RevokeInvalid", one(testRevokeInvalid)},
	{"BlockUnblock", testBlockUnblock},
	{"RevocationsExpire", one(testRevocationsExpire)},
	{"RevocationTimesExact", one(testRevocationTimesExact)},
	{"WatchEvents", testWatchEvents},
	{"WatchReloadSeesEarlier", testWatchReloadSeesEarlier},
	{"WatchEndsWithContext", one(testWatchEndsWithContext)},
	{"WatchConcurrentRevokes", testWatchConcurrentRevokes},
}

// one adapts a case that needs a single object.
func one(f func(t *testing.T, s store.SessionStore)) func(t *testing.T, a, b store.SessionStore) {
	return func(t *testing.T, a, _ store.SessionStore) { f(t, a) }
}

// sessionTTL is the lifetime of the suite's sessions, as a browser session.
const sessionTTL = 12 * time.Hour

// newSession returns a browser session of user made at created.
func newSession(user string, created time.Time) *store.Session {
	return &store.Session{
		ID:      newToken(),
		User:    user,
		Method:  "saml",
		IP:      creatorIP,
		Created: created,
		Expires: created.Add(sessionTTL),
	}
}

func mustRecord(t *testing.T, s store.SessionStore, sess *store.Session, maxPerUser int, now time.Time) {
	t.Helper()
	if err := s.RecordSession(t.Context(), sess, maxPerUser, now); err != nil {
		t.Fatalf("RecordSession(%s): %v", sess.ID, err)
	}
}

func mustList(t *testing.T, s store.SessionStore, user string, now time.Time) []store.Session {
	t.Helper()
	got, err := s.ListSessions(t.Context(), user, now)
	if err != nil {
		t.Fatalf("ListSessions(%s): %v", user, err)
	}
	return got
}

func mustRevoke(t *testing.T, s store.SessionStore, rv store.Revocation, now time.Time) {
	t.Helper()
	if err := s.Revoke(t.Context(), rv, now); err != nil {
		t.Fatalf("Revoke(%s): %v", rv.Key(), err)
	}
}

func mustRevocations(t *testing.T, s store.SessionStore, now time.Time) map[string]store.Revocation {
	t.Helper()
	list, err := s.Revocations(t.Context(), now)
	if err != nil {
		t.Fatalf("Revocations: %v", err)
	}
	out := make(map[string]store.Revocation, len(list))
	for _, rv := range list {
		if _, dup := out[rv.Key()]; dup {
			t.Errorf("Revocations lists %s twice", rv.Key())
		}
		out[rv.Key()] = rv
	}
	return out
}

// wantSessions fails unless got holds exactly want, in that order.
func wantSessions(t *testing.T, got []store.Session, want ...*store.Session) {
	t.Helper()
	ids := func() (g, w []string) {
		for _, s := range got {
			g = append(g, s.ID)
		}
		for _, s := range want {
			w = append(w, s.ID)
		}
		return g, w
	}
	if len(got) != len(want) {
		g, w := ids()
		t.Fatalf("sessions %q, want %q", g, w)
	}
	for i := range got {
		if !sameSession(&got[i], want[i]) {
			t.Errorf("session %d\n got %+v\nwant %+v", i, got[i], *want[i])
		}
	}
}

func sameSession(a, b *store.Session) bool {
	return a.ID == b.ID && a.User == b.User && a.Method == b.Method && a.IP == b.IP &&
		a.Created.Equal(b.Created) && a.Expires.Equal(b.Expires)
}

// wantRevocation fails unless m holds a record equal to want.
func wantRevocation(t *testing.T, m map[string]store.Revocation, want store.Revocation) {
	t.Helper()
	got, ok := m[want.Key()]
	if !ok {
		t.Fatalf("no revocation %s among %v", want.Key(), slices.Collect(mapKeys(m)))
	}
	if !sameRevocation(got, want) {
		t.Errorf("revocation %s: got at %s expires %s except %q, want %s, %s and %q",
			want.Key(), got.At, got.Expires, got.Except, want.At, want.Expires, want.Except)
	}
}

func sameRevocation(a, b store.Revocation) bool {
	return a.Kind == b.Kind && a.Subject == b.Subject && a.At.Equal(b.At) && a.Expires.Equal(b.Expires) &&
		a.Except == b.Except
}

func mapKeys(m map[string]store.Revocation) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// watcher runs Watch on s until the test ends and hands its events over a
// channel. fn runs before an event is handed over (nil for none).
type watcher struct {
	events chan store.RevocationEvent
	done   chan struct{}
	cancel context.CancelFunc
}

func startWatch(t *testing.T, s store.SessionStore, fn func(store.RevocationEvent)) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{events: make(chan store.RevocationEvent, 100), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(w.done)
		s.Watch(ctx, func(e store.RevocationEvent) {
			if fn != nil {
				fn(e)
			}
			select {
			case w.events <- e:
			default:
				t.Errorf("watcher: more than %d events unread", cap(w.events))
			}
		})
	}()
	t.Cleanup(func() { w.stop(t) })
	return w
}

// stop ends the watch and fails unless Watch returns within 10 seconds.
func (w *watcher) stop(t *testing.T) {
	t.Helper()
	w.cancel()
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return within 10s of its context ending")
	}
}

// next returns the next event, skipping reload events unless reload is true.
func (w *watcher) next(t *testing.T, reload bool) store.RevocationEvent {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-w.events:
			if e.Reload() && !reload {
				continue
			}
			return e
		case <-deadline:
			t.Fatalf("no event within 10s (reload wanted: %v)", reload)
			return store.RevocationEvent{}
		}
	}
}

// wantRevoked fails unless e tells of a revocation equal to want.
func wantRevoked(t *testing.T, e store.RevocationEvent, want store.Revocation) {
	t.Helper()
	if e.Revoked == nil || e.Unblocked != "" {
		t.Fatalf("event %s, want the revocation %s", describe(e), want.Key())
	}
	if !sameRevocation(*e.Revoked, want) {
		t.Errorf("event revocation %+v, want %+v", *e.Revoked, want)
	}
}

func describe(e store.RevocationEvent) string {
	switch {
	case e.Reload():
		return "reload"
	case e.Revoked != nil:
		return fmt.Sprintf("revoked %s at %s until %s", e.Revoked.Key(), e.Revoked.At, e.Revoked.Expires)
	default:
		return "unblocked " + e.Unblocked
	}
}
