// Package store keeps the state of CLI challenges and SAML logins for the
// consoleme_auth handler. It knows nothing about Caddy or HTTP: the handler
// decides what to answer, the store makes each state change atomic, so that
// several pollers, browsers or Caddy instances can race without ever handing
// out a success twice.
package store

import (
	"context"
	"errors"
	"time"
)

// Status is the state of a challenge as ConsoleMe names it.
type Status string

const (
	// StatusPending is a challenge nobody has approved yet.
	StatusPending Status = "pending"
	// StatusSuccess is a challenge approved in the browser and not yet
	// collected by the poller.
	StatusSuccess Status = "success"
)

// Challenge is one CLI login request, from the generator call until the
// poller collects it or it expires.
type Challenge struct {
	// Token is the string handed out in challenge_url and polling_url,
	// written as a uuid; Store.Create chooses it when it is empty.
	Token string `json:"token"`
	// User is the user name the CLI asked for.
	User string `json:"user"`
	// IP is the client IP of the generator call, as Caddy determined it.
	IP string `json:"ip"`
	// Created is when the generator made the challenge.
	Created time.Time `json:"created"`
	// Expires is when the challenge stops being usable (Created + challenge_ttl).
	Expires time.Time `json:"expires"`
	// Status is pending until approved.
	Status Status `json:"status"`
	// Viewed is set when the approval page (or ConsoleMe's JSON API) was shown
	// once; a challenge can be viewed only once.
	Viewed bool `json:"viewed,omitempty"`
	// Nonce is the one-time value the approval must present; set by View.
	Nonce string `json:"nonce,omitempty"`
	// Approver is the web identity (email) that approved the challenge.
	Approver string `json:"approver,omitempty"`
	// Groups are the approver's groups, minted into the JWT.
	Groups []string `json:"groups,omitempty"`
	// AuthTime is when the approver last signed in at the identity provider.
	AuthTime time.Time `json:"auth_time,omitempty"`
}

// Expired reports whether the challenge is past its expiry at now.
func (c *Challenge) Expired(now time.Time) bool { return now.After(c.Expires) }

// LoginState is what a login at the identity provider (SAML or OpenID
// Connect) must remember between the redirect to the provider and its
// answer coming back (at the ACS or the OpenID callback).
type LoginState struct {
	// RequestID is what the identity provider's answer must match: the
	// ID of the SAML AuthnRequest, or for OpenID Connect the login's nonce
	// and PKCE verifier (packed by the caller). The store keeps it opaque.
	RequestID string `json:"request_id"`
	// ReturnPath is the same-origin path to go back to after the login.
	ReturnPath string `json:"return_path"`
	// Created is when the login started.
	Created time.Time `json:"created"`
	// Client identifies who started the login (the client's address or
	// address prefix); a store bounds the live logins of one client. Empty
	// means unbounded.
	Client string `json:"client,omitempty"`
}

// PollOutcome is the answer of the poller, in ConsoleMe's terms.
type PollOutcome int

const (
	// PollUnknown: no such challenge (never made, already collected, or forgotten).
	PollUnknown PollOutcome = iota
	// PollExpired: the challenge expired; Poll has deleted it.
	PollExpired
	// PollUnauthorized: the poll came from another IP; nothing changed.
	PollUnauthorized
	// PollPending: not approved yet.
	PollPending
	// PollSuccess: approved; Poll has deleted it and this caller is the only
	// one that will ever get this outcome for this token.
	PollSuccess
)

// String returns the status string ConsoleMe's poller answers with.
func (o PollOutcome) String() string {
	switch o {
	case PollExpired:
		return "expired"
	case PollUnauthorized:
		return "unauthorized"
	case PollPending:
		return "pending"
	case PollSuccess:
		return "success"
	default:
		return "unknown"
	}
}

// Errors the stores return. Backend failures are wrapped in ErrUnavailable so
// that the handler can answer 503 without knowing the backend.
var (
	ErrNotFound        = errors.New("challenge not found")
	ErrExpired         = errors.New("challenge expired")
	ErrAlreadyViewed   = errors.New("challenge already viewed")
	ErrBadNonce        = errors.New("nonce does not match")
	ErrAlreadyApproved = errors.New("challenge already approved")
	ErrFull            = errors.New("too many pending challenges")
	ErrClientBusy      = errors.New("too many logins in progress for this client")
	ErrExists          = errors.New("token already exists")
	ErrUnavailable     = errors.New("challenge store unavailable")
)

