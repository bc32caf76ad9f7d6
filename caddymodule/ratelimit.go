package consolemeauth

import (
	"math"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/time/rate"
)

// RateLimit allows Events requests per Window from one client IP, with
// bursts of up to Events. A zero Events turns the limit off.
type RateLimit struct {
	// Events is how many requests one client IP may make per Window.
	Events int `json:"events,omitempty"`
	// Window is the period Events are counted over.
	Window caddy.Duration `json:"window,omitempty"`
}

// maxTrackedIPs bounds the memory of a limiter; at ~200 bytes an entry a
// full table costs about 20 MB.
const maxTrackedIPs = 100_000

// ipLimiter is a token bucket per client IP with a bounded table: idle
// buckets (full again) are dropped when the table fills, and while it is
// still full, new IPs are refused rather than tracked.
type ipLimiter struct {
	limit rate.Limit
	burst int
	max   int

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newIPLimiter(rl RateLimit, max int) *ipLimiter {
	if rl.Events <= 0 || rl.Window <= 0 {
		return nil
	}
	return &ipLimiter{
		limit:   rate.Limit(float64(rl.Events) / time.Duration(rl.Window).Seconds()),
		burst:   rl.Events,
		max:     max,
		buckets: make(map[string]*bucket),
	}
}

// allow takes one token for ip at now; when there is none, it says how long
// until there is.
func (l *ipLimiter) allow(ip string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[ip]
	if !ok {
		if len(l.buckets) >= l.max {
			l.sweep(now)
		}
		if len(l.buckets) >= l.max {
			// Too many clients to tell apart: refuse the newcomer for
			// a while instead of growing without bound.
			return false, l.refill()
		}
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[ip] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// refill is how long an empty bucket takes to fill up again; a bucket idle
// that long is as good as new and can be forgotten.
func (l *ipLimiter) refill() time.Duration {
	return time.Duration(math.Ceil(float64(l.burst) / float64(l.limit) * float64(time.Second)))
}

// sweep drops the buckets idle for a full refill; at most once a second, so
// a flood of new IPs cannot make every request scan the table.
func (l *ipLimiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < time.Second {
		return
	}
	l.lastSweep = now
	idle := l.refill()
	for ip, b := range l.buckets {
		if now.Sub(b.last) >= idle {
			delete(l.buckets, ip)
		}
	}
}

// tracked is the number of IPs in the table.
func (l *ipLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
