package integration

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/oidcauth/oidctest"
	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// The tests in this file sign in with OpenID Connect instead of SAML: Caddy
// with an oidc block in front of the stand-in ConsoleMe, a real OpenID
// provider (the certified oidc-provider package, started on loopback by
// oidctest) and Chromium as the browser.

// oidcWorld is one such deployment.
type oidcWorld struct {
	Base     string
	Admin    string // the admin endpoint (for /metrics), when observed
	Caddy    *caddyProc
	OP       *oidctest.Provider
	Secret   string
	Upstream *consoleMe
}

// oidcKeySet makes a fresh RSA signing key set for the provider.
func oidcKeySet(t *testing.T, kid string) jose.JSONWebKeySet {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: priv, KeyID: kid, Algorithm: "RS256", Use: "sig"}}}
}

func newOIDCWorld(t *testing.T, edit ...func(*testbed.Site)) *oidcWorld {
	t.Helper()
	return startOIDCWorld(t, false, edit...)
}

// newObservedOIDCWorld is newOIDCWorld with Caddy's admin endpoint on (so
// that w.Admin serves /metrics) and debug logging, so that a test sees
// every log line the module writes.
func newObservedOIDCWorld(t *testing.T, edit ...func(*testbed.Site)) *oidcWorld {
	t.Helper()
	return startOIDCWorld(t, true, edit...)
}

