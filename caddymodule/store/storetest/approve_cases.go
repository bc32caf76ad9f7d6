package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// Cases on viewing, approving and cancelling challenges.

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
	if err := s.Approve(t.Context(), c.Token, "second", store.Approval{Approver: "a@example.com"}, soon); !errors.Is(err, store.ErrBadNonce) {
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
	if err := s.Approve(t.Context(), c.Token, lost, store.Approval{Approver: "a@example.com"}, soon); !errors.Is(err, store.ErrBadNonce) {
		t.Errorf("Approve with a losing nonce = %v, want ErrBadNonce", err)
	}
	mustApprove(t, s, c.Token, won, "a@example.com", nil, soon)
}

func testApproveWithoutView(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	for _, nonce := range []string{"", "guess"} {
		if err := s.Approve(t.Context(), c.Token, nonce, store.Approval{Approver: "a@example.com", Groups: []string{"g"}}, soon); !errors.Is(err, store.ErrBadNonce) {
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
		if err := s.Approve(t.Context(), c.Token, nonce, store.Approval{Approver: "a@example.com", Groups: []string{"g"}}, soon); !errors.Is(err, store.ErrBadNonce) {
			t.Errorf("Approve(nonce %q) = %v, want ErrBadNonce", nonce, err)
		}
	}
	wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollPending)
	sameChallenge(t, mustGet(t, s, c.Token), viewed)
}

func testApproveUnknown(t *testing.T, s store.Store) {
	mustCreate(t, s, newChallenge())
	if err := s.Approve(t.Context(), newToken(), "nonce", store.Approval{Approver: "a@example.com"}, soon); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Approve(unknown) = %v, want ErrNotFound", err)
	}
}

func testApproveExpired(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	viewed := mustView(t, s, c.Token, "nonce", soon)
	if err := s.Approve(t.Context(), c.Token, "nonce", store.Approval{Approver: "a@example.com"}, late); !errors.Is(err, store.ErrExpired) {
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
	want.AuthTime = authTime
	sameChallenge(t, got, &want)

	got = wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollSuccess)
	sameChallenge(t, got, &want)
	wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollUnknown)
	if _, err := s.Get(t.Context(), c.Token, soon); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after PollSuccess = %v, want ErrNotFound", err)
	}
	if err := s.Approve(t.Context(), c.Token, "nonce", store.Approval{Approver: "approver@example.com", Groups: groups}, soon); !errors.Is(err, store.ErrNotFound) {
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

// testApproveTwice checks that a challenge is approved once: a second
// approval with the right nonce is refused and changes nothing, and one
// with a wrong nonce is refused for its nonce.
func testApproveTwice(t *testing.T, s store.Store) {
	c := approved(t, s, []string{"first"})
	second := store.Approval{Approver: "mallory@example.com", Groups: []string{"admins"}, AuthTime: soon}
	if err := s.Approve(t.Context(), c.Token, c.Nonce, second, soon); !errors.Is(err, store.ErrAlreadyApproved) {
		t.Fatalf("second Approve = %v, want ErrAlreadyApproved", err)
	}
	if err := s.Approve(t.Context(), c.Token, "wrong", second, soon); !errors.Is(err, store.ErrBadNonce) {
		t.Fatalf("second Approve with a wrong nonce = %v, want ErrBadNonce", err)
	}
	sameChallenge(t, mustGet(t, s, c.Token), c)
	got := wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollSuccess)
	sameChallenge(t, got, c)
}

