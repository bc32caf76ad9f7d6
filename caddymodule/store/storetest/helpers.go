package storetest

import (
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// Helpers the cases share.

// newToken returns a random uuid4 in its canonical form, as the handler
// makes them.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// upperHex returns s with its lower-case hex letters in upper case.
func upperHex(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// newChallenge returns a fresh pending challenge made at base.
func newChallenge() *store.Challenge {
	return &store.Challenge{
		Token:   newToken(),
		User:    "alice@example.com",
		IP:      creatorIP,
		Created: created,
		Expires: expiresAt,
		Status:  store.StatusPending,
	}
}

// approved creates, views and approves a challenge and returns it as the
// store should now hold it.
func approved(t *testing.T, s store.Store, groups []string) *store.Challenge {
	t.Helper()
	c := newChallenge()
	mustCreate(t, s, c)
	nonce := newToken()
	mustView(t, s, c.Token, nonce, soon)
	mustApprove(t, s, c.Token, nonce, "approver@example.com", groups, soon)
	c.Status = store.StatusSuccess
	c.Viewed = true
	c.Nonce = nonce
	c.Approver = "approver@example.com"
	c.Groups = slices.Clone(groups)
	c.AuthTime = authTime
	return c
}

// race runs f(0) … f(n-1) in n goroutines released at the same moment and
// waits for all of them.
func race(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

func mustCreate(t *testing.T, s store.Store, c *store.Challenge) {
	t.Helper()
	if err := s.Create(t.Context(), c, created); err != nil {
		t.Fatalf("Create(%s): %v", c.Token, err)
	}
}

func mustGet(t *testing.T, s store.Store, token string) *store.Challenge {
	t.Helper()
	c, err := s.Get(t.Context(), token, soon)
	if err != nil {
		t.Fatalf("Get(%s): %v", token, err)
	}
	if c == nil {
		t.Fatalf("Get(%s) returned nil and no error", token)
	}
	return c
}

func mustView(t *testing.T, s store.Store, token, nonce string, now time.Time) *store.Challenge {
	t.Helper()
	c, err := s.View(t.Context(), token, nonce, now)
	if err != nil {
		t.Fatalf("View(%s): %v", token, err)
	}
	if c == nil {
		t.Fatalf("View(%s) returned nil and no error", token)
	}
	if !c.Viewed || c.Nonce != nonce {
		t.Fatalf("View(%s) returned viewed=%v nonce=%q, want true and %q", token, c.Viewed, c.Nonce, nonce)
	}
	return c
}

func mustApprove(t *testing.T, s store.Store, token, nonce, approver string, groups []string, now time.Time) {
	t.Helper()
	if err := s.Approve(t.Context(), token, nonce, store.Approval{Approver: approver, Groups: groups, AuthTime: authTime}, now); err != nil {
		t.Fatalf("Approve(%s): %v", token, err)
	}
}

// wantPoll polls and fails unless the outcome is want; a success must come
// with a successful challenge for token.
func wantPoll(t *testing.T, s store.Store, token, ip string, checkIP bool, now time.Time, want store.PollOutcome) *store.Challenge {
	t.Helper()
	got, c, err := s.Poll(t.Context(), token, ip, checkIP, now)
	if err != nil {
		t.Fatalf("Poll(%s, %q, checkIP=%v): %v", token, ip, checkIP, err)
	}
	if got != want {
		t.Fatalf("Poll(%s, %q, checkIP=%v) at %s = %v, want %v",
			token, ip, checkIP, now.Sub(base), got, want)
	}
	switch want {
	case store.PollSuccess:
		if c == nil || c.Token != token || c.Status != store.StatusSuccess {
			t.Fatalf("PollSuccess came with %+v, want the approved challenge %s", c, token)
		}
	case store.PollUnknown:
		if c != nil {
			t.Fatalf("PollUnknown came with a challenge: %+v", c)
		}
	}
	return c
}

func mustSaveLogin(t *testing.T, s store.Store, id string, l *store.LoginState, expires, now time.Time) {
	t.Helper()
	if err := s.SaveLogin(t.Context(), id, l, expires, now); err != nil {
		t.Fatalf("SaveLogin(%s): %v", id, err)
	}
}

func mustMarkOnce(t *testing.T, s store.Store, key string, expires, now time.Time, want bool) {
	t.Helper()
	got, err := s.MarkOnce(t.Context(), key, expires, now)
	if err != nil {
		t.Fatalf("MarkOnce(%s): %v", key, err)
	}
	if got != want {
		t.Fatalf("MarkOnce(%s) until %s at %s = %v, want %v", key, expires.Sub(base), now.Sub(base), got, want)
	}
}

// sameChallenge fails unless got equals want field by field; times are
// compared as instants and groups as lists, nil and empty alike.
func sameChallenge(t *testing.T, got, want *store.Challenge) {
	t.Helper()
	if got == nil {
		t.Fatalf("got no challenge, want %+v", want)
	}
	type fields struct {
		Token, User, IP, Nonce, Approver string
		Status                           store.Status
		Viewed                           bool
	}
	g := fields{got.Token, got.User, got.IP, got.Nonce, got.Approver, got.Status, got.Viewed}
	w := fields{want.Token, want.User, want.IP, want.Nonce, want.Approver, want.Status, want.Viewed}
	if g != w {
		t.Errorf("challenge\n got %+v\nwant %+v", g, w)
	}
	if !got.Created.Equal(want.Created) || !got.Expires.Equal(want.Expires) || !got.AuthTime.Equal(want.AuthTime) {
		t.Errorf("challenge times: got created %s expires %s auth time %s, want %s, %s and %s",
			got.Created, got.Expires, got.AuthTime, want.Created, want.Expires, want.AuthTime)
	}
	if !slices.Equal(got.Groups, want.Groups) {
		t.Errorf("challenge groups: got %q, want %q", got.Groups, want.Groups)
	}
}

func sameLogin(t *testing.T, got, want *store.LoginState) {
	t.Helper()
	if got == nil {
		t.Fatalf("got no login state, want %+v", want)
	}
	if got.RequestID != want.RequestID || got.ReturnPath != want.ReturnPath || got.Client != want.Client ||
		!got.Created.Equal(want.Created) {
		t.Errorf("login state\n got %+v\nwant %+v", got, want)
	}
}

func mustCancel(t *testing.T, s store.Store, token string, now time.Time) {
	t.Helper()
	if err := s.Cancel(t.Context(), token, now); err != nil {
		t.Fatalf("Cancel(%s): %v", token, err)
	}
}
