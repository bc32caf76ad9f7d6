package consolemeauth

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func TestGeneratorRateLimit(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) {
		h.GeneratorRateLimit = &RateLimit{Events: 3, Window: caddy.Duration(time.Minute)}
	})
	now := time.Now()
	h.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		generate(t, h, "alice", "192.0.2.1")
	}
	rec, _ := serve(t, h, request("GET", "/noauth/v1/challenge_generator/alice", "192.0.2.1", nil))
	if rec.Code != 429 {
		t.Fatalf("4th call: %d", rec.Code)
	}
	ra, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	if err != nil || ra < 19 || ra > 21 {
		t.Errorf("Retry-After = %q, want about 20 s (one token of 3 per minute)", rec.Header().Get("Retry-After"))
	}
	if m := decode(t, rec); m["code"] != "rate_limited" {
		t.Errorf("body %v", m)
	}
	// Another client is not affected; the first recovers with time.
	generate(t, h, "bob", "192.0.2.2")
	now = now.Add(21 * time.Second)
	generate(t, h, "alice", "192.0.2.1")
}

func TestPollerRateLimitAndOff(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) {
		h.PollerRateLimit = &RateLimit{Events: 2, Window: caddy.Duration(time.Minute)}
		h.GeneratorRateLimit = &RateLimit{} // off
	})
	tok := generate(t, h, "alice", "192.0.2.1")
	poll(t, h, tok, "192.0.2.1")
	poll(t, h, tok, "192.0.2.1")
	rec, _ := serve(t, h, request("GET", "/noauth/v1/challenge_poller/"+tok, "192.0.2.1", nil))
	if rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
		t.Errorf("3rd poll: %d", rec.Code)
	}
	for i := 0; i < 100; i++ {
		if rec, _ := serve(t, h, request("GET", "/noauth/v1/challenge_generator/u", "192.0.2.9", nil)); rec.Code != 200 {
			t.Fatalf("generator limited although off: %d", rec.Code)
		}
	}
}

// TestDefaultLimitsSpareWeep: a Weep login (one generator call, a poll every
// 3 s for 2 minutes) never hits the default limits.
func TestDefaultLimitsSpareWeep(t *testing.T) {
	h := newTestHandler(t, nil)
	now := time.Now()
	h.now = func() time.Time { return now }
	tok := generate(t, h, "alice", "192.0.2.1")
	for i := 0; i < 40; i++ {
		now = now.Add(3 * time.Second)
		rec, _ := serve(t, h, request("GET", "/noauth/v1/challenge_poller/"+tok, "192.0.2.1", nil))
		if rec.Code != 200 {
			t.Fatalf("poll %d: %d", i, rec.Code)
		}
	}
}

func TestIPLimiterTableBounded(t *testing.T) {
	l := newIPLimiter(RateLimit{Events: 1, Window: caddy.Duration(time.Hour)}, 100)
	now := time.Now()
	// A client tracked before the flood, with its bucket used up.
	if ok, _ := l.allow("192.0.2.1", now); !ok {
		t.Fatal("first request refused")
	}
	for i := 0; i < 1000; i++ {
		if i%10 == 0 {
			l.allow("192.0.2.1", now) // still active during the flood
		}
		l.allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256), now)
	}
	if n := l.tracked(); n != 100 {
		t.Fatalf("tracked %d clients, want the bound 100", n)
	}
	// A full table forgets the client seen least recently: a newcomer is
	// served, and the active client is still limited (not forgotten).
	if ok, _ := l.allow("192.0.2.77", now); !ok {
		t.Error("a new client was refused because the table was full")
	}
	if ok, wait := l.allow("192.0.2.1", now); ok || wait <= 0 {
		t.Error("the flood reset the limit of a client tracked before it")
	}
	var nilLimiter *ipLimiter
	if ok, _ := nilLimiter.allow("x", now); !ok {
		t.Error("a disabled limiter refused")
	}
}
