package redistest

import (
	"sync"
	"time"
)

// Pollers poll a set of approved challenges from several goroutines, over
// and over and each in its own order, and count how often each challenge
// was handed out, until Stop. The failover tests run them across a kill to
// show that no success is handed out twice.
type Pollers struct {
	mu     sync.Mutex
	tokens []string
	handed map[string]int
	stop   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

// StartPollers starts n pollers over tokens, one poll every interval each;
// poll reports whether the challenge was handed out.
func StartPollers(n int, interval time.Duration, tokens []string, poll func(token string) bool) *Pollers {
	p := &Pollers{tokens: append([]string(nil), tokens...), handed: map[string]int{}, stop: make(chan struct{})}
	for i := range n {
		p.wg.Go(func() {
			for round := 0; ; round++ {
				p.mu.Lock()
				ts := p.tokens
				p.mu.Unlock()
				for j := range ts {
					select {
					case <-p.stop:
						return
					case <-time.After(interval):
					}
					tok := ts[(j*(i+1)+round)%len(ts)]
					if poll(tok) {
						p.mu.Lock()
						p.handed[tok]++
						p.mu.Unlock()
					}
				}
			}
		})
	}
	return p
}

// Add has the pollers poll tokens too, from their next round.
func (p *Pollers) Add(tokens ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens = append(append([]string(nil), p.tokens...), tokens...)
}

// Handed is how often the challenge of token was handed out so far.
func (p *Pollers) Handed(token string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.handed[token]
}

// Collected is how many challenges were handed out at least once so far.
func (p *Pollers) Collected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.handed)
}

// Stop stops the pollers and waits for them; it may be called more than
// once.
func (p *Pollers) Stop() {
	p.once.Do(func() { close(p.stop) })
	p.wg.Wait()
}