// testApproveConcurrent races approvals with the right nonce: exactly one
// wins, and the challenge carries the winner's approval.
func testApproveConcurrent(t *testing.T, s store.Store) {
	const n = 20
	c := newChallenge()
	mustCreate(t, s, c)
	mustView(t, s, c.Token, "nonce", soon)
	errs := make([]error, n)
	race(n, func(i int) {
		a := store.Approval{Approver: fmt.Sprintf("approver%d@example.com", i), Groups: []string{fmt.Sprint(i)}}
		errs[i] = s.Approve(t.Context(), c.Token, "nonce", a, soon)
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("Approve succeeded for goroutines %d and %d", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrAlreadyApproved):
			t.Errorf("goroutine %d: Approve = %v, want nil or ErrAlreadyApproved", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no Approve succeeded")
	}
	got := wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollSuccess)
	if want := fmt.Sprintf("approver%d@example.com", winner); got.Approver != want || !slices.Equal(got.Groups, []string{fmt.Sprint(winner)}) {
		t.Fatalf("collected %q with %q, want the winner's %q", got.Approver, got.Groups, want)
	}
}

// testApproveAuthTime checks that the approver's sign-in time comes back
// from Get and Poll as the same instant, and that a zero one stays zero.
func testApproveAuthTime(t *testing.T, s store.Store) {
	c := approved(t, s, []string{"g"})
	if got := mustGet(t, s, c.Token).AuthTime; !got.Equal(authTime) {
		t.Errorf("Get: auth time %s, want %s", got, authTime)
	}
	if got := wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollSuccess).AuthTime; !got.Equal(authTime) {
		t.Errorf("Poll: auth time %s, want %s", got, authTime)
	}

	z := newChallenge()
	mustCreate(t, s, z)
	mustView(t, s, z.Token, "nonce", soon)
	if err := s.Approve(t.Context(), z.Token, "nonce", store.Approval{Approver: "a@example.com"}, soon); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	if got := wantPoll(t, s, z.Token, creatorIP, true, soon, store.PollSuccess).AuthTime; !got.IsZero() {
		t.Errorf("zero auth time came back as %s", got)
	}
}

// testCancelThenPoll: a cancelled challenge is gone for every method.
func testCancelThenPoll(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	kept := newChallenge()
	mustCreate(t, s, kept)
	mustView(t, s, c.Token, "nonce", soon)
	mustCancel(t, s, c.Token, soon)
	wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollUnknown)
	if _, err := s.Get(t.Context(), c.Token, soon); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Cancel = %v, want ErrNotFound", err)
	}
	if err := s.Approve(t.Context(), c.Token, "nonce", store.Approval{Approver: "a@example.com"}, soon); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Approve after Cancel = %v, want ErrNotFound", err)
	}
	if _, err := s.View(t.Context(), c.Token, "again", soon); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("View after Cancel = %v, want ErrNotFound", err)
	}
	if err := s.Cancel(t.Context(), c.Token, soon); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Cancel = %v, want ErrNotFound", err)
	}
	sameChallenge(t, mustGet(t, s, kept.Token), kept)
}

// testCancelApproved: an approval not yet collected can still be cancelled,
// and then nobody collects it.
func testCancelApproved(t *testing.T, s store.Store) {
	c := approved(t, s, []string{"g"})
	mustCancel(t, s, c.Token, soon)
	wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollUnknown)
}

// testCancelExpired: an expired challenge still remembered is cancelled like
// any other, after which the poller is told unknown rather than expired.
func testCancelExpired(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	mustCancel(t, s, c.Token, late)
	wantPoll(t, s, c.Token, creatorIP, true, late, store.PollUnknown)
}

func testCancelUnknown(t *testing.T, s store.Store) {
	mustCreate(t, s, newChallenge())
	if err := s.Cancel(t.Context(), newToken(), soon); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Cancel(unknown) = %v, want ErrNotFound", err)
	}
	collected := approved(t, s, nil)
	wantPoll(t, s, collected.Token, creatorIP, true, soon, store.PollSuccess)
	if err := s.Cancel(t.Context(), collected.Token, soon); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Cancel after collection = %v, want ErrNotFound", err)
	}
	old := newChallenge()
	mustCreate(t, s, old)
	if err := s.Cancel(t.Context(), old.Token, forgotten); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Cancel of a forgotten challenge = %v, want ErrNotFound", err)
	}
}
