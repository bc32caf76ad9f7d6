package store

// MemoryLens are the sizes of a memory store's tables and order lists.
type MemoryLens struct {
	Challenges, ChallengeQueue int
	ChallengeStrings           int // users, IPs and statuses interned
	Logins, LoginQueue         int
	Once, OnceQueue            int
	Clients                    int
}

// Lens reports the sizes of m's tables and order lists, for tests.
func (m *Memory) Lens() MemoryLens {
	m.mu.Lock()
	defer m.mu.Unlock()
	return MemoryLens{
		Challenges:       m.challenges.count,
		ChallengeQueue:   len(m.challenges.order),
		ChallengeStrings: m.challenges.strs.len(),
		Logins:           m.logins.len(),
		LoginQueue:       len(m.logins.order),
		Once:             m.marks.len(),
		OnceQueue:        len(m.marks.order),
		Clients:          len(m.byClient),
	}
}

// FormatUUID writes id as the store writes a uuid, for tests.
var FormatUUID = formatUUID
