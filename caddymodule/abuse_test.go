package consolemeauth

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// HEAD is not GET on routes whose GET changes state: 405 with Allow, and
// nothing is created or used up.
func TestHeadChangesNothing(t *testing.T) {
	h := newSAMLHandler(t)
	if rec, _ := serve(t, h, request("HEAD", "/noauth/v1/challenge_generator/alice", "192.0.2.1", nil)); rec.Code != 405 || rec.Header().Get("Allow") != "GET" {
		t.Errorf("HEAD generator: %d Allow=%q", rec.Code, rec.Header().Get("Allow"))
	}
	if n := h.states.(*watchedStore).Store.(interface{ Len() int }).Len(); n != 0 {
		t.Errorf("HEAD on the generator stored %d challenges", n)
	}
	tok := generate(t, h, "alice@example.com", "192.0.2.1")
	rec, _ := serve(t, h, request("HEAD", "/challenge_validator/"+tok, "192.0.2.1", nil))
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET, POST" {
		t.Errorf("HEAD validator: %d Allow=%q", rec.Code, rec.Header().Get("Allow"))
	}
	// The one view is still there.
	approvalForm(t, h, tok, "192.0.2.1", sessionCookie(t, h, "alice@example.com"))
}

// A challenge is approved once: a replayed approval POST is refused and
// the first approver stays.
func TestApprovalIsOneTime(t *testing.T) {
	h := newTestHandler(t, nil)
	tok := generate(t, h, "alice@example.com", "192.0.2.1")
	cookie := sessionCookie(t, h, "alice@example.com", "first")
	form := approvalForm(t, h, tok, "192.0.2.1", cookie)
	post := func(c *http.Cookie) int {
		r := request("POST", "/challenge_validator/"+tok, "192.0.2.1", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(c)
		rec, _ := serve(t, h, r)
		return rec.Code
	}
	if code := post(cookie); code != 200 {
		t.Fatalf("first approval: %d", code)
	}
	if code := post(sessionCookie(t, h, "alice@example.com", "second")); code != http.StatusConflict {
		t.Errorf("replayed approval: %d, want 409", code)
	}
	c, err := h.states.Get(context.Background(), tok, time.Now())
	if err != nil || len(c.Groups) != 1 || c.Groups[0] != "first" {
		t.Errorf("after the replay the challenge holds %+v, %v; want the first approval", c, err)
	}
}

// Starting logins has its own per-client budget, separate from the
// generator's, and IPv6 clients are counted by /64.
func TestLoginBudget(t *testing.T) {
	h := newWebLoginHandler(t, func(h *Handler) {
		h.LoginRateLimit = &RateLimit{Events: 3, Window: caddy.Duration(time.Minute)}
		h.GeneratorRateLimit = &RateLimit{Events: 1, Window: caddy.Duration(time.Hour)}
	})
	generate(t, h, "alice", "2001:db8:1:2::1") // spends the generator budget
	for i := 0; i < 3; i++ {
		ip := fmt.Sprintf("2001:db8:1:2::%x", i+10) // one /64
		rec, _ := serve(t, h, request("GET", "/policies", ip, nil))
		if rec.Code != http.StatusFound {
			t.Fatalf("login %d from the /64: %d, want a redirect to the IdP", i, rec.Code)
		}
	}
	rec, _ := serve(t, h, request("GET", "/saml/login", "2001:db8:1:2:ffff::1", nil))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Errorf("4th login from the same /64: %d, want 429 with Retry-After", rec.Code)
	}
	// Another /64, and an IPv4 client, are served.
	for _, ip := range []string{"2001:db8:1:3::1", "192.0.2.9"} {
		if rec, _ := serve(t, h, request("GET", "/policies", ip, nil)); rec.Code != http.StatusFound {
			t.Errorf("login from %s: %d", ip, rec.Code)
		}
	}
}

// One client cannot hold more than max_logins_per_client logins in
// progress; another client still signs in.
func TestLoginStatesBoundedPerClient(t *testing.T) {
	h := newWebLoginHandler(t, func(h *Handler) {
		h.MaxLoginsPerClient = 5
		h.LoginRateLimit = &RateLimit{} // off: only the bound is tested
	})
	for i := 0; i < 5; i++ {
		if rec, _ := serve(t, h, request("GET", "/saml/login", "198.51.100.7", nil)); rec.Code != http.StatusFound {
			t.Fatalf("login %d: %d", i, rec.Code)
		}
	}
	rec, _ := serve(t, h, request("GET", "/saml/login", "198.51.100.7", nil))
	if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "sign-ins") {
		t.Errorf("6th login in progress: %d %s", rec.Code, rec.Body)
	}
	if rec, _ := serve(t, h, request("GET", "/saml/login", "198.51.100.8", nil)); rec.Code != http.StatusFound {
		t.Errorf("another client: %d", rec.Code)
	}
}

