// Package storetest is the conformance suite for store.Store: every backend
// runs the same table of cases, so that the handler can rely on the contract
// whatever holds its challenges.
package storetest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// base is the "now" of the suite. Every time the suite passes is base plus an
// offset, so a backend must use the times it is given, never its own clock,
// except for MarkOnce, which has no time parameter.
var base = time.Unix(1_800_000_000, 0)

// ttl is the lifetime of the suite's challenges, as the handler's default.
const ttl = 2 * time.Minute

// Times the suite uses, relative to base.
var (
	created   = base
	soon      = base.Add(10 * time.Second)     // well within the ttl
	expiresAt = base.Add(ttl)                  // the challenges' Expires
	late      = base.Add(ttl + 5*time.Second)  // expired, still remembered
	muchLater = base.Add(ttl + 10*time.Second) // expired, still remembered
)

const (
	creatorIP = "192.0.2.10"
	otherIP   = "198.51.100.7"
)

// Run runs the conformance suite against the stores newStore makes, one
// subtest per case.
//
// newStore must return a new, empty store for each call; Run closes it when
// the subtest ends and fails the subtest if Close fails. The store must
// remember an expired challenge for at least 15 seconds after its expiry
// (the suite checks PollExpired 5 and 10 seconds after it), and must allow
// at least 100 pending challenges, logins and MarkOnce keys.
//
// One case waits about a second of wall-clock time: MarkOnce takes no "now",
// so its expiry can only be checked against the real clock.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.run(t, s)
		})
	}
}

var cases = []struct {
	name string
	run  func(t *testing.T, s store.Store)
}{
	{"CreateGet", testCreateGet},
	{"CreateCopiesInput", testCreateCopiesInput},
	{"CreateExisting", testCreateExisting},
	{"CreateConcurrentSameToken", testCreateConcurrentSameToken},
	{"GetUnknown", testGetUnknown},
	{"GetReturnsCopy", testGetReturnsCopy},
	{"TokensAreExactStrings", testTokensAreExactStrings},
	{"PollUnknown", testPollUnknown},
	{"PollPending", testPollPending},
	{"PollPendingAtExpiry", testPollPendingAtExpiry},
	{"PollOtherIPChecked", testPollOtherIPChecked},
	{"PollOtherIPUnchecked", testPollOtherIPUnchecked},
	{"PollExpired", testPollExpired},
	{"PollExpiredBeforeIPCheck", testPollExpiredBeforeIPCheck},
	{"ViewSetsNonce", testViewSetsNonce},
	{"ViewTwice", testViewTwice},
	{"ViewExpired", testViewExpired},
	{"ViewUnknown", testViewUnknown},
	{"ViewConcurrent", testViewConcurrent},
	{"ApproveWithoutView", testApproveWithoutView},
	{"ApproveWrongNonce", testApproveWrongNonce},
	{"ApproveUnknown", testApproveUnknown},
	{"ApproveExpired", testApproveExpired},
	{"ApproveThenPoll", testApproveThenPoll},
	{"ApproveCopiesGroups", testApproveCopiesGroups},
	{"PollSuccessOtherIPChecked", testPollSuccessOtherIPChecked},
	{"PollSuccessOtherIPUnchecked", testPollSuccessOtherIPUnchecked},
	{"PollSuccessAfterExpiry", testPollSuccessAfterExpiry},
	{"PollConcurrentSuccess", testPollConcurrentSuccess},
	{"Isolation", testIsolation},
	{"Unicode", testUnicode},
	{"EmptyGroups", testEmptyGroups},
	{"LoginRoundTrip", testLoginRoundTrip},
	{"LoginUnknown", testLoginUnknown},
	{"LoginExpired", testLoginExpired},
	{"LoginCopiesInput", testLoginCopiesInput},
	{"LoginConcurrentTake", testLoginConcurrentTake},
	{"MarkOnce", testMarkOnce},
	{"MarkOnceConcurrent", testMarkOnceConcurrent},
	{"MarkOnceAfterExpiry", testMarkOnceAfterExpiry},
}

