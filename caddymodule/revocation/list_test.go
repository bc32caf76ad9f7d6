package revocation

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

var t0 = time.Unix(1_800_000_000, 250_000_000)

func TestCheck(t *testing.T) {
	l := NewList()
	l.now = func() time.Time { return t0 }
	l.Apply(store.Revocation{Kind: store.RevokeSession, Subject: "s1", At: t0, Expires: t0.Add(time.Hour)})
	l.Apply(store.Revocation{Kind: store.RevokeUser, Subject: "u", At: t0, Expires: t0.Add(time.Hour), Except: "keep"})
	for _, tc := range []struct {
		tok  Token
		now  time.Time
		want string
	}{
		{Token{SessionID: "s1", User: "x"}, t0, ReasonSession},
		{Token{SessionID: "s1", User: "x"}, t0.Add(2 * time.Hour), ""}, // record expired
		{Token{SessionID: "s2", User: "x"}, t0, ""},
		{Token{User: "u", AuthTime: t0.Add(-time.Second), Whole: true}, t0, ReasonUser},
		// auth_time in the revocation's second: a whole second is not
		// before it (such a session is revoked by its id).
		{Token{User: "u", AuthTime: t0.Truncate(time.Second), Whole: true}, t0, ""},
		// the precise time of a sign-in being minted
		{Token{User: "u", AuthTime: t0.Add(-time.Millisecond)}, t0, ReasonUser},
		{Token{User: "u", AuthTime: t0.Add(time.Millisecond)}, t0, ""},
		{Token{User: "u", SessionID: "keep", AuthTime: t0.Add(-time.Hour), Whole: true}, t0, ""},
		{Token{User: "u", AuthTime: t0.Add(-time.Second), Whole: true}, t0.Add(2 * time.Hour), ""},
	} {
		if got := l.Check(tc.tok, tc.now); got != tc.want {
			t.Errorf("Check(%+v at %v) = %q, want %q", tc.tok, tc.now.Sub(t0), got, tc.want)
		}
	}
	// A later user revocation without an exception ends the spared one.
	l.Apply(store.Revocation{Kind: store.RevokeUser, Subject: "u", At: t0.Add(time.Minute), Expires: t0.Add(time.Hour)})
	if got := l.Check(Token{User: "u", SessionID: "keep", AuthTime: t0, Whole: true}, t0.Add(time.Minute)); got != ReasonUser {
		t.Errorf("spared session after a later revocation: %q", got)
	}
}

// A reload only adds revocations (one made while the listing was read
// stays), but drops a block the listing no longer has, unless the block
// was learnt after the listing began.
func TestReload(t *testing.T) {
	l := NewList()
	now := t0
	l.now = func() time.Time { return now }
	l.Apply(store.Revocation{Kind: store.RevokeSession, Subject: "made-meanwhile", At: now, Expires: now.Add(time.Hour)})
	l.Apply(store.Revocation{Kind: store.RevokeBlock, Subject: "lifted", At: now, Expires: now.Add(time.Hour)})
	started := now.Add(time.Second)
	now = now.Add(2 * time.Second)
	l.Apply(store.Revocation{Kind: store.RevokeBlock, Subject: "new-block", At: now, Expires: now.Add(time.Hour)})
	l.Reload([]store.Revocation{{Kind: store.RevokeSession, Subject: "listed", At: t0, Expires: t0.Add(time.Hour)}}, started)
	if l.Check(Token{SessionID: "made-meanwhile"}, now) == "" || l.Check(Token{SessionID: "listed"}, now) == "" {
		t.Error("a reload lost a revocation")
	}
	if _, b := l.Blocked("lifted", now); b {
		t.Error("a block the store no longer has survived the reload")
	}
	if _, b := l.Blocked("new-block", now); !b {
		t.Error("a block learnt during the reload was dropped")
	}
	l.Prune(now.Add(2 * time.Hour))
	if l.Len() != 0 {
		t.Errorf("%d records left after everything expired", l.Len())
	}
}

// The keeper applies what the store tells it, and loads everything
// when it starts.
func TestKeeper(t *testing.T) {
	st := store.NewMemorySessions()
	now := time.Now()
	if err := st.Revoke(context.Background(), store.Revocation{Kind: store.RevokeSession, Subject: "before", At: now, Expires: now.Add(time.Hour)}, now); err != nil {
		t.Fatal(err)
	}
	l := NewList()
	k := &Keeper{Store: st, List: l}
	k.Start()
	defer k.Stop()
	if !eventually(func() bool { return l.Check(Token{SessionID: "before"}, now) != "" }) {
		t.Error("the first load missed a revocation")
	}
	if err := st.Revoke(context.Background(), store.Revocation{Kind: store.RevokeBlock, Subject: "u", At: now, Expires: now.Add(time.Hour)}, now); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { _, b := l.Blocked("u", now); return b }) {
		t.Error("a revocation through the store was not applied")
	}
	if err := st.Unblock(context.Background(), "u", now); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { _, b := l.Blocked("u", now); return !b }) {
		t.Error("an unblock through the store was not applied")
	}
}

// eventually polls cond for up to two seconds: the store tells its
// watchers from another goroutine.
func eventually(cond func() bool) bool {
	for range 200 {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// Memory per revoked session, as README states it.
func TestBytesPerRevocation(t *testing.T) {
	const n = 100_000
	l := NewList()
	runtime.GC()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		id := fmt.Sprintf("%022d", i) // as long as a session id
		l.Apply(store.Revocation{Kind: store.RevokeSession, Subject: id, At: t0, Expires: t0.Add(time.Hour)})
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	t.Logf("%.0f bytes per revoked session", per)
	if per <= 0 || per > 200 {
		t.Errorf("%.0f bytes per revoked session", per)
	}
	runtime.KeepAlive(l)
}

// BenchmarkCheck is the look-up every request with a cookie pays, with
// 100,000 revocations held.
func BenchmarkCheck(b *testing.B) {
	l := NewList()
	for i := range 100_000 {
		l.Apply(store.Revocation{Kind: store.RevokeSession, Subject: fmt.Sprintf("%022d", i), At: t0, Expires: t0.Add(time.Hour)})
	}
	tok := Token{SessionID: "not-revoked-0000000000", User: "alice@example.com", AuthTime: t0, Whole: true}
	b.ReportAllocs()
	for b.Loop() {
		if l.Check(tok, t0) != "" {
			b.Fatal("refused")
		}
	}
}
