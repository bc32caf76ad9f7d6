package storetest

import (
	"errors"
	"fmt"
	"regexp"
	"testing"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// Cases on creating and reading challenges, and on tokens and contents.

func testCreateGet(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	got, err := s.Get(t.Context(), c.Token, soon)
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
	if err := s.Create(t.Context(), dup, created); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second Create = %v, want ErrExists", err)
	}
	sameChallenge(t, mustGet(t, s, c.Token), c)
}

// uuidShape is how a token the store chooses is written.
var uuidShape = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func testCreateChoosesToken(t *testing.T, s store.Store) {
	const n = 50
	cs := make([]*store.Challenge, n)
	errs := make([]error, n)
	race(n, func(i int) {
		cs[i] = newChallenge()
		cs[i].Token = ""
		cs[i].User = fmt.Sprintf("user%d@example.com", i)
		errs[i] = s.Create(t.Context(), cs[i], created)
	})
	seen := map[string]bool{}
	for i, c := range cs {
		if errs[i] != nil {
			t.Fatalf("Create %d: %v", i, errs[i])
		}
		if !uuidShape.MatchString(c.Token) || seen[c.Token] {
			t.Fatalf("Create %d chose %q (chosen before: %v)", i, c.Token, seen[c.Token])
		}
		seen[c.Token] = true
		sameChallenge(t, mustGet(t, s, c.Token), c)
		if got, _, err := s.Poll(t.Context(), c.Token, creatorIP, true, soon); err != nil || got != store.PollPending {
			t.Fatalf("Poll of a chosen token = %v, %v", got, err)
		}
		if _, err := s.Get(t.Context(), upperHex(c.Token), soon); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get of the chosen token in upper case = %v, want ErrNotFound", err)
		}
	}
	dup := newChallenge()
	dup.Token = cs[0].Token
	if err := s.Create(t.Context(), dup, created); !errors.Is(err, store.ErrExists) {
		t.Fatalf("Create with a chosen token given = %v, want ErrExists", err)
	}
	c := cs[1]
	if _, err := s.View(t.Context(), c.Token, "n", soon); err != nil {
		t.Fatal(err)
	}
	if err := s.Approve(t.Context(), c.Token, "n", store.Approval{Approver: c.User}, soon); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.Poll(t.Context(), c.Token, creatorIP, true, soon); err != nil || got != store.PollSuccess {
		t.Fatalf("Poll of an approved chosen token = %v, %v", got, err)
	}
	if _, err := s.Get(t.Context(), c.Token, soon); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after collection = %v, want ErrNotFound", err)
	}
}

func testCreateConcurrentSameToken(t *testing.T, s store.Store) {
	const n = 20
	token := newToken()
	errs := make([]error, n)
	race(n, func(i int) {
		c := newChallenge()
		c.Token = token
		c.User = fmt.Sprintf("user%d@example.com", i)
		errs[i] = s.Create(t.Context(), c, created)
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
	got, err := s.Get(t.Context(), newToken(), soon)
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
			if _, err := s.Get(t.Context(), c.Token, soon); !errors.Is(err, store.ErrNotFound) {
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
	want.AuthTime = authTime
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

// testGetExpired: an expired challenge is returned as is while it is
// remembered, and not found once forgotten.
func testGetExpired(t *testing.T, s store.Store) {
	c := newChallenge()
	mustCreate(t, s, c)
	got, err := s.Get(t.Context(), c.Token, late)
	if err != nil {
		t.Fatalf("Get of an expired challenge: %v", err)
	}
	if !got.Expired(late) {
		t.Errorf("Get at %s returned a challenge that has not expired: %+v", late.Sub(base), got)
	}
	sameChallenge(t, got, c)
	if got, err := s.Get(t.Context(), c.Token, forgotten); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a forgotten challenge = %+v, %v, want ErrNotFound", got, err)
	}
}
