package consolemeauth

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Bounded load tests of the abuse defences: each floods the handler from
// one client (or from many addresses) while another client keeps using it,
// and measures that the other client is still served. They count requests,
// never time them.

// A flood of challenge-link opens without a session from one /64 (the
// login-state exhaustion attack) neither fills the store nor keeps another
// client from signing in and approving.
func TestLoginFloodSparesOtherClients(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	h := newSAMLHandler(t)
	now := time.Now() // a still clock: no budget refills during the flood
	h.now = func() time.Time { return now }
	// newTestHandler's table holds about a thousand entries: the flood
	// below is ten times that.
	tok := generate(t, h, "mallory@example.com", "2001:db8:bad:1::1")

	const floodRequests = 10_500
	var refused, started atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < floodRequests; i++ {
			ip := fmt.Sprintf("2001:db8:bad:1:%x::%x", i%65536, i) // one /64, many addresses
			rec, _ := serve(t, h, request("GET", "/challenge_validator/"+tok, ip, nil))
			switch rec.Code {
			case http.StatusFound:
				started.Add(1)
			case http.StatusTooManyRequests:
				refused.Add(1)
			}
		}
	}()
	// Meanwhile another user signs in and approves, again and again.
	served, tries := 0, 0
	floodDone := waitDone(&wg)
	for done := false; !done; {
		select {
		case <-floodDone:
			done = true
		default:
		}
		tries++
		ip := fmt.Sprintf("192.0.2.%d", tries%250+1) // each within its own budgets
		other := generate(t, h, "alice@example.com", ip)
		rec, _ := serve(t, h, request("GET", "/challenge_validator/"+other, ip, nil))
		if rec.Code != http.StatusFound {
			t.Fatalf("during the flood another client's login got %d: %s", rec.Code, rec.Body)
		}
		loginReturnPath(t, h, rec)
		if a := approve(t, h, other, ip, sessionCookie(t, h, "alice@example.com")); a.Code != 200 {
			t.Fatalf("during the flood another client's approval got %d", a.Code)
		}
		served++
	}
	t.Logf("flood: %d requests from one /64, %d logins started, %d refused with 429; the other client was served %d of %d times",
		floodRequests, started.Load(), refused.Load(), served, tries)
	if started.Load() > int64(DefaultLoginRateLimit.Events) {
		t.Errorf("one client started %d logins, more than its budget of %d", started.Load(), DefaultLoginRateLimit.Events)
	}
}

// Without the login budget, the per-client bound alone keeps one client
// from taking the login table.
func TestLoginStatesOfOneClientAreBounded(t *testing.T) {
	h := newSAMLHandler(t)
	h.loginRL = nil // no budget: only the store's bound
	tok := generate(t, h, "mallory@example.com", "198.51.100.66")
	stored := 0
	for i := 0; i < 3*DefaultMaxLoginsPerClient; i++ {
		if rec, _ := serve(t, h, request("GET", "/challenge_validator/"+tok, "198.51.100.66", nil)); rec.Code == http.StatusFound {
			stored++
		}
	}
	if stored != DefaultMaxLoginsPerClient {
		t.Errorf("one client holds %d logins in progress, want the bound %d", stored, DefaultMaxLoginsPerClient)
	}
	if rec, _ := serve(t, h, request("GET", "/saml/login", "198.51.100.67", nil)); rec.Code != http.StatusFound {
		t.Errorf("another client after the flood: %d", rec.Code)
	}
}

// 101,000 polls from distinct addresses fill the rate-limit table; a
// brand-new client and one tracked before the flood are still served.
func TestAddressFloodLocksNobodyOut(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	h := newTestHandler(t, nil)
	now := time.Now()
	h.now = func() time.Time { return now }
	early := generate(t, h, "alice@example.com", "192.0.2.1")
	poll(t, h, early, "192.0.2.1") // tracked before the flood
	for i := 0; i < maxTrackedIPs+1000; i++ {
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		serve(t, h, request("GET", "/noauth/v1/challenge_poller/"+early, ip, nil))
	}
	if n := h.pollRL.tracked(); n != maxTrackedIPs {
		t.Errorf("the table holds %d clients, want its bound %d", n, maxTrackedIPs)
	}
	for _, ip := range []string{"203.0.113.200", "192.0.2.1"} {
		rec, _ := serve(t, h, request("GET", "/noauth/v1/challenge_poller/"+early, ip, nil))
		if rec.Code != 200 {
			t.Errorf("client %s after the flood: %d", ip, rec.Code)
		}
	}
}

// An IPv6 /64 is one client: it gets the generator budget of one address.
func TestIPv6PrefixSharesOneBudget(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) {
		h.GeneratorRateLimit = &RateLimit{Events: 5, Window: caddy.Duration(time.Minute)}
	})
	ok := 0
	for i := 0; i < 35; i++ {
		rec, _ := serve(t, h, request("GET", "/noauth/v1/challenge_generator/alice", fmt.Sprintf("2001:db8:7:7::%x", i+1), nil))
		if rec.Code == 200 {
			ok++
		}
	}
	if ok != 5 {
		t.Errorf("35 calls from one /64 made %d challenges, want 5 (the budget of one client)", ok)
	}
}

// waitDone turns a WaitGroup into a channel.
func waitDone(wg *sync.WaitGroup) <-chan struct{} {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	return ch
}
