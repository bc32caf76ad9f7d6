package integration

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/oidcauth/oidctest"
)

// The tests in this file sign in with OpenID Connect instead of SAML: Caddy
// with an oidc block in front of the stand-in ConsoleMe, a real OpenID
// provider (the certified oidc-provider package, started on loopback by
// oidctest) and Chromium as the browser.

// oidcWorld is one such deployment.
type oidcWorld struct {
	Base     string
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

func newOIDCWorld(t *testing.T, extra ...string) *oidcWorld {
	t.Helper()
	if err := oidctest.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the OpenID provider cannot run: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	port := freePort(t)
	w := &oidcWorld{Base: fmt.Sprintf("http://127.0.0.1:%d", port), Secret: "oidc-" + uuid.NewString()}
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
	block := strings.Join(append([]string{
		"consoleme_auth {",
		"\tjwt_secret " + w.Secret,
		"\tpublic_url " + w.Base,
		"\toidc {",
		"\t\tissuer " + op.Issuer,
		"\t\tclient_id consoleme",
		"\t\tclient_secret oidc-client-secret-for-tests",
		"\t\tgroups_claim groups",
		"\t}",
	}, append(extra, "}")...), "\n")
	w.Caddy = startCaddy(t, siteCaddyfile(port, block, w.Upstream.Addr()))
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
	who := w.Upstream.checkToken(jwt)
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
	w := newOIDCWorld(t, "\tweb_login")
	browser := startChromium(t)
	tb := browser.newTab(t)
	tb.Navigate(w.Base + "/echo/some/page?x=1")
	signInAtProvider(tb, "alice")
	tb.WaitFor("the page asked for", func(loc, text string) bool {
		return strings.HasPrefix(loc, w.Base+"/echo/some/page?x=1") && strings.Contains(text, "consoleme_auth")
	})
	w.expectSignedIn(t, tb, userAlice.Email)

	if err := w.OP.Rotate(oidcKeySet(t, "second")); err != nil {
		t.Fatal(err)
	}
	fresh := browser.newTab(t) // a new browser context: no session anywhere
	fresh.Navigate(w.Base + "/echo/after/rotation")
	signInAtProvider(fresh, "alice")
	fresh.WaitFor("the page after the key rotation", func(loc, text string) bool {
		return strings.HasPrefix(loc, w.Base+"/echo/after/rotation") && strings.Contains(text, "consoleme_auth")
	})
	w.expectSignedIn(t, fresh, userAlice.Email)
}

// expectSignedIn checks the browser's session cookie as ConsoleMe would.
func (w *oidcWorld) expectSignedIn(t *testing.T, tb *tab, email string) {
	t.Helper()
	c := tb.Cookie(w.Base, "consoleme_auth")
	if c == nil {
		t.Fatal("the browser has no consoleme_auth cookie")
	}
	if who := w.Upstream.checkToken(c.Value); who.Verdict != tokenValid || who.Email != email {
		t.Errorf("ConsoleMe sees the browser as %+v, want %s", who, email)
	}
}