func testCreateGet(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	got, err := s.Get(t.Context(), c.Token)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got == c {
		t.Fatal("Get returned the pointer given to Create")
	}
	sameChallenge(t, got, c)
}

func testCreateCopiesInput(t *testing.T, s store.Store) {
	c := newChallenge()
	c.Groups = []string{"kept"}
	want := *c
	want.Groups = []string{"kept"}
	mustCreate(t, s, c)
	c.User = "mallory@example.com"
	c.IP = otherIP
	c.Groups[0] = "changed"
	got := mustGet(t, s, want.Token)
	sameChallenge(t, got, &want)
}

func testCreateExisting(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	dup := newChallenge()
	dup.Token = c.Token
	dup.User = "mallory@example.com"
	dup.IP = otherIP
	if err := s.Create(t.Context(), dup); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second Create = %v, want ErrExists", err)
	}
	sameChallenge(t, mustGet(t, s, c.Token), c)
}

func testCreateConcurrentSameToken(t *testing.T, s store.Store) {
	const n = 20
	token := newToken()
	errs := make([]error, n)
	race(n, func(i int) {
		c := newChallenge()
		c.Token = token
		c.User = fmt.Sprintf("user%d@example.com", i)
		errs[i] = s.Create(t.Context(), c)
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("Create succeeded for goroutines %d and %d", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrExists):
			t.Errorf("goroutine %d: Create = %v, want nil or ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no Create succeeded")
	}
	if got, want := mustGet(t, s, token).User, fmt.Sprintf("user%d@example.com", winner); got != want {
		t.Errorf("stored user %q, want the winner's %q", got, want)
	}
}

func testGetUnknown(t *testing.T, s store.Store) {
	mustCreate(t, s, newChallenge())
	got, err := s.Get(t.Context(), newToken())
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(unknown) = %+v, %v, want ErrNotFound", got, err)
	}
}

func testGetReturnsCopy(t *testing.T, s store.Store) {
	c := approved(t, s, []string{"admins", "ops"})
	got := mustGet(t, s, c.Token)
	if len(got.Groups) != 2 {
		t.Fatalf("groups %q, want 2", got.Groups)
	}
	got.Groups[0] = "changed"
	got.User = "changed"
	got.Approver = "changed"
	again := mustGet(t, s, c.Token)
	if again.Groups[0] != "admins" || again.User != c.User || again.Approver != c.Approver {
		t.Fatalf("mutating Get's result changed the store: %+v", again)
	}
}

// testTokensAreExactStrings checks that tokens are compared as strings: an
// upper-case uuid and a non-uuid token are distinct keys.
func testTokensAreExactStrings(t *testing.T, s store.Store) {
	lower := newChallenge()
	upper := newChallenge()
	upper.Token = upperHex(lower.Token)
	upper.User = "upper@example.com"
	other := newChallenge()
	other.Token = "not-a-uuid_0123"
	other.User = "other@example.com"
	for _, c := range []*store.Challenge{lower, upper, other} {
		mustCreate(t, s, c)
	}
	for _, c := range []*store.Challenge{lower, upper, other} {
		sameChallenge(t, mustGet(t, s, c.Token), c)
	}
	wantPoll(t, s, upper.Token, creatorIP, true, soon, store.PollPending)
	nonce := newToken()
	mustView(t, s, other.Token, nonce, soon)
	mustApprove(t, s, other.Token, nonce, "approver@example.com", nil, soon)
	wantPoll(t, s, other.Token, creatorIP, true, soon, store.PollSuccess)
	wantPoll(t, s, other.Token, creatorIP, true, soon, store.PollUnknown)
	wantPoll(t, s, lower.Token, creatorIP, true, soon, store.PollPending)
	if got := mustGet(t, s, lower.Token); got.Viewed {
		t.Errorf("viewing %q marked %q viewed", other.Token, lower.Token)
	}
}

