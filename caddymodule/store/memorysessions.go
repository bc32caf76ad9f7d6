package store

import (
	"context"
	"slices"
	"sync"
	"time"
)

// MemorySessions is the embedded SessionStore: sessions and revocations
// live in the process, for one Caddy instance. Expired records are dropped
// as they are met and by a sweep at most once a minute.
type MemorySessions struct {
	mu          sync.Mutex
	sessions    map[string]*Session   // by id
	byUser      map[string][]*Session // each user's, oldest first
	revocations map[string]Revocation // by Key()
	watchers    map[int]func(RevocationEvent)
	nextWatcher int
	nextSweep   time.Time
}

var _ SessionStore = (*MemorySessions)(nil)

// NewMemorySessions returns an empty memory session store.
func NewMemorySessions() *MemorySessions {
	return &MemorySessions{
		sessions:    make(map[string]*Session),
		byUser:      make(map[string][]*Session),
		revocations: make(map[string]Revocation),
		watchers:    make(map[int]func(RevocationEvent)),
	}
}

// RecordSession stores a copy of s; see SessionStore.RecordSession.
func (m *MemorySessions) RecordSession(_ context.Context, s *Session, maxPerUser int, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	if !s.Expires.After(now) {
		return nil
	}
	m.dropSession(s.ID)
	c := *s
	m.sessions[c.ID] = &c
	list := append(m.byUser[c.User], &c)
	slices.SortStableFunc(list, func(a, b *Session) int { return a.Created.Compare(b.Created) })
	for maxPerUser > 0 && len(list) > maxPerUser {
		delete(m.sessions, list[0].ID)
		list = list[1:]
	}
	m.byUser[c.User] = slices.Clip(list)
	return nil
}

// ListSessions returns copies of the user's live sessions, newest first.
func (m *MemorySessions) ListSessions(_ context.Context, user string, now time.Time) ([]Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Session
	for _, s := range m.byUser[user] {
		if s.Expires.After(now) {
			out = append(out, *s)
		}
	}
	slices.Reverse(out)
	return out, nil
}

// Revoke stores rv and tells the watchers; see SessionStore.Revoke.
func (m *MemorySessions) Revoke(_ context.Context, rv Revocation, now time.Time) error {
	if err := rv.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	m.sweep(now)
	if old, ok := m.revocations[rv.Key()]; ok && old.Expires.After(now) {
		old.Merge(rv)
		rv = old
	}
	m.revocations[rv.Key()] = rv
	switch rv.Kind {
	case RevokeSession:
		m.dropSession(rv.Subject)
	case RevokeUser:
		for _, s := range slices.Clone(m.byUser[rv.Subject]) {
			if s.Created.Before(rv.At) && s.ID != rv.Except {
				m.dropSession(s.ID)
			}
		}
	}
	watchers := m.watcherList()
	m.mu.Unlock()
	for _, fn := range watchers {
		fn(RevocationEvent{Revoked: &rv})
	}
	return nil
}

// Unblock removes the user's block; see SessionStore.Unblock.
func (m *MemorySessions) Unblock(_ context.Context, user string, _ time.Time) error {
	m.mu.Lock()
	delete(m.revocations, RevokeBlock+":"+user)
	watchers := m.watcherList()
	m.mu.Unlock()
	for _, fn := range watchers {
		fn(RevocationEvent{Unblocked: user})
	}
	return nil
}

// Revocations returns the unexpired records.
func (m *MemorySessions) Revocations(_ context.Context, now time.Time) ([]Revocation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Revocation, 0, len(m.revocations))
	for _, rv := range m.revocations {
		if rv.Expires.After(now) {
			out = append(out, rv)
		}
	}
	return out, nil
}

// Watch calls fn with a reload event, then with every revocation made
// through this store, until ctx ends. Calls to fn are made by the
// goroutine that revokes, after the record is stored.
func (m *MemorySessions) Watch(ctx context.Context, fn func(RevocationEvent)) {
	var once sync.Mutex // one call at a time, as promised
	call := func(e RevocationEvent) {
		once.Lock()
		defer once.Unlock()
		if ctx.Err() == nil {
			fn(e)
		}
	}
	m.mu.Lock()
	id := m.nextWatcher
	m.nextWatcher++
	m.watchers[id] = call
	m.mu.Unlock()
	call(RevocationEvent{})
	<-ctx.Done()
	m.mu.Lock()
	delete(m.watchers, id)
	m.mu.Unlock()
}

// Close forgets the watchers; the records stay.
func (m *MemorySessions) Close() error { return nil }

func (m *MemorySessions) watcherList() []func(RevocationEvent) {
	out := make([]func(RevocationEvent), 0, len(m.watchers))
	for _, fn := range m.watchers {
		out = append(out, fn)
	}
	return out
}

// dropSession forgets one recorded session.
func (m *MemorySessions) dropSession(id string) {
	s, ok := m.sessions[id]
	if !ok {
		return
	}
	delete(m.sessions, id)
	list := slices.DeleteFunc(m.byUser[s.User], func(x *Session) bool { return x.ID == id })
	if len(list) == 0 {
		delete(m.byUser, s.User)
	} else {
		m.byUser[s.User] = list
	}
}

// sweep drops expired records, at most once a minute.
func (m *MemorySessions) sweep(now time.Time) {
	if now.Before(m.nextSweep) {
		return
	}
	m.nextSweep = now.Add(time.Minute)
	for id, s := range m.sessions {
		if !s.Expires.After(now) {
			m.dropSession(id)
		}
	}
	for k, rv := range m.revocations {
		if !rv.Expires.After(now) {
			delete(m.revocations, k)
		}
	}
}
