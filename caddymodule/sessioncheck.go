package consolemeauth

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/revocation"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/token"
)

// tokenRefusal is why a user may not hold a token, or why a token is
// refused at the proxy.
type tokenRefusal struct {
	// reason is for the audit line and the metric label.
	reason string
	// policy says the group policy refused (otherwise a revocation).
	policy bool
	user   string
}

// admit is the one rule for who may hold a token: where a token is minted
// (sign-in, renewal, approval, collection, client certificate) and where
// one is used (every request that carries one). It returns why email,
// with these groups (already filtered), may not hold a token of session t,
// or nil. certificate skips the revocation of sessions, which a
// certificate token, minted per request, does not belong to; a block still
// applies.
func (s *sessions) admit(email string, groups []string, t revocation.Token, certificate bool, now time.Time) *tokenRefusal {
	if why := s.policy.groupsRefusal(groups); why != "" {
		return &tokenRefusal{reason: "group policy: " + why, policy: true, user: email}
	}
	if s.revoked == nil {
		return nil
	}
	if certificate {
		if _, blocked := s.revoked.Blocked(email, now); blocked {
			return &tokenRefusal{reason: revocation.ReasonBlocked, user: email}
		}
		return nil
	}
	t.User = email
	if why := s.revoked.Check(t, now); why != "" {
		return &tokenRefusal{reason: why, user: email}
	}
	return nil
}

// admitToken applies admit to what a verified (or peeked) token says.
func (s *sessions) admitToken(id *token.Identity, now time.Time) *tokenRefusal {
	return s.admit(id.Email, s.policy.filterGroups(id.Groups), revocation.Token{
		SessionID: id.SessionID, AuthTime: id.AuthTime, Whole: true,
	}, false, now)
}

// refused checks every consoleme_auth cookie of a request that is passed
// on: a token of this site that the rule refuses (revoked, or groups the
// policy refuses) is reported, so that it never reaches the upstream.
// A token that does not verify is left to the upstream, as before.
//
// It costs a map look-up per cookie: what a token claims is remembered
// (by its exact text), and the signature is checked only when the claims
// would be refused.
func (s *sessions) refused(r *http.Request, now time.Time) *tokenRefusal {
	for _, c := range r.CookiesNamed(s.cookie) {
		seen := s.seen.get(c.Value, s.codec)
		if seen.claims == nil || seen.claims.Method == methodCertificate {
			continue
		}
		ref := s.admitToken(seen.claims, now)
		if ref == nil {
			continue
		}
		if id := s.verified(c.Value, seen, now); id != nil {
			return ref
		}
	}
	return nil
}

// verified returns the token's identity when it verifies at now: from
// memory when it verified before and has not expired since.
func (s *sessions) verified(tok string, seen *seenToken, now time.Time) *token.Identity {
	if seen.ok.Load() {
		if seen.claims.Expires.Unix() < now.Unix() {
			return nil
		}
		return seen.claims
	}
	id, err := s.codec.Verify(tok, now)
	if err != nil {
		return nil
	}
	if seen.claims != nil {
		seen.ok.Store(true)
	}
	return id
}

// maxSeenTokens bounds the tokens remembered; beyond it, entries are
// dropped in map order (about 1 KiB each with a few groups).
const maxSeenTokens = 20000

// seenToken is what a token's text claims, and whether it verified (its
// signature and its claims, at some time before its expiry). A token's
// claims are a function of its text, so they can be remembered by it.
type seenToken struct {
	claims *token.Identity // nil: not a token this site can read
	ok     atomic.Bool
}

// tokenMemory remembers recently seen tokens, so that a request costs a
// look-up rather than a decode and an HMAC.
type tokenMemory struct {
	mu sync.RWMutex
	m  map[string]*seenToken
}

func newTokenMemory() *tokenMemory {
	return &tokenMemory{m: make(map[string]*seenToken)}
}

// get returns what tok claims, decoding it the first time it is seen.
func (t *tokenMemory) get(tok string, codec *token.Codec) *seenToken {
	t.mu.RLock()
	e, ok := t.m[tok]
	t.mu.RUnlock()
	if ok {
		return e
	}
	e = &seenToken{}
	if len(tok) <= maxCookieSize {
		if id, err := codec.Peek(tok); err == nil {
			e.claims = id
		}
	}
	t.mu.Lock()
	if len(t.m) >= maxSeenTokens {
		n := 0
		for k := range t.m {
			delete(t.m, k)
			if n++; n >= maxSeenTokens/16 {
				break
			}
		}
	}
	t.m[tok] = e
	t.mu.Unlock()
	return e
}