func testPollUnknown(t *testing.T, s store.Store) {
	mustCreate(t, s, newChallenge())
	c := wantPoll(t, s, newToken(), creatorIP, true, soon, store.PollUnknown)
	if c != nil {
		t.Errorf("PollUnknown came with a challenge: %+v", c)
	}
}

func testPollPending(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	for range 3 {
		wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollPending)
	}
	sameChallenge(t, mustGet(t, s, c.Token), c)
}

// testPollPendingAtExpiry checks the boundary of Challenge.Expired: at
// exactly Expires a challenge is still usable.
func testPollPendingAtExpiry(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	wantPoll(t, s, c.Token, creatorIP, true, expiresAt, store.PollPending)
	mustView(t, s, c.Token, "nonce", expiresAt)
	mustApprove(t, s, c.Token, "nonce", "approver@example.com", nil, expiresAt)
	wantPoll(t, s, c.Token, creatorIP, true, expiresAt, store.PollSuccess)
}

func testPollOtherIPChecked(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	wantPoll(t, s, c.Token, otherIP, true, soon, store.PollUnauthorized)
	wantPoll(t, s, c.Token, "", true, soon, store.PollUnauthorized)
	wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollPending)
	sameChallenge(t, mustGet(t, s, c.Token), c)

	v6 := newChallenge()
	v6.IP = "2001:db8::1"
	mustCreate(t, s, v6)
	for _, ip := range []string{"2001:db8::2", "2001:DB8::1", creatorIP} {
		wantPoll(t, s, v6.Token, ip, true, soon, store.PollUnauthorized)
	}
	wantPoll(t, s, v6.Token, v6.IP, true, soon, store.PollPending)
}

func testPollOtherIPUnchecked(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	wantPoll(t, s, c.Token, otherIP, false, soon, store.PollPending)
	sameChallenge(t, mustGet(t, s, c.Token), c)
}

func testPollExpired(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	wantPoll(t, s, c.Token, creatorIP, true, late, store.PollExpired)
	wantPoll(t, s, c.Token, creatorIP, true, late, store.PollUnknown)
	if _, err := s.Get(t.Context(), c.Token); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after PollExpired = %v, want ErrNotFound", err)
	}
}

// testPollExpiredBeforeIPCheck checks ConsoleMe's order: expiry is checked,
// and the challenge deleted, before the IP.
func testPollExpiredBeforeIPCheck(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	wantPoll(t, s, c.Token, otherIP, true, late, store.PollExpired)
	wantPoll(t, s, c.Token, creatorIP, true, muchLater, store.PollUnknown)
}

func testViewSetsNonce(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	got := mustView(t, s, c.Token, "nonce-1", soon)
	want := *c
	want.Viewed = true
	want.Nonce = "nonce-1"
	sameChallenge(t, got, &want)
	sameChallenge(t, mustGet(t, s, c.Token), &want)
	wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollPending)
}

func testViewTwice(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	mustView(t, s, c.Token, "first", soon)
	got, err := s.View(t.Context(), c.Token, "second", soon)
	if !errors.Is(err, store.ErrAlreadyViewed) {
		t.Fatalf("second View = %+v, %v, want ErrAlreadyViewed", got, err)
	}
	if n := mustGet(t, s, c.Token).Nonce; n != "first" {
		t.Errorf("nonce after a refused View = %q, want %q", n, "first")
	}
	if err := s.Approve(t.Context(), c.Token, "second", "a@example.com", nil, soon); !errors.Is(err, store.ErrBadNonce) {
		t.Errorf("Approve with the refused View's nonce = %v, want ErrBadNonce", err)
	}
}

