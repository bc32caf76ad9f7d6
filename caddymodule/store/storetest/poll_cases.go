package storetest

import (
	"errors"
	"testing"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// Cases on the poller.

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
	if _, err := s.Get(t.Context(), c.Token, soon); !errors.Is(err, store.ErrNotFound) {
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

// testPollForgotten: once its grace is over, a challenge is unknown.
func testPollForgotten(t *testing.T, s store.Store) {
	c := approved(t, s, []string{"g"})
	wantPoll(t, s, c.Token, creatorIP, true, forgotten, store.PollUnknown)
	wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollUnknown)
}

// testPollSuccessForgets: once collected, a challenge is gone for every
// method, whatever IP asks.
func testPollSuccessForgets(t *testing.T, s store.Store) {
	c := approved(t, s, []string{"admins"})
	wantPoll(t, s, c.Token, creatorIP, true, soon, store.PollSuccess)
	wantPoll(t, s, c.Token, otherIP, true, soon, store.PollUnknown)
	wantPoll(t, s, c.Token, otherIP, false, soon, store.PollUnknown)
	if _, err := s.View(t.Context(), c.Token, "again", soon); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("View after PollSuccess = %v, want ErrNotFound", err)
	}
	if err := s.Cancel(t.Context(), c.Token, soon); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Cancel after PollSuccess = %v, want ErrNotFound", err)
	}
}
