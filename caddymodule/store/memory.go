package store

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Defaults of MemoryOptions.
const (
	// DefaultMaxPending is the bound NewMemory uses when it is given none.
	DefaultMaxPending = 10000
	// DefaultExpiredGrace is how long an expired challenge is remembered
	// when NewMemory is given no grace.
	DefaultExpiredGrace = time.Minute
)

var (
	errClosed       = fmt.Errorf("memory store: %w: store is closed", ErrUnavailable)
	errNilChallenge = errors.New("memory store: create: nil challenge")
	errNilLogin     = errors.New("memory store: save login: nil login state")
)

// MemoryOptions configures a memory store. The zero value gives the
// defaults.
type MemoryOptions struct {
	// MaxPending bounds each kind of state on its own: at most MaxPending
	// challenges, MaxPending SAML logins and MaxPending replay marks.
	// Expired entries not yet dropped count. Default (0 or less):
	// DefaultMaxPending.
	MaxPending int
	// MaxLoginsPerClient bounds the live (unexpired) SAML logins saved with
	// one non-empty LoginState.Client. 0 or less: unbounded.
	MaxLoginsPerClient int
	// ExpiredGrace is how long after its expiry a challenge is still
	// remembered, so that Poll answers PollExpired rather than PollUnknown.
	// Default (0): DefaultExpiredGrace; a negative value keeps nothing after
	// the expiry.
	ExpiredGrace time.Duration
}