func TestClientKey(t *testing.T) {
	for ip, want := range map[string]string{
		"192.0.2.1":                 "192.0.2.1",
		"::ffff:192.0.2.1":          "192.0.2.1",
		"2001:db8:aa:bb:1:2:3:4":    "2001:db8:aa:bb::/64",
		"2001:db8:aa:bb:ffff::9":    "2001:db8:aa:bb::/64",
		"fe80::1%eth0":              "fe80::/64",
		"not-an-address":            "not-an-address",
		"2001:db8:aa:bc:1:2:3:4":    "2001:db8:aa:bc::/64",
		"2001:0db8:00aa:00bb::0001": "2001:db8:aa:bb::/64",
	} {
		if got := clientKey(ip, 64); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", ip, got, want)
		}
	}
	if got := clientKey("2001:db8:aa:bb:1:2:3:4", 48); got != "2001:db8:aa::/48" {
		t.Errorf("/48: %q", got)
	}
}

// web_login exemptions match whole segments of a clean path only.
func TestWebLoginExemptionsMatchSegments(t *testing.T) {
	h := newWebLoginHandler(t, nil)
	for _, target := range []string{
		"/noauth/../api/v2/roles",
		"/api/v1/get_rolesX",
		"/api/v1/myheaders-admin",
		"/static/..%2f..%2fapi%2fv2%2froles",
		"/static/%2e%2e/api/v2/roles",
		"/api/v1/get_roles/../../v2/roles",
		"/healthcheck/./x",
		"/static%5c..%5capi",
	} {
		r := request("GET", target, "192.0.2.1", nil)
		if _, passed := serve(t, h, r); passed {
			t.Errorf("%s reached the upstream without a session", target)
		}
	}
	for _, target := range []string{"/api/v1/get_roles", "/api/v1/get_roles/", "/noauth/v1/x", "/static/app.js", "/healthcheck"} {
		if _, passed := serve(t, h, request("GET", target, "192.0.2.1", nil)); !passed {
			t.Errorf("%s is exempt but was not passed on", target)
		}
	}
}

// A logout another site asks for (an image tag, a form) signs nobody out.
func TestCrossSiteLogoutSignsNobodyOut(t *testing.T) {
	h := newWebLoginHandler(t, nil)
	for _, tc := range []struct {
		method, site, origin string
	}{
		{"GET", "cross-site", ""},
		{"GET", "same-site", ""},
		{"POST", "cross-site", "https://evil.example"},
		{"POST", "", "https://evil.example"},
	} {
		r := request(tc.method, "/logout", "192.0.2.1", nil)
		r.Header.Set("Sec-Fetch-Site", tc.site)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		r.AddCookie(sessionCookie(t, h, "alice@example.com"))
		rec, _ := serve(t, h, r)
		if sc := rec.Header().Get("Set-Cookie"); sc != "" || rec.Code != 200 || !strings.Contains(rec.Body.String(), `id="logout"`) {
			t.Errorf("%s /logout from %q (origin %q): %d Set-Cookie=%q; want the confirmation page and no change",
				tc.method, tc.site, tc.origin, rec.Code, sc)
		}
	}
	// The page's own button (a same-origin POST) signs out.
	r := request("POST", "/logout", "192.0.2.1", nil)
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Origin", "https://consoleme.example.com")
	r.AddCookie(sessionCookie(t, h, "alice@example.com"))
	if rec, _ := serve(t, h, r); !strings.Contains(rec.Header().Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("same-origin logout did not clear the cookie: %v", rec.Header())
	}
}

// Settings that would quietly weaken the module are refused at provision,
// which `caddy validate` runs.
func TestProvisionRefusesWeakeningSettings(t *testing.T) {
	for _, tc := range []struct {
		h    Handler
		want string
	}{
		{Handler{JWTSecret: "s", PublicURL: "https://cm.example.com/consoleme"}, "has a path"},
		{Handler{JWTSecret: "s", Store: &StoreConfig{Type: "redis", URL: "redis://127.0.0.1:99999/0"}}, "not a valid port"},
		{Handler{JWTSecret: "s", Store: &StoreConfig{Type: "redis", URL: "redis://127.0.0.1:port/0"}}, "invalid port"},
		{Handler{JWTSecret: "s", IPv6Prefix: 129}, "ipv6_prefix"},
		{Handler{JWTSecret: "{env.CONSOLEME_AUTH_TEST_UNSET_VAR}"}, "{env.CONSOLEME_AUTH_TEST_UNSET_VAR} expanded to nothing"},
		{Handler{JWTSecret: "s", SAML: &SAMLConfig{SPCert: "{env.CONSOLEME_AUTH_TEST_UNSET_VAR}", SPKey: "k", IDPMetadataFile: "f"}}, "sp_cert: {env.CONSOLEME_AUTH_TEST_UNSET_VAR} expanded to nothing"},
	} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		h := tc.h
		err := h.Provision(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Provision(%+v) = %v, want an error saying %q", tc.h, err, tc.want)
		}
		_ = h.Cleanup()
	}
}