func testViewExpired(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	got, err := s.View(t.Context(), c.Token, "nonce", late)
	if !errors.Is(err, store.ErrExpired) {
		t.Fatalf("View after expiry = %+v, %v, want ErrExpired", got, err)
	}
	sameChallenge(t, mustGet(t, s, c.Token), c)
}

func testViewUnknown(t *testing.T, s store.Store) {
	mustCreate(t, s, newChallenge())
	got, err := s.View(t.Context(), newToken(), "nonce", soon)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("View(unknown) = %+v, %v, want ErrNotFound", got, err)
	}
}

func testViewConcurrent(t *testing.T, s store.Store) {
	const n = 20
	c := newChallenge()
	mustCreate(t, s, c)
	errs := make([]error, n)
	race(n, func(i int) {
		_, errs[i] = s.View(t.Context(), c.Token, fmt.Sprintf("nonce-%d", i), soon)
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("View succeeded for goroutines %d and %d", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrAlreadyViewed):
			t.Errorf("goroutine %d: View = %v, want nil or ErrAlreadyViewed", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no View succeeded")
	}
	won := fmt.Sprintf("nonce-%d", winner)
	if got := mustGet(t, s, c.Token).Nonce; got != won {
		t.Fatalf("stored nonce %q, want the winner's %q", got, won)
	}
	lost := fmt.Sprintf("nonce-%d", (winner+1)%n)
	if err := s.Approve(t.Context(), c.Token, lost, "a@example.com", nil, soon); !errors.Is(err, store.ErrBadNonce) {
		t.Errorf("Approve with a losing nonce = %v, want ErrBadNonce", err)
	}
	mustApprove(t, s, c.Token, won, "a@example.com", nil, soon)
}

func testApproveWithoutView(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	for _, nonce := range []string{"", "guess"} {
		if err := s.Approve(t.Context(), c.Token, nonce, "a@example.com", []string{"g"}, soon); !errors.Is(err, store.ErrBadNonce) {
			t.Errorf("Approve(nonce %q) before View = %v, want ErrBadNonce", nonce, err)
		}
	}
	wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollPending)
	sameChallenge(t, mustGet(t, s, c.Token), c)
}

func testApproveWrongNonce(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	viewed := mustView(t, s, c.Token, "right", soon)
	for _, nonce := range []string{"", "wrong", "righ", "right "} {
		if err := s.Approve(t.Context(), c.Token, nonce, "a@example.com", []string{"g"}, soon); !errors.Is(err, store.ErrBadNonce) {
			t.Errorf("Approve(nonce %q) = %v, want ErrBadNonce", nonce, err)
		}
	}
	wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollPending)
	sameChallenge(t, mustGet(t, s, c.Token), viewed)
}

func testApproveUnknown(t *testing.T, s store.Store) {
	mustCreate(t, s, newChallenge())
	if err := s.Approve(t.Context(), newToken(), "nonce", "a@example.com", nil, soon); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Approve(unknown) = %v, want ErrNotFound", err)
	}
}

func testApproveExpired(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	viewed := mustView(t, s, c.Token, "nonce", soon)
	if err := s.Approve(t.Context(), c.Token, "nonce", "a@example.com", nil, late); !errors.Is(err, store.ErrExpired) {
		t.Fatalf("Approve after expiry = %v, want ErrExpired", err)
	}
	sameChallenge(t, mustGet(t, s, c.Token), viewed)
	wantPoll(t, s, c.Token, creatorIP, true, late, store.PollExpired)
}

func testApproveThenPoll(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	mustView(t, s, c.Token, "nonce", soon)
	groups := []string{"zeta", "alpha", "mid", "alpha-2"}
	mustApprove(t, s, c.Token, "nonce", "approver@example.com", groups, soon)

	got := mustGet(t, s, c.Token)
	want := *c
	want.Status = store.StatusSuccess
	want.Viewed = true
	want.Nonce = "nonce"
	want.Approver = "approver@example.com"
	want.Groups = []string{"zeta", "alpha", "mid", "alpha-2"}
	sameChallenge(t, got, &want)

	got = wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollSuccess)
	sameChallenge(t, got, &want)
	wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollUnknown)
	if _, err := s.Get(t.Context(), c.Token); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after PollSuccess = %v, want ErrNotFound", err)
	}
	if err := s.Approve(t.Context(), c.Token, "nonce", "approver@example.com", groups, soon); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Approve after PollSuccess = %v, want ErrNotFound", err)
	}
}

