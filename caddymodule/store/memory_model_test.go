package store_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// model is the plainest reading of the challenge half of the Store
// contract: a map, and every entry whose grace is over dropped before each
// call. The memory store keeps its challenges in pages of records, interned
// strings and a drop queue; TestMemoryMatchesModel runs both through the
// same random calls.
type model struct {
	max   int
	grace time.Duration
	m     map[string]store.Challenge
}

func (md *model) drop(now time.Time) {
	for k, c := range md.m {
		if now.After(c.Expires.Add(md.grace)) {
			delete(md.m, k)
		}
	}
}

func (md *model) create(c store.Challenge, now time.Time) error {
	md.drop(now)
	if _, ok := md.m[c.Token]; ok {
		return store.ErrExists
	}
	if len(md.m) >= md.max {
		return store.ErrFull
	}
	c.Groups = slices.Clone(c.Groups)
	md.m[c.Token] = c
	return nil
}

func (md *model) get(tok string, now time.Time) (store.Challenge, error) {
	md.drop(now)
	c, ok := md.m[tok]
	if !ok {
		return c, store.ErrNotFound
	}
	return c, nil
}

func (md *model) view(tok, nonce string, now time.Time) (store.Challenge, error) {
	c, err := md.get(tok, now)
	switch {
	case err != nil:
		return c, err
	case c.Expired(now):
		return c, store.ErrExpired
	case c.Viewed:
		return c, store.ErrAlreadyViewed
	}
	c.Viewed, c.Nonce = true, nonce
	md.m[tok] = c
	return c, nil
}

func (md *model) approve(tok, nonce string, a store.Approval, now time.Time) error {
	c, err := md.get(tok, now)
	switch {
	case err != nil:
		return err
	case c.Expired(now):
		return store.ErrExpired
	case !c.Viewed || c.Nonce == "" || c.Nonce != nonce:
		return store.ErrBadNonce
	case c.Status == store.StatusSuccess:
		return store.ErrAlreadyApproved
	}
	c.Status, c.Approver, c.Groups, c.AuthTime = store.StatusSuccess, a.Approver, slices.Clone(a.Groups), a.AuthTime
	md.m[tok] = c
	return nil
}

func (md *model) cancel(tok string, now time.Time) error {
	if _, err := md.get(tok, now); err != nil {
		return err
	}
	delete(md.m, tok)
	return nil
}

func (md *model) poll(tok, ip string, now time.Time) (store.PollOutcome, *store.Challenge) {
	c, err := md.get(tok, now)
	switch {
	case err != nil:
		return store.PollUnknown, nil
	case c.Expired(now):
		delete(md.m, tok)
		return store.PollExpired, nil
	case c.IP != ip:
		return store.PollUnauthorized, nil
	case c.Status == store.StatusSuccess:
		delete(md.m, tok)
		return store.PollSuccess, &c
	}
	return store.PollPending, nil
}

