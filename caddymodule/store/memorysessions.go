package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// MemorySessions is the embedded SessionStore: sessions and revocations
// live in the process, for one Caddy instance. Expired records are dropped
// as they are met and by a sweep at most once a minute.
//
// Watchers hear of a revocation from their own Watch goroutine, in the
// order the records were stored, shortly after Revoke or Unblock returns:
// a slow watcher never holds up a revocation, and a watcher's function may
// call any method of the store.
type MemorySessions struct {
	mu          sync.Mutex
	sessions    map[string]*Session   // by id
	byUser      map[string][]*Session // each user's, oldest first
	revocations map[string]Revocation // by Key()
	watchers    map[*memoryWatcher]struct{}
	nextSweep   time.Time
}

var _ SessionStore = (*MemorySessions)(nil)

// memoryWatcher queues the events of one Watch call.
type memoryWatcher struct {
	mu     sync.Mutex
	queue  []RevocationEvent
	signal chan struct{} // holds a token while the queue may be non-empty
}

// push queues e and wakes the watcher.
func (w *memoryWatcher) push(e RevocationEvent) {
	w.mu.Lock()
	w.queue = append(w.queue, e)
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// take returns the queued events and empties the queue.
func (w *memoryWatcher) take() []RevocationEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queue
	w.queue = nil
	return q
}

// NewMemorySessions returns an empty memory session store.
func NewMemorySessions() *MemorySessions {
	return &MemorySessions{
		sessions:    make(map[string]*Session),
		byUser:      make(map[string][]*Session),
		revocations: make(map[string]Revocation),
		watchers:    make(map[*memoryWatcher]struct{}),
	}
}

// CheckSession reports a session that cannot be recorded.
func CheckSession(s *Session) error {
	switch {
	case s == nil:
		return errors.New("no session")
	case s.ID == "":
		return errors.New("session without an id")
	case s.User == "":
		return errors.New("session without a user")
	}
	return nil
}

// RecordSession stores a copy of s; see SessionStore.RecordSession. The
// user's expired sessions are dropped first, so they take no place.
func (m *MemorySessions) RecordSession(_ context.Context, s *Session, maxPerUser int, now time.Time) error {
	if err := CheckSession(s); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	// A record with the same id goes, even when s itself has expired.
	m.dropSession(s.ID)
	if !s.Expires.After(now) {
		return nil
	}
	for _, old := range slices.Clone(m.byUser[s.User]) {
		if !old.Expires.After(now) {
			m.dropSession(old.ID)
		}
	}
	c := *s
	m.sessions[c.ID] = &c
	list := append(slices.Clip(m.byUser[c.User]), &c)
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
	defer m.mu.Unlock()
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
	// Queued under the lock: every watcher hears of the records in the
	// order they were stored. Each gets a copy of its own.
	for w := range m.watchers {
		c := rv
		w.push(RevocationEvent{Revoked: &c})
	}
	return nil
}

// Unblock removes the user's block; see SessionStore.Unblock.
func (m *MemorySessions) Unblock(_ context.Context, user string, _ time.Time) error {
	if user == "" {
		return errors.New("unblock without a user")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.revocations, RevokeBlock+":"+user)
	for w := range m.watchers {
		w.push(RevocationEvent{Unblocked: user})
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
// through this store, until ctx ends. fn runs on the goroutine that called
// Watch, and never after Watch has returned.
func (m *MemorySessions) Watch(ctx context.Context, fn func(RevocationEvent)) {
	if ctx.Err() != nil {
		return
	}
	w := &memoryWatcher{signal: make(chan struct{}, 1)}
	m.mu.Lock()
	m.watchers[w] = struct{}{}
	// The reload comes first: queued under the lock, before any event.
	w.push(RevocationEvent{})
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.watchers, w)
		m.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.signal:
		}
		for _, e := range w.take() {
			if ctx.Err() != nil {
				return
			}
			fn(e)
		}
	}
}

// Close does nothing: the records stay, and watchers end with their
// contexts.
func (m *MemorySessions) Close() error { return nil }

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