func testApproveCopiesGroups(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	mustView(t, s, c.Token, "nonce", soon)
	groups := []string{"one", "two"}
	mustApprove(t, s, c.Token, "nonce", "a@example.com", groups, soon)
	groups[0] = "changed"
	got := wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollSuccess)
	if !slices.Equal(got.Groups, []string{"one", "two"}) {
		t.Fatalf("groups %q, want [one two]: the store kept the caller's slice", got.Groups)
	}
}

func testPollSuccessOtherIPChecked(t *testing.T, s store.Store) {
	c := approved(t, s, []string{"g"})
	wantPoll(t, s, c.Token, otherIP, true, soon, store.PollUnauthorized)
	got := wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollSuccess)
	sameChallenge(t, got, c)
	wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollUnknown)
}

func testPollSuccessOtherIPUnchecked(t *testing.T, s store.Store) {
	c := approved(t, s, []string{"g"})
	got := wantPoll(t, s, c.Token, otherIP, false, soon, store.PollSuccess)
	sameChallenge(t, got, c)
	wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollUnknown)
}

// testPollSuccessAfterExpiry checks that an approved challenge left
// uncollected past its expiry is never handed out.
func testPollSuccessAfterExpiry(t *testing.T, s store.Store) {
	c := approved(t, s, []string{"g"})
	wantPoll(t, s, c.Token, creatorIP, true, late, store.PollExpired)
	wantPoll(t, s, c.Token, creatorIP, true, late, store.PollUnknown)
}

func testPollConcurrentSuccess(t *testing.T, s store.Store) {
	const pollers = 50
	for round := range 3 {
		c := approved(t, s, []string{"g"})
		outcomes := make([]store.PollOutcome, pollers)
		got := make([]*store.Challenge, pollers)
		errs := make([]error, pollers)
		race(pollers, func(i int) {
			outcomes[i], got[i], errs[i] = s.Poll(t.Context(), c.Token, creatorIP, true, soon)
		})
		successes := 0
		for i := range pollers {
			switch {
			case errs[i] != nil:
				t.Errorf("round %d, poller %d: %v", round, i, errs[i])
			case outcomes[i] == store.PollSuccess:
				successes++
				sameChallenge(t, got[i], c)
			case outcomes[i] != store.PollUnknown:
				t.Errorf("round %d, poller %d: %v, want success or unknown", round, i, outcomes[i])
			}
		}
		if successes != 1 {
			t.Fatalf("round %d: %d of %d concurrent polls succeeded, want exactly 1", round, successes, pollers)
		}
	}
}

// testIsolation checks that acting on one challenge leaves others alone.
func testIsolation(t *testing.T, s store.Store) {
	cs := make([]*store.Challenge, 10)
	for i := range cs {
		cs[i] = newChallenge()
		cs[i].User = fmt.Sprintf("user%d@example.com", i)
		cs[i].IP = fmt.Sprintf("192.0.2.%d", i+1)
		mustCreate(t, s, cs[i])
	}
	mustView(t, s, cs[3].Token, "n3", soon)
	mustApprove(t, s, cs[3].Token, "n3", "a@example.com", []string{"g"}, soon)
	wantPoll(t, s, cs[3].Token, cs[3].IP, true, soon, store.PollSuccess)
	mustView(t, s, cs[5].Token, "n5", soon)
	wantPoll(t, s, cs[7].Token, cs[7].IP, true, late, store.PollExpired)
	for i, c := range cs {
		switch i {
		case 3, 7:
			if _, err := s.Get(t.Context(), c.Token); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("challenge %d: Get = %v, want ErrNotFound", i, err)
			}
		case 5:
			want := *c
			want.Viewed = true
			want.Nonce = "n5"
			sameChallenge(t, mustGet(t, s, c.Token), &want)
		default:
			sameChallenge(t, mustGet(t, s, c.Token), c)
			wantPoll(t, s, c.Token, c.IP, true, soon, store.PollPending)
		}
	}
}

