package store

// MemoryLens are the sizes of a memory store's tables and drop queues.
type MemoryLens struct {
	Challenges, ChallengeQueue int
	Logins, LoginQueue         int
	Once, OnceQueue            int
}

// Lens reports the sizes of m's tables and drop queues, for tests.
func (m *Memory) Lens() MemoryLens {
	m.mu.Lock()
	defer m.mu.Unlock()
	return MemoryLens{
		Challenges:     m.challenges(),
		ChallengeQueue: len(m.uuids.q) + len(m.others.q),
		Logins:         len(m.logins.m),
		LoginQueue:     len(m.logins.q),
		Once:           len(m.once.m),
		OnceQueue:      len(m.once.q),
	}
}
