// Package revocation keeps, in memory, what the proxy refuses: revoked
// sessions, users whose sessions before a time are revoked, and users
// blocked for a while. Checking a token against it is a map look-up, so
// every request can afford it; a Keeper keeps it current from a
// store.SessionStore (pub/sub events plus full reloads). It knows nothing
// of Caddy or HTTP.
package revocation

import (
	"sync"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// Reasons a token is refused, as Check returns them (and metrics label them).
const (
	ReasonSession = "session revoked"
	ReasonUser    = "user's sessions revoked"
	ReasonBlocked = "user blocked"
)

// user is what is known of one user.
type user struct {
	cutoff       time.Time // sessions begun before it are revoked; zero: none
	cutoffExpiry time.Time
	except       string    // the one session the cutoff spares
	blockUntil   time.Time // zero: not blocked
	blockSeen    time.Time // when the block was learnt (for reloads)
}

// List is the in-memory set of revocations of one site. It is safe for
// concurrent use; reads take a shared lock.
type List struct {
	mu       sync.RWMutex
	sessions map[string]time.Time // session id → when the record expires
	users    map[string]*user
	now      func() time.Time
}

// NewList returns an empty list.
func NewList() *List {
	return &List{sessions: make(map[string]time.Time), users: make(map[string]*user), now: time.Now}
}

// Apply adds one revocation (merged with what is known).
func (l *List) Apply(rv store.Revocation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.apply(rv, l.now())
}

func (l *List) apply(rv store.Revocation, seen time.Time) {
	switch rv.Kind {
	case store.RevokeSession:
		if rv.Expires.After(l.sessions[rv.Subject]) {
			l.sessions[rv.Subject] = rv.Expires
		}
	case store.RevokeUser:
		u := l.user(rv.Subject)
		if rv.At.After(u.cutoff) {
			u.cutoff, u.except = rv.At, rv.Except
		}
		if rv.Expires.After(u.cutoffExpiry) {
			u.cutoffExpiry = rv.Expires
		}
	case store.RevokeBlock:
		u := l.user(rv.Subject)
		if rv.Expires.After(u.blockUntil) {
			u.blockUntil = rv.Expires
		}
		u.blockSeen = seen
	}
}

func (l *List) user(name string) *user {
	u := l.users[name]
	if u == nil {
		u = &user{}
		l.users[name] = u
	}
	return u
}

// Unblock lifts a user's block.
func (l *List) Unblock(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if u := l.users[name]; u != nil {
		u.blockUntil, u.blockSeen = time.Time{}, l.now()
	}
}

// Reload merges a full listing read from the store, which began at
// started: revocations only ever add up (a listing that missed one made
// meanwhile must not drop it), but a block learnt before started and
// absent from the listing was lifted, so it goes. Expired records go too.
func (l *List) Reload(all []store.Revocation, started time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	listed := make(map[string]bool)
	for _, rv := range all {
		if rv.Kind == store.RevokeBlock {
			listed[rv.Subject] = true
		}
		l.apply(rv, started)
	}
	for name, u := range l.users {
		if !u.blockUntil.IsZero() && !listed[name] && u.blockSeen.Before(started) {
			u.blockUntil = time.Time{}
		}
	}
	l.prune(now)
}

// Prune drops the records expired at now.
func (l *List) Prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune(now)
}

func (l *List) prune(now time.Time) {
	for id, exp := range l.sessions {
		if !exp.After(now) {
			delete(l.sessions, id)
		}
	}
	for name, u := range l.users {
		if !u.cutoffExpiry.After(now) {
			u.cutoff, u.cutoffExpiry = time.Time{}, time.Time{}
		}
		if !u.blockUntil.After(now) {
			u.blockUntil = time.Time{}
		}
		if u.cutoff.IsZero() && u.blockUntil.IsZero() && now.Sub(u.blockSeen) > time.Minute {
			delete(l.users, name)
		}
	}
}

// Token is what Check needs to know of a token.
type Token struct {
	SessionID string
	User      string
	// AuthTime is when the session began (the token's auth_time).
	AuthTime time.Time
	// Whole says AuthTime is a whole second read from a token (so a
	// revocation within that second is compared by the second), not the
	// precise time of a sign-in that is minting one.
	Whole bool
}

// Check returns why t is refused at now, or "" when it is not.
func (l *List) Check(t Token, now time.Time) string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if t.SessionID != "" {
		if exp, ok := l.sessions[t.SessionID]; ok && exp.After(now) {
			return ReasonSession
		}
	}
	u := l.users[t.User]
	if u == nil {
		return ""
	}
	if u.blockUntil.After(now) {
		return ReasonBlocked
	}
	if u.cutoffExpiry.After(now) && (u.except == "" || t.SessionID != u.except) {
		cutoff := u.cutoff
		if t.Whole {
			// auth_time is a whole second: a session begun in the
			// second of the revocation, but after it, must work; one
			// begun before it in that second is refused by its id.
			cutoff = cutoff.Truncate(time.Second)
		}
		if t.AuthTime.Before(cutoff) {
			return ReasonUser
		}
	}
	return ""
}

// Blocked reports until when a user is blocked, if they are at now.
func (l *List) Blocked(name string, now time.Time) (time.Time, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if u := l.users[name]; u != nil && u.blockUntil.After(now) {
		return u.blockUntil, true
	}
	return time.Time{}, false
}

// Len is the number of revoked sessions and users held.
func (l *List) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.sessions) + len(l.users)
}