// TestMemoryMatchesModel makes random calls on a memory store and on the
// model, with few tokens (so that they collide, are made again after they
// go, and fill the bound), tokens written as uuids and otherwise, users and
// IPs shared between challenges, several times to live, and a clock that
// moves forward by steps small and large; every answer must agree.
func TestMemoryMatchesModel(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			maxPending := []int{5, 40, 3000}[seed%3]
			grace := []time.Duration{time.Minute, 0, 1500 * time.Millisecond}[seed%3]
			optGrace := grace
			if grace == 0 {
				optGrace = -1
			}
			m := store.NewMemory(store.MemoryOptions{MaxPending: maxPending, ExpiredGrace: optGrace})
			md := &model{max: maxPending, grace: grace, m: map[string]store.Challenge{}}
			ctx := t.Context()

			tokens := make([]string, 0, 120)
			for i := range 100 {
				tokens = append(tokens, uuid4([16]byte{byte(i), byte(i >> 8), 7}))
			}
			tokens = append(tokens, "named", "NAMED", strings.ToUpper(tokens[0]), tokens[1][:35]+"g", "tok-1", tokens[2]+" ")
			users := []string{"alice@example.com", "bob@example.com", "", strings.Repeat("ü", 40)}
			ips := []string{"192.0.2.10", "2001:db8::1", ""}
			ttls := []time.Duration{2 * time.Minute, time.Second, 10 * time.Second, 0}
			// The last 20 tokens are replaced by ones the store chose.
			for range 20 {
				tokens = append(tokens, "unused-"+fmt.Sprint(len(tokens)))
			}
			var minted []string
			now := base
			for step := range 20000 {
				switch rng.IntN(10) {
				case 0:
					now = now.Add(time.Duration(rng.IntN(90)) * time.Second)
				case 1, 2:
					now = now.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
				}
				tok := tokens[rng.IntN(len(tokens))]
				nonce := []string{"n1", "n2", ""}[rng.IntN(3)]
				where := fmt.Sprintf("step %d at +%v, token %q", step, now.Sub(base), tok)
				switch op := rng.IntN(8); op {
				case 7:
					// The store chooses the token; later calls use it too.
					c := store.Challenge{User: users[rng.IntN(len(users))], IP: ips[rng.IntN(len(ips))],
						Created: now, Expires: now.Add(ttls[rng.IntN(len(ttls))]), Status: store.StatusPending}
					err := m.Create(ctx, &c, now)
					if err == nil {
						if _, taken := md.m[c.Token]; taken || len(c.Token) != 36 {
							t.Fatalf("%s: Create chose %q, taken %v", where, c.Token, taken)
						}
						minted = append(minted, c.Token)
						tokens[len(tokens)-1-rng.IntN(20)] = c.Token
					}
					var want error
					if md.drop(now); len(md.m) >= md.max {
						want = store.ErrFull
					} else {
						want = md.create(c, now)
					}
					if !errors.Is(err, want) && err != want {
						t.Fatalf("%s: Create choosing the token = %v, model %v", where, err, want)
					}
				case 0, 1:
					c := store.Challenge{Token: tok, User: users[rng.IntN(len(users))], IP: ips[rng.IntN(len(ips))],
						Created: now, Expires: now.Add(ttls[rng.IntN(len(ttls))]), Status: store.StatusPending}
					if rng.IntN(8) == 0 {
						c.Status, c.Viewed, c.Nonce, c.Approver, c.Groups = store.StatusSuccess, true, "n1", "eve", []string{"g"}
					}
					cp := c
					if got, want := m.Create(ctx, &cp, now), md.create(c, now); !errors.Is(got, want) && got != want {
						t.Fatalf("%s: Create = %v, model %v", where, got, want)
					}
				case 2:
					got, gerr := m.Get(ctx, tok, now)
					want, werr := md.get(tok, now)
					if !errors.Is(gerr, werr) && gerr != werr {
						t.Fatalf("%s: Get = %v, model %v", where, gerr, werr)
					}
					if gerr == nil {
						sameChallenge(t, got, &want)
					}
				case 3:
					got, gerr := m.View(ctx, tok, nonce, now)
					want, werr := md.view(tok, nonce, now)
					if !errors.Is(gerr, werr) && gerr != werr {
						t.Fatalf("%s: View = %v, model %v", where, gerr, werr)
					}
					if gerr == nil {
						sameChallenge(t, got, &want)
					}
				case 4:
					a := store.Approval{Approver: users[rng.IntN(len(users))], Groups: []string{"x", fmt.Sprint(step)}, AuthTime: now.Add(-time.Minute)}
					if got, want := m.Approve(ctx, tok, nonce, a, now), md.approve(tok, nonce, a, now); !errors.Is(got, want) && got != want {
						t.Fatalf("%s: Approve = %v, model %v", where, got, want)
					}
				case 5:
					if got, want := m.Cancel(ctx, tok, now), md.cancel(tok, now); !errors.Is(got, want) && got != want {
						t.Fatalf("%s: Cancel = %v, model %v", where, got, want)
					}
				case 6:
					ip := ips[rng.IntN(len(ips))]
					got, gc, err := m.Poll(ctx, tok, ip, true, now)
					want, wc := md.poll(tok, ip, now)
					if err != nil || got != want {
						t.Fatalf("%s: Poll = %v, %v, model %v", where, got, err, want)
					}
					if (gc == nil) != (wc == nil) {
						t.Fatalf("%s: Poll challenge %+v, model %+v", where, gc, wc)
					}
					if gc != nil {
						sameChallenge(t, gc, wc)
					}
				}
				md.drop(now)
				if l := m.Lens(); l.Challenges < len(md.m) {
					t.Fatalf("%s: %d challenges stored, model %d live", where, l.Challenges, len(md.m))
				}
			}
			if len(minted) < 100 {
				t.Errorf("the store chose only %d tokens", len(minted))
			}
			if slices.Sort(minted); len(slices.Compact(minted)) != len(minted) {
				t.Error("the store chose a token twice")
			}
			// A day later everything is gone, and so are the strings.
			now = now.Add(24 * time.Hour)
			wantPoll(t, m, "no-such-token", now, store.PollUnknown)
			if l := m.Lens(); l.Challenges != 0 || l.ChallengeQueue != 0 || l.ChallengeStrings != 0 {
				t.Fatalf("a day later: %+v, want nothing left", l)
			}
		})
	}
}
