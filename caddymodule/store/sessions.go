package store

import (
	"context"
	"errors"
	"time"
)

// Session is one live session the handler minted a token for: a browser
// session after a sign-in at the identity provider, or the CLI token of an
// approved challenge. Its ID is the token's sid claim.
type Session struct {
	// ID is the session id (the token's sid claim).
	ID string `json:"id"`
	// User is the signed-in user (the token's email claim).
	User string `json:"user"`
	// Method is how the session was obtained (the auth_method claim).
	Method string `json:"method"`
	// IP is the client IP that obtained it.
	IP string `json:"ip"`
	// Created is when the session began (the sign-in or the collection of
	// the CLI token).
	Created time.Time `json:"created"`
	// Expires is when its newest token expires; the record goes with it.
	Expires time.Time `json:"expires"`
}

// Kinds of revocation.
const (
	// RevokeSession ends one session: every token carrying its id.
	RevokeSession = "session"
	// RevokeUser ends every session of a user that began before At (its
	// auth_time lies before At).
	RevokeUser = "user"
	// RevokeBlock refuses the user any new token (sign-in, approval,
	// client certificate) until Expires.
	RevokeBlock = "block"
)

// Revocation is one record of what the proxy refuses.
type Revocation struct {
	// Kind is RevokeSession, RevokeUser or RevokeBlock.
	Kind string `json:"kind"`
	// Subject is the session id (RevokeSession) or the user.
	Subject string `json:"subject"`
	// At is when it was revoked.
	At time.Time `json:"at"`
	// Expires is when the record can be forgotten: when the newest token
	// it concerns has expired, or when a block ends.
	Expires time.Time `json:"expires"`
	// Except names one session a RevokeUser spares ("sign out everywhere
	// else"), or is empty.
	Except string `json:"except,omitempty"`
}

// Key names the record: one per kind and subject.
func (r *Revocation) Key() string { return r.Kind + ":" + r.Subject }

// Merge folds o (same kind and subject) into r: the later revocation time
// (with its Except) and the later expiry win.
func (r *Revocation) Merge(o Revocation) {
	if o.At.After(r.At) {
		r.At, r.Except = o.At, o.Except
	}
	if o.Expires.After(r.Expires) {
		r.Expires = o.Expires
	}
}

// Validate reports a revocation that cannot be stored.
func (r *Revocation) Validate() error {
	switch r.Kind {
	case RevokeSession, RevokeUser, RevokeBlock:
	default:
		return errors.New("unknown revocation kind " + r.Kind)
	}
	if r.Subject == "" {
		return errors.New("revocation without a subject")
	}
	if r.Expires.IsZero() || r.At.IsZero() {
		return errors.New("revocation without a time or an expiry")
	}
	return nil
}

// RevocationEvent is what a watcher of a SessionStore is told: one
// revocation made (by any instance), one block lifted, or, when both are
// nil and false, that it must reload everything (it may have missed some).
type RevocationEvent struct {
	// Revoked is a revocation made, or nil.
	Revoked *Revocation
	// Unblocked names a user whose block was lifted, or "".
	Unblocked string
}

// Reload reports whether the event asks the watcher to reload all.
func (e RevocationEvent) Reload() bool { return e.Revoked == nil && e.Unblocked == "" }

// SessionStore records a site's live sessions and the revocations of its
// tokens. Both stores (memory, Redis) implement it; the conformance suite in
// package storetest checks it. Every method is safe for concurrent use.
type SessionStore interface {
	// RecordSession stores a copy of s until s.Expires, replacing a
	// session with the same id, and keeps at most maxPerUser sessions of
	// s.User: beyond that the oldest (by Created) are dropped.
	RecordSession(ctx context.Context, s *Session, maxPerUser int, now time.Time) error

	// ListSessions returns the user's sessions unexpired at now, newest
	// (by Created) first.
	ListSessions(ctx context.Context, user string, now time.Time) ([]Session, error)

	// Revoke stores rv (merged with a record of the same kind and subject),
	// drops the recorded sessions it ends (the session for RevokeSession,
	// the user's sessions created before At but Except for RevokeUser), and tells
	// every watcher, on every instance. It returns after the record is
	// stored.
	Revoke(ctx context.Context, rv Revocation, now time.Time) error

	// Unblock removes the user's RevokeBlock record, if any, and tells
	// every watcher.
	Unblock(ctx context.Context, user string, now time.Time) error

	// Revocations returns every record unexpired at now.
	Revocations(ctx context.Context, now time.Time) ([]Revocation, error)

	// Watch calls fn with every event until ctx ends, from one goroutine
	// at a time, and first with a reload event once it listens (so that a
	// reload then sees everything made before). After a lost connection
	// it calls fn with a reload event again once it listens again.
	Watch(ctx context.Context, fn func(RevocationEvent))
}
