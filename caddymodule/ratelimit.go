package consolemeauth

import (
	"container/list"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/time/rate"
)

// RateLimit allows Events requests per Window from one client, with bursts
// of up to Events. A zero Events turns the limit off.
type RateLimit struct {
	// Events is how many requests one client may make per Window.
	Events int `json:"events,omitempty"`
	// Window is the period Events are counted over.
	Window caddy.Duration `json:"window,omitempty"`
}

// validate checks a limit; nil and the empty limit (off) are valid.
func (rl *RateLimit) validate() error {
	if rl != nil && (rl.Events < 0 || rl.Window < 0 || (rl.Events > 0 && rl.Window == 0)) {
		return errors.New("events and window must be positive")
	}
	return nil
}

// maxTrackedIPs bounds the memory of a limiter; at ~250 bytes an entry a
// full table costs about 25 MB.
const maxTrackedIPs = 100_000

// DefaultIPv6Prefix is how many leading bits of an IPv6 address name one
// client: a /64 is what one subscriber or host usually gets.
const DefaultIPv6Prefix = 64

// clientKey names the client behind ip for the per-client limits: an IPv4
// address (or an IPv4-mapped IPv6 one) as itself, an IPv6 address by its
// leading v6Bits. Anything else (not an address) stands for itself.
func clientKey(ip string, v6Bits int) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(v6Bits)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// ipLimiter is a token bucket per client with a bounded table: when the
// table is full, the client seen least recently is forgotten to make room,
// so a flood of new addresses never locks out a newcomer or a client
// tracked before the flood (a forgotten client starts again with a full
// bucket, which costs an attacker more addresses than it gains).
type ipLimiter struct {
	limit rate.Limit
	burst int
	max   int

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	lru     list.List                // front: most recently seen
}

type bucket struct {
	key string
	lim *rate.Limiter
}

func newIPLimiter(rl RateLimit, max int) *ipLimiter {
	if rl.Events <= 0 || rl.Window <= 0 {
		return nil
	}
	return &ipLimiter{
		limit:   rate.Limit(float64(rl.Events) / time.Duration(rl.Window).Seconds()),
		burst:   rl.Events,
		max:     max,
		buckets: make(map[string]*list.Element),
	}
}

// allow takes one token for client at now; when there is none, it says how
// long until there is.
func (l *ipLimiter) allow(client string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if e, ok := l.buckets[client]; ok {
		l.lru.MoveToFront(e)
		b = e.Value.(*bucket)
	} else {
		if len(l.buckets) >= l.max {
			oldest := l.lru.Back()
			delete(l.buckets, oldest.Value.(*bucket).key)
			l.lru.Remove(oldest)
		}
		b = &bucket{key: client, lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[client] = l.lru.PushFront(b)
	}
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// tracked is the number of clients in the table.
func (l *ipLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