// Memory is the embedded Store: everything lives in the process, guarded by
// one mutex, so it suits a single Caddy instance.
//
// Each kind of state is bounded by MaxPending. Challenges live in a layout
// the garbage collector does not scan (see challengeTable): a pending
// challenge costs about 100 bytes of heap with a million pending (see
// TestMemoryPendingBytes), and no pointer. Logins and replay marks are maps
// of small structs (see table). The times the callers pass in are the only
// clock.
type Memory struct {
	mu       sync.Mutex
	closed   bool
	grace    time.Duration
	perLogin int

	challenges *challengeTable
	logins     *table[LoginState]
	marks      *table[struct{}]
	// byClient holds the logins stored for each client, when logins are
	// bounded per client: at most the bound of live ones, plus expired ones
	// not yet dropped.
	byClient map[string][]*entry[LoginState]
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty memory store configured by opts.
func NewMemory(opts MemoryOptions) *Memory {
	maxPending := opts.MaxPending
	if maxPending <= 0 {
		maxPending = DefaultMaxPending
	}
	grace := opts.ExpiredGrace
	switch {
	case grace == 0:
		grace = DefaultExpiredGrace
	case grace < 0:
		grace = 0
	}
	m := &Memory{
		grace:      grace,
		perLogin:   max(opts.MaxLoginsPerClient, 0),
		challenges: newChallengeTable(maxPending, grace),
		logins:     newTable[LoginState](maxPending),
		marks:      newTable[struct{}](maxPending),
		byClient:   make(map[string][]*entry[LoginState]),
	}
	m.logins.dropped = m.forgetLogin
	return m
}

// Create stores a copy of c under c.Token until its grace after c.Expires
// is over; an empty c.Token is set to one the store chooses (see
// challengeTable). It answers ErrExists when the token is taken and ErrFull
// when MaxPending challenges are stored.
func (m *Memory) Create(_ context.Context, c *Challenge, now time.Time) error {
	if c == nil {
		return errNilChallenge
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	m.challenges.sweep(now)
	if c.Token == "" {
		if !m.challenges.hasRoom(now) {
			return ErrFull
		}
		m.challenges.mintAndPut(c)
		return nil
	}
	k := keyOf(c.Token)
	if _, ok := m.challenges.find(k, now); ok {
		return ErrExists
	}
	if !m.challenges.hasRoom(now) {
		return ErrFull
	}
	m.challenges.put(k, c)
	return nil
}

// Get returns a copy of the challenge stored under token, or ErrNotFound.
func (m *Memory) Get(_ context.Context, token string, now time.Time) (*Challenge, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	slot, err := m.challenge(token, now)
	if err != nil {
		return nil, err
	}
	c := m.challenges.load(slot)
	return &c, nil
}

// View marks an unexpired challenge that was never viewed as viewed with
// nonce and returns a copy of it; see Store.View.
func (m *Memory) View(_ context.Context, token, nonce string, now time.Time) (*Challenge, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	slot, err := m.challenge(token, now)
	if err != nil {
		return nil, err
	}
	r := m.challenges.rec(slot)
	switch {
	case r.expired(now):
		return nil, ErrExpired
	case r.viewed:
		return nil, ErrAlreadyViewed
	}
	r.viewed = true
	m.challenges.extra(slot).nonce = nonce
	c := m.challenges.load(slot)
	return &c, nil
}

// Approve marks a viewed, unexpired, pending challenge as a success for a
// copy of a when nonce is the one View recorded; see Store.Approve. An
// empty recorded nonce never matches.
func (m *Memory) Approve(_ context.Context, token, nonce string, a Approval, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	slot, err := m.challenge(token, now)
	if err != nil {
		return err
	}
	t := m.challenges
	r, x := t.rec(slot), t.extras[slot]
	switch {
	case r.expired(now):
		return ErrExpired
	case !r.viewed || x == nil || x.nonce == "" || subtle.ConstantTimeCompare([]byte(x.nonce), []byte(nonce)) != 1:
		return ErrBadNonce
	case Status(t.strs.get(r.status)) == StatusSuccess:
		return ErrAlreadyApproved
	}
	t.setStatus(slot, StatusSuccess)
	x.approver, x.groups, x.authTime = a.Approver, slices.Clone(a.Groups), a.AuthTime
	return nil
}

// Cancel deletes the challenge stored under token; see Store.Cancel.
func (m *Memory) Cancel(_ context.Context, token string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	slot, err := m.challenge(token, now)
	if err != nil {
		return err
	}
	m.challenges.delete(slot)
	return nil
}

// Poll is the poller's atomic step; see Store.Poll. Only PollSuccess comes
// with a challenge, a copy of the one it has just deleted.
func (m *Memory) Poll(_ context.Context, token, ip string, checkIP bool, now time.Time) (PollOutcome, *Challenge, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	slot, err := m.challenge(token, now)
	switch {
	case errors.Is(err, ErrNotFound):
		return PollUnknown, nil, nil
	case err != nil:
		return PollUnknown, nil, err
	}
	t := m.challenges
	r := t.rec(slot)
	switch {
	case r.expired(now):
		t.delete(slot)
		return PollExpired, nil, nil
	case checkIP && t.strs.get(r.ip) != ip:
		return PollUnauthorized, nil, nil
	case Status(t.strs.get(r.status)) == StatusSuccess:
		c := t.load(slot)
		t.delete(slot)
		return PollSuccess, &c, nil
	}
	return PollPending, nil, nil
}

// challenge sweeps the challenges due at now and returns the slot of the
// one stored under token. m.mu must be held.
func (m *Memory) challenge(token string, now time.Time) (uint32, error) {
	if m.closed {
		return 0, errClosed
	}
	m.challenges.sweep(now)
	slot, ok := m.challenges.lookup(token, now)
	if !ok {
		return 0, ErrNotFound
	}
	return slot, nil
}

// SaveLogin stores a copy of l under id until expires, replacing any login
// saved under the same id. It answers ErrClientBusy when l.Client already
// holds MaxLoginsPerClient live logins (the one replaced aside), and
// ErrFull when MaxPending logins are stored.
func (m *Memory) SaveLogin(_ context.Context, id string, l *LoginState, expires, now time.Time) error {
	if l == nil {
		return errNilLogin
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	m.logins.sweep(now)
	old, replacing := m.logins.get(id, now)
	if m.bounded(l.Client) {
		live := 0
		for _, e := range m.byClient[l.Client] {
			if !e.due(now) && e != old {
				live++
			}
		}
		if live >= m.perLogin {
			return ErrClientBusy
		}
	}
	if !replacing && !m.logins.hasRoom(now) {
		return ErrFull
	}
	e := m.logins.put(id, expires, *l)
	if m.bounded(l.Client) {
		m.byClient[l.Client] = append(m.byClient[l.Client], e)
	}
	return nil
}

// TakeLogin returns and deletes the login state saved under id; it answers
// ErrNotFound when there is none or when it expired before now.
func (m *Memory) TakeLogin(_ context.Context, id string, now time.Time) (*LoginState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	m.logins.sweep(now)
	e, ok := m.logins.get(id, now)
	if !ok {
		return nil, ErrNotFound
	}
	m.logins.delete(id)
	l := e.val
	return &l, nil
}

// bounded reports whether the logins of client are counted.
func (m *Memory) bounded(client string) bool { return m.perLogin > 0 && client != "" }

// forgetLogin takes a login that leaves the store out of its client's list.
func (m *Memory) forgetLogin(e *entry[LoginState]) {
	c := e.val.Client
	if !m.bounded(c) {
		return
	}
	rest := slices.DeleteFunc(m.byClient[c], func(o *entry[LoginState]) bool { return o == e })
	if len(rest) == 0 {
		delete(m.byClient, c)
		return
	}
	m.byClient[c] = rest
}

// MarkOnce records key until expires and reports whether it was new, that
// is not recorded with an expiry at or after now. A repeated key keeps the
// later of its two expiries. A key whose expires is already past is
// reported new (unless recorded) and is not recorded. It answers ErrFull
// when MaxPending keys are recorded.
func (m *Memory) MarkOnce(_ context.Context, key string, expires, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, errClosed
	}
	m.marks.sweep(now)
	if e, ok := m.marks.get(key, now); ok {
		if expires.After(e.dropAt) {
			e.dropAt = expires
		}
		return false, nil
	}
	if now.After(expires) {
		return true, nil
	}
	if !m.marks.hasRoom(now) {
		return false, ErrFull
	}
	m.marks.put(key, expires, struct{}{})
	return true, nil
}

// Close forgets everything; every later call answers an error wrapping
// ErrUnavailable. Closing twice is harmless.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.challenges = newChallengeTable(0, m.grace)
	m.logins = newTable[LoginState](0)
	m.marks = newTable[struct{}](0)
	m.byClient = nil
	return nil
}

// Len is the number of challenges held, expired ones not yet dropped
// included: what counts against MaxPending.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.challenges.count
}