func startOIDCWorld(t *testing.T, observed bool, edit ...func(*testbed.Site)) *oidcWorld {
	t.Helper()
	if err := oidctest.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the OpenID provider cannot run: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	ports := freePorts(t, 2) // the site's and the admin endpoint's
	port := ports[0]
	w := &oidcWorld{Base: testbed.SiteAddress(port), Secret: "oidc-" + uuid.NewString()}
	op, err := oidctest.Start(oidctest.Config{
		JWKS: oidcKeySet(t, "first"),
		Accounts: map[string]map[string]any{
			"alice": {"email": userAlice.Email, "email_verified": true, "groups": []string{"engineering", "consoleme-admins"}},
		},
		Clients: []map[string]any{{
			"client_id": "consoleme", "client_secret": "oidc-client-secret-for-tests",
			"redirect_uris":             []string{w.Base + "/oidc/callback"},
			"post_logout_redirect_uris": []string{w.Base + "/"},
			"grant_types":               []string{"authorization_code"}, "response_types": []string{"code"},
			"token_endpoint_auth_method": "client_secret_basic",
		}},
	}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w.OP = op
	t.Cleanup(func() {
		op.Stop()
		if t.Failed() {
			t.Logf("OpenID provider's stderr:\n%s", op.Stderr())
		}
	})
	w.Upstream = newConsoleMe(t, w.Secret)
	site := testbed.Site{
		Address: w.Base,
		Auth: &testbed.Module{
			JWTSecret: w.Secret,
			PublicURL: w.Base,
			OIDC: &testbed.OIDC{Issuer: op.Issuer, ClientID: "consoleme",
				ClientSecret: "oidc-client-secret-for-tests", GroupsClaim: "groups"},
		},
		Upstreams: []string{w.Upstream.Addr()},
	}
	for _, e := range edit {
		e(&site)
	}
	global := testGlobal(port)
	if observed {
		w.Admin = fmt.Sprintf("127.0.0.1:%d", ports[1])
		global.Admin, global.Debug = w.Admin, true
	}
	w.Caddy = startCaddy(t, testbed.Caddyfile{Global: global, Sites: []testbed.Site{site}})
	return w
}

// signInAtProvider fills in the provider's login and consent pages.
func signInAtProvider(tb *tab, login string) {
	tb.WaitVisible(`input[name="login"]`)
	tb.Type(`input[name="login"]`, login)
	tb.Type(`input[name="password"]`, "any")
	tb.Click(`button[type="submit"]`)
	// The consent page, shown once per client and user.
	tb.WaitFor("the consent page or the way back", func(loc, text string) bool {
		return strings.Contains(text, "Authorize") || !strings.Contains(loc, "/interaction/")
	})
	if strings.Contains(tb.Location(), "/interaction/") {
		tb.Click(`button[type="submit"]`)
	}
}

// The CLI flow signs in at the OpenID provider, and the token the poller
// hands out is ConsoleMe's, for the provider's user and groups.
func TestOIDCChallengeFlowInChromium(t *testing.T) {
	w := newOIDCWorld(t)
	gen := call(t, "GET", w.Base+"/noauth/v1/challenge_generator/"+userAlice.Email, nil, "").object(t)
	challengeURL, _ := gen["challenge_url"].(string)
	pollingURL, _ := gen["polling_url"].(string)
	browser := startChromium(t)
	tb := browser.newTab(t)
	tb.Navigate(challengeURL)
	signInAtProvider(tb, "alice")
	tb.WaitVisible("#approve")
	tb.Snapshot("oidc-approval")
	tb.Click("#approve")
	tb.WaitText("You've successfully authenticated to ConsoleMe")
	m := call(t, "GET", pollingURL, nil, "").object(t)
	if m["status"] != "success" || m["user"] != userAlice.Email {
		t.Fatalf("poll after the OIDC approval: %v", m)
	}
	jwt, _ := m["encoded_jwt"].(string)
	who := w.Upstream.CheckToken(jwt)
	if who.Verdict != tokenValid || who.Email != userAlice.Email || strings.Join(who.Groups, ",") != "engineering,consoleme-admins" {
		t.Errorf("ConsoleMe sees %+v, want alice with the provider's groups", who)
	}
	if !strings.Contains(w.Caddy.Output(), `"msg":"OIDC login"`) {
		t.Errorf("no OIDC login audit line:\n%s", w.Caddy.Output())
	}
}

// web_login signs a browser in at the provider and returns it to the page
// it asked for; after the provider rotates its signing key, a new login
// works without a reload.
func TestOIDCWebLoginAndKeyRotationInChromium(t *testing.T) {
	w := newOIDCWorld(t, func(s *testbed.Site) { s.Auth.WebLogin = &testbed.WebLogin{} })
	browser := startChromium(t)
	tb := browser.newTab(t)
	w.signInTo(t, tb, "/echo/some/page?x=1")

	if err := w.OP.Rotate(oidcKeySet(t, "second")); err != nil {
		t.Fatal(err)
	}
	fresh := browser.newTab(t) // a new browser context: no session anywhere
	w.signInTo(t, fresh, "/echo/after/rotation")
}

// signInTo opens path on the site in tb, signs in at the provider as
// alice, and checks that the browser ends on that page with a session
// ConsoleMe accepts.
func (w *oidcWorld) signInTo(t *testing.T, tb *tab, path string) {
	t.Helper()
	tb.Navigate(w.Base + path)
	signInAtProvider(tb, "alice")
	tb.WaitFor("the page asked for", func(loc, text string) bool {
		return strings.HasPrefix(loc, w.Base+path) && strings.Contains(text, "consoleme_auth")
	})
	w.expectSignedIn(t, tb, userAlice.Email)
}

// expectSignedIn checks the browser's session cookie as ConsoleMe would.
func (w *oidcWorld) expectSignedIn(t *testing.T, tb *tab, email string) {
	t.Helper()
	c := tb.Cookie(w.Base, "consoleme_auth")
	if c == nil {
		t.Fatal("the browser has no consoleme_auth cookie")
	}
	if who := w.Upstream.CheckToken(c.Value); who.Verdict != tokenValid || who.Email != email {
		t.Errorf("ConsoleMe sees the browser as %+v, want %s", who, email)
	}
}

// The approval, refusal and success pages as a user sees them in Chromium
// (a screenshot of each is written to the test output on failure): the
// approval page names the site and what approving grants, "This wasn't me"
// cancels, a link opened from another address warns of phishing, and the
// success page sends the user back to the terminal.
func TestApprovalPagesInChromium(t *testing.T) {
	w := newOIDCWorld(t, func(s *testbed.Site) { s.Auth.SiteName = "ConsoleMe (test)" })
	generate := func(header http.Header) (string, string) {
		m := call(t, "GET", w.Base+"/noauth/v1/challenge_generator/"+userAlice.Email, header, "").object(t)
		return m["challenge_url"].(string), m["polling_url"].(string)
	}
	browser := startChromium(t)
	tb := browser.newTab(t)

	// Cancelled: the poller then answers as for an unknown challenge.
	challengeURL, pollingURL := generate(nil)
	tb.Navigate(challengeURL)
	signInAtProvider(tb, "alice")
	tb.WaitVisible("#cancel")
	page := tb.Text()
	for _, want := range []string{"ConsoleMe (test)", userAlice.Email, "1 hour", "AWS role credentials", "This wasn't me"} {
		if !strings.Contains(page, want) {
			t.Errorf("the approval page lacks %q:\n%s", want, page)
		}
	}
	tb.Snapshot("approval-page")
	tb.Click("#cancel")
	tb.WaitText("Request cancelled")
	if m := call(t, "GET", pollingURL, nil, "").object(t); m["status"] != "unknown" {
		t.Errorf("poll after This wasn't me: %v, want unknown", m)
	}
	if !strings.Contains(w.Caddy.Output(), `"msg":"challenge cancelled"`) {
		t.Error("the cancellation was not audit-logged")
	}

	// Asked for from another address: both addresses and a phishing warning.
	challengeURL, _ = generate(http.Header{"X-Forwarded-For": {"198.51.100.7"}})
	tb.Navigate(challengeURL)
	tb.WaitText("phishing")
	page = tb.Text()
	if !strings.Contains(page, "198.51.100.7") || !strings.Contains(page, "127.0.0.1") {
		t.Errorf("the other-address refusal does not show both addresses:\n%s", page)
	}
	tb.Snapshot("other-address-refusal")

	// Approved: back to the terminal.
	challengeURL, pollingURL = generate(nil)
	tb.Navigate(challengeURL)
	tb.WaitVisible("#approve")
	tb.Click("#approve")
	tb.WaitText("Return to your terminal")
	tb.Snapshot("success-page")
	if m := call(t, "GET", pollingURL, nil, "").object(t); m["status"] != "success" {
		t.Errorf("poll after the approval: %v", m)
	}
}

// The directive runs before every other route of the site: under web_login
// no handle, handle_path, route or respond block (nor a fallback respond)
// serves a browser without a session; each is sent to sign in instead.
func TestDirectiveOrderGuardsEveryRoute(t *testing.T) {
	w := newOIDCWorld(t, func(s *testbed.Site) {
		s.Auth.WebLogin = &testbed.WebLogin{}
		s.Routes = []testbed.Route{
			{Directive: "handle_path", Path: "/docs/*", Body: "docs-content"},
			{Directive: "handle", Path: "/ops", Body: "ops-content"},
			{Directive: "route", Path: "/status", Body: "status-content"},
			{Directive: "respond", Path: "/ping", Body: "ping-content"},
		}
		s.Upstreams, s.Respond = nil, "fallback-content"
	})
	for _, path := range []string{"/docs/index.html", "/ops", "/status", "/ping", "/anything"} {
		r := call(t, "GET", w.Base+path, nil, "")
		if r.Status != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), w.OP.Issuer) || strings.Contains(string(r.Body), "-content") {
			t.Errorf("GET %s without a session: %s; want a redirect to the provider and no content", path, r)
		}
	}
}