func testUnicode(t *testing.T, s store.Store) {
	c := newChallenge()
	c.User = "zoë.ßtraße+日本語@例え.jp"
	c.IP = "2001:db8::1"
	mustCreate(t, s, c)
	sameChallenge(t, mustGet(t, s, c.Token), c)
	nonce := "nonce-ñ-🔑"
	mustView(t, s, c.Token, nonce, soon)
	groups := []string{"Ωmega", "группа", "", "emoji 🦊", "a,b", `quote"d`}
	mustApprove(t, s, c.Token, nonce, "Ädmin 管理者", groups, soon)
	got := wantPoll(t, s, c.Token, "2001:db8::1", true, soon, store.PollSuccess)
	want := *c
	want.Status = store.StatusSuccess
	want.Viewed = true
	want.Nonce = nonce
	want.Approver = "Ädmin 管理者"
	want.Groups = groups
	sameChallenge(t, got, &want)
}

func testEmptyGroups(t *testing.T, s store.Store) {
	for _, groups := range [][]string{nil, {}} {
		c := newChallenge()
		mustCreate(t, s, c)
		mustView(t, s, c.Token, "nonce", soon)
		mustApprove(t, s, c.Token, "nonce", "a@example.com", groups, soon)
		if g := mustGet(t, s, c.Token).Groups; len(g) != 0 {
			t.Errorf("approved with %#v: Get has groups %q, want none", groups, g)
		}
		got := wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollSuccess)
		if len(got.Groups) != 0 {
			t.Errorf("approved with %#v: Poll has groups %q, want none", groups, got.Groups)
		}
		if got.Approver != "a@example.com" {
			t.Errorf("approver %q, want a@example.com", got.Approver)
		}
	}
}

func newLogin() *store.LoginState {
	return &store.LoginState{
		RequestID:  "id-" + newToken(),
		ReturnPath: "/challenge_validator/" + newToken() + "?x=1&y=ü",
		Created:    created,
	}
}

func testLoginRoundTrip(t *testing.T, s store.Store) {
	l := newLogin()
	id := newToken()
	mustSaveLogin(t, s, id, l, base.Add(5*time.Minute))
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
	mustSaveLogin(t, s, newToken(), newLogin(), base.Add(5*time.Minute))
	if got, err := s.TakeLogin(t.Context(), newToken(), soon); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("TakeLogin(unknown) = %+v, %v, want ErrNotFound", got, err)
	}
}

func testLoginExpired(t *testing.T, s store.Store) {
	expires := base.Add(5 * time.Minute)
	gone, kept := newToken(), newToken()
	mustSaveLogin(t, s, gone, newLogin(), expires)
	l := newLogin()
	mustSaveLogin(t, s, kept, l, base.Add(time.Hour))
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
	mustSaveLogin(t, s, id, l, base.Add(5*time.Minute))
	l.RequestID = "changed"
	l.ReturnPath = "/changed"
	l.Created = base.Add(time.Hour)
	got, err := s.TakeLogin(t.Context(), id, soon)
	if err != nil {
		t.Fatalf("TakeLogin: %v", err)
	}
	sameLogin(t, got, &want)
}