// Approval is who approved a challenge: what the poller mints into the
// CLI token.
type Approval struct {
	// Approver is the web identity (email) that approved the challenge.
	Approver string
	// Groups are the approver's groups (after groups_filter).
	Groups []string
	// AuthTime is when the approver last signed in at the identity
	// provider; the CLI token carries it on, so that no chain of tokens
	// outlives the session age limit.
	AuthTime time.Time
}

// Store is the contract both the memory and the Redis store implement; the
// conformance suite in package storetest checks it. Every method is safe for
// concurrent use, and every state change is atomic on the backend. Every
// method takes "now", so that tests and several instances agree on it and no
// test has to wait for a real clock.
type Store interface {
	// Create stores a new pending challenge under c.Token. An empty
	// c.Token asks the store to choose one, and Create sets it: written as a
	// uuid (8-4-4-4-12 lowercase hex digits), unguessable (at least 90
	// random bits) and unique among the store's challenges. It returns
	// ErrFull when the store is at its bound of pending challenges,
	// ErrExists when the token given is taken.
	Create(ctx context.Context, c *Challenge, now time.Time) error

	// Get returns a copy of the challenge, or ErrNotFound. A challenge that
	// expired but is still remembered at now is returned as is (check
	// Expired); one whose grace is over at now is forgotten.
	Get(ctx context.Context, token string, now time.Time) (*Challenge, error)

	// View atomically marks an unexpired, not yet viewed challenge as viewed
	// and records nonce, returning the updated challenge. It fails with
	// ErrNotFound, ErrExpired or ErrAlreadyViewed and then changes nothing.
	View(ctx context.Context, token, nonce string, now time.Time) (*Challenge, error)

	// Approve atomically marks a viewed, unexpired, still pending challenge
	// as a success for a, if nonce equals the nonce recorded by View. It
	// fails with ErrNotFound, ErrExpired, ErrBadNonce (also when the
	// challenge was never viewed) or ErrAlreadyApproved (a challenge is
	// approved once), checked in that order, and then changes nothing: only
	// a caller holding the nonce learns that the challenge is approved.
	Approve(ctx context.Context, token, nonce string, a Approval, now time.Time) error

	// Cancel deletes a challenge that has not been collected ("this wasn't
	// me"), pending, approved or expired but still remembered: its poller
	// then answers PollUnknown. It returns ErrNotFound when there is no such
	// challenge at now.
	Cancel(ctx context.Context, token string, now time.Time) error

	// Poll is the poller's single atomic step, checked in ConsoleMe's order:
	// missing → PollUnknown; expired → delete, PollExpired; checkIP and ip
	// differs from the creator's → PollUnauthorized (nothing consumed);
	// success → delete, PollSuccess with the challenge (exactly once, even
	// for concurrent callers on several instances); else PollPending.
	Poll(ctx context.Context, token, ip string, checkIP bool, now time.Time) (PollOutcome, *Challenge, error)

	// SaveLogin stores the state of a SAML login under id until expires,
	// replacing any login saved under id. It returns ErrClientBusy when
	// l.Client already holds the store's bound of live logins (expired ones,
	// taken ones and the one replaced do not count), and ErrFull when the
	// store is full; either way it changes nothing.
	SaveLogin(ctx context.Context, id string, l *LoginState, expires, now time.Time) error

	// TakeLogin atomically returns and deletes a login state: a second call
	// with the same id gets ErrNotFound, as does an expired one.
	TakeLogin(ctx context.Context, id string, now time.Time) (*LoginState, error)

	// MarkOnce records key until expires and reports whether it was new,
	// that is not recorded with an expiry at or after now. A repeated key
	// keeps the later of its two expiries; a key whose expires is already
	// past is not recorded. Used to refuse a replayed SAML assertion ID.
	MarkOnce(ctx context.Context, key string, expires, now time.Time) (bool, error)

	// Close releases the store's resources.
	Close() error
}
