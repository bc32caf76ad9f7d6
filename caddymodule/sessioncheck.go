package consolemeauth

import (
	"net/http"
	"sync"
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
// It costs a map look-up per cookie: a token is verified once, then
// remembered (by its exact text) until it expires.
func (s *sessions) refused(r *http.Request, now time.Time) *tokenRefusal {
	for value := range cookieValues(r.Header, s.cookie) {
		id := s.verified(value, now)
		if id == nil || id.Method == methodCertificate {
			continue
		}
		if ref := s.admitToken(id, now); ref != nil {
			return ref
		}
	}
	return nil
}

// verified returns the token's identity when it verifies at now: from
// memory when it verified before and has not expired since. Only tokens
// that verified are remembered, so nobody without the secret can fill
// the memory.
func (s *sessions) verified(tok string, now time.Time) *token.Identity {
	if id := s.seen.get(tok); id != nil {
		if id.Expires.Unix() < now.Unix() {
			return nil
		}
		return id
	}
	id, err := s.codec.Verify(tok, now)
	if err != nil {
		return nil
	}
	s.seen.put(tok, id)
	return id
}

// maxSeenTokens bounds the tokens remembered; beyond it, entries are
// dropped in map order.
const maxSeenTokens = 20000

// tokenMemory remembers tokens that verified, so that a request costs a
// look-up rather than a decode and an HMAC. A token's claims are a
// function of its text, and whether its signature holds too: only the
// times must be checked again.
type tokenMemory struct {
	mu sync.RWMutex
	m  map[string]*token.Identity
}

func newTokenMemory() *tokenMemory {
	return &tokenMemory{m: make(map[string]*token.Identity)}
}

// get returns the identity of a token that verified before, or nil.
func (t *tokenMemory) get(tok string) *token.Identity {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[tok]
}

// put remembers a token that verified.
func (t *tokenMemory) put(tok string, id *token.Identity) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= maxSeenTokens {
		n := 0
		for k := range t.m {
			delete(t.m, k)
			if n++; n >= maxSeenTokens/16 {
				break
			}
		}
	}
	t.m[tok] = id
}