func testLoginConcurrentTake(t *testing.T, s store.Store) {
	const n = 20
	id := newToken()
	mustSaveLogin(t, s, id, newLogin(), base.Add(5*time.Minute))
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

// MarkOnce has no "now": its expiries are relative to the wall clock.

func testMarkOnce(t *testing.T, s store.Store) {
	expires := time.Now().Add(time.Hour)
	key, other := "assertion-"+newToken(), "assertion-"+newToken()
	mustMarkOnce(t, s, key, expires, true)
	mustMarkOnce(t, s, key, expires, false)
	mustMarkOnce(t, s, key, expires.Add(time.Hour), false)
	mustMarkOnce(t, s, other, expires, true)
	mustMarkOnce(t, s, other, expires, false)
	mustMarkOnce(t, s, key, expires, false)
}

func testMarkOnceConcurrent(t *testing.T, s store.Store) {
	const n = 20
	key := "assertion-" + newToken()
	expires := time.Now().Add(time.Hour)
	fresh := make([]bool, n)
	errs := make([]error, n)
	race(n, func(i int) {
		fresh[i], errs[i] = s.MarkOnce(t.Context(), key, expires)
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

// testMarkOnceAfterExpiry waits for a real expiry. A second of margin lets a
// backend round expiries up to whole seconds.
func testMarkOnceAfterExpiry(t *testing.T, s store.Store) {
	key := "assertion-" + newToken()
	expires := time.Now().Add(100 * time.Millisecond)
	mustMarkOnce(t, s, key, expires, true)
	mustMarkOnce(t, s, key, expires, false)
	time.Sleep(time.Until(expires) + time.Second + 50*time.Millisecond)
	mustMarkOnce(t, s, key, time.Now().Add(time.Hour), true)
	mustMarkOnce(t, s, key, time.Now().Add(time.Hour), false)
}

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
	if err := s.Create(t.Context(), c); err != nil {
		t.Fatalf("Create(%s): %v", c.Token, err)
	}
}

func mustGet(t *testing.T, s store.Store, token string) *store.Challenge {
	t.Helper()
	c, err := s.Get(t.Context(), token)
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
	if err := s.Approve(t.Context(), token, nonce, approver, groups, now); err != nil {
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

func mustSaveLogin(t *testing.T, s store.Store, id string, l *store.LoginState, expires time.Time) {
	t.Helper()
	if err := s.SaveLogin(t.Context(), id, l, expires); err != nil {
		t.Fatalf("SaveLogin(%s): %v", id, err)
	}
}

func mustMarkOnce(t *testing.T, s store.Store, key string, expires time.Time, want bool) {
	t.Helper()
	got, err := s.MarkOnce(t.Context(), key, expires)
	if err != nil {
		t.Fatalf("MarkOnce(%s): %v", key, err)
	}
	if got != want {
		t.Fatalf("MarkOnce(%s) = %v, want %v", key, got, want)
	}
}

// sameChallenge fails unless got equals want field by field; times are
// compared as instants and groups as lists, nil and empty alike.
func sameChallenge(t *testing.T, got, want *store.Challenge) {
	t.Helper()
	if got == nil {
		t.Fatalf("got no challenge, want %+v", want)
	}
	type plain struct {
		Token, User, IP, Nonce, Approver string
		Status                           store.Status
		Viewed                           bool
	}
	g := plain{got.Token, got.User, got.IP, got.Nonce, got.Approver, got.Status, got.Viewed}
	w := plain{want.Token, want.User, want.IP, want.Nonce, want.Approver, want.Status, want.Viewed}
	if g != w {
		t.Errorf("challenge\n got %+v\nwant %+v", g, w)
	}
	if !got.Created.Equal(want.Created) || !got.Expires.Equal(want.Expires) {
		t.Errorf("challenge times: got created %s expires %s, want %s and %s",
			got.Created, got.Expires, want.Created, want.Expires)
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
	if got.RequestID != want.RequestID || got.ReturnPath != want.ReturnPath || !got.Created.Equal(want.Created) {
		t.Errorf("login state\n got %+v\nwant %+v", got, want)
	}
}
