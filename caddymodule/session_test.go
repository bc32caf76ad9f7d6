package consolemeauth

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/token"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// idpSession mints a browser cookie as the ACS does for a sign-in at the
// IdP at signedIn, last renewed at issued.
func idpSession(t *testing.T, h *Handler, email string, signedIn, issued time.Time) *http.Cookie {
	t.Helper()
	jwt, _, err := h.sessions.codec.MintSubject(token.Subject{
		Email: email, Groups: []string{"eng"}, Method: methodIdP, AuthTime: signedIn,
	}, issued, issued)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Cookie{Name: h.CookieName, Value: jwt}
}

// An over-age session goes back to the IdP before it can approve, and a
// forged approval with it changes nothing.
func TestOverAgeSessionCannotApprove(t *testing.T) {
	h := newWebLoginHandler(t, nil)
	now := time.Now()
	h.now = func() time.Time { return now }
	// Signed in at the IdP 13 hours ago, renewed ten minutes ago.
	old := idpSession(t, h, "alice@example.com", now.Add(-13*time.Hour), now.Add(-10*time.Minute))
	tok := generate(t, h, "alice@example.com", "192.0.2.1")

	r := request("GET", "/challenge_validator/"+tok, "192.0.2.1", nil)
	r.AddCookie(old)
	rec, _ := serve(t, h, r)
	if got := loginReturnPath(t, h, rec); got != "/challenge_validator/"+tok {
		t.Errorf("over-age session: returns to %q, want the challenge", got)
	}

	form := url.Values{"nonce": {"n"}, "csrf_token": {h.csrfToken(tok, "n", "alice@example.com")}}
	r = request("POST", "/challenge_validator/"+tok, "192.0.2.1", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(old)
	if rec, _ := serve(t, h, r); rec.Code != http.StatusUnauthorized {
		t.Errorf("approval with an over-age session: %d, want 401", rec.Code)
	}
	if m := poll(t, h, tok, "192.0.2.1"); m["status"] != "pending" {
		t.Errorf("poll after the refused approval: %v", m)
	}
}

// No chain of approve → collect → use as a browser cookie → approve again
// keeps anyone signed in past max_session_age after their IdP sign-in.
func TestSessionAgeChainEndsAtMaxSessionAge(t *testing.T) {
	h := newWebLoginHandler(t, nil)
	signedIn := time.Now().Add(-11 * time.Hour).Truncate(time.Second)
	now := signedIn.Add(11 * time.Hour)
	h.now = func() time.Time { return now }
	maxAge := time.Duration(h.MaxSessionAge)

	cookie := idpSession(t, h, "alice@example.com", signedIn, now)
	for round := 0; round < 3; round++ {
		tok := generate(t, h, "alice@example.com", "192.0.2.1")
		if rec := approve(t, h, tok, "192.0.2.1", cookie); rec.Code != 200 {
			t.Fatalf("round %d: approval %d %s", round, rec.Code, rec.Body)
		}
		m := poll(t, h, tok, "192.0.2.1")
		jwt, _ := m["encoded_jwt"].(string)
		id, err := h.sessions.codec.Verify(jwt, now)
		if err != nil {
			t.Fatalf("round %d: CLI token: %v", round, err)
		}
		if !id.AuthTime.Equal(signedIn) || id.Method != methodChallenge {
			t.Errorf("round %d: CLI token auth_time %v method %q, want %v and %q", round, id.AuthTime, id.Method, signedIn, methodChallenge)
		}
		if id.Expires.After(signedIn.Add(maxAge)) {
			t.Errorf("round %d: CLI token expires %v, after the session age limit %v", round, id.Expires, signedIn.Add(maxAge))
		}
		// The CLI token, used as a browser cookie, approves the next round.
		cookie = &http.Cookie{Name: h.CookieName, Value: jwt}
		now = now.Add(20 * time.Minute)
	}

	// Within the age limit the CLI token passes web_login ...
	r := request("GET", "/policies", "192.0.2.1", nil)
	r.AddCookie(cookie)
	if _, passed := serve(t, h, r); !passed {
		t.Fatal("a CLI token within max_session_age did not pass web_login")
	}
	// ... and past it (the token is still unexpired by its own exp when
	// the clock is the token's only judge) the IdP is asked again.
	now = signedIn.Add(maxAge + time.Second)
	r = request("GET", "/policies", "192.0.2.1", nil)
	r.AddCookie(cookie)
	rec, passed := serve(t, h, r)
	if passed {
		t.Fatal("a CLI token past max_session_age passed web_login")
	}
	if got := loginReturnPath(t, h, rec); got != "/policies" {
		t.Errorf("returns to %q", got)
	}
}

// A token minted for a client certificate is never a browser session: not
// under web_login, not renewed, and not passed upstream without the
// certificate.
func TestCertificateTokenIsNotABrowserSession(t *testing.T) {
	ca := mtlsCA(t)
	dir := t.TempDir()
	sp := samltest.NewKeyPair(t, dir, "sp")
	md := samltest.NewIdP(t, dir, "idp").MetadataFile(t, dir)
	now := time.Now()
	for _, webLogin := range []bool{false, true} {
		h := mtlsHandler(t, &MTLSConfig{}, now, func(h *Handler) {
			h.SAML = &SAMLConfig{IDPMetadataFile: md, SPCert: sp.CertFile, SPKey: sp.KeyFile}
			if webLogin {
				h.WebLogin = &WebLoginConfig{}
			}
		})
		leaf := ca.leaf(t, now.Add(-time.Hour), func(c *x509.Certificate) { c.EmailAddresses = []string{"o@example.com"} })
		r := mtlsRequest(ca, leaf)
		r.URL.Path = "/api/v1/myheaders"
		passMTLS(t, h, r)
		certToken := forwardedToken(t, r) // as ConsoleMe's /api/v1/myheaders echoes it

		// Replayed from another machine, without the certificate.
		r = request("GET", "/policies", "198.51.100.9", nil)
		r.AddCookie(&http.Cookie{Name: h.CookieName, Value: certToken})
		r.AddCookie(&http.Cookie{Name: "other", Value: "kept"})
		var upstream string
		rec := httptest.NewRecorder()
		passed := false
		err := h.ServeHTTP(rec, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			passed = true
			upstream = r.Header.Get("Cookie")
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(rec.Header().Get("Set-Cookie"), h.CookieName+"=ey") {
			t.Errorf("web_login=%v: the certificate token was renewed into a browser cookie", webLogin)
		}
		if webLogin {
			if passed || rec.Code != http.StatusFound {
				t.Errorf("web_login: a certificate token passed as a browser session (%d)", rec.Code)
			}
			continue
		}
		if !passed || strings.Contains(upstream, certToken) || !strings.Contains(upstream, "other=kept") {
			t.Errorf("without web_login: passed=%v, upstream saw cookies %q; want the certificate token dropped", passed, upstream)
		}
	}
}

// Two sites in one Caddy (one memory store pool) share no challenge: a
// token of one is unknown on the other, and an approval through B cannot
// complete A's challenge.
func TestTwoSitesShareNoChallenges(t *testing.T) {
	a := newTestHandler(t, func(h *Handler) { h.JWTSecret = "secret-of-sandbox" })
	b := newTestHandler(t, func(h *Handler) {
		h.JWTSecret = "secret-of-production"
		h.PublicURL = "https://prod.example.com"
	})
	twoSites(t, a, b)
}

// twoSites checks that a challenge made on a is unknown to b.
func twoSites(t *testing.T, a, b *Handler) {
	t.Helper()
	tok := generate(t, a, "alice@example.com", "192.0.2.1")
	if m := poll(t, b, tok, "192.0.2.1"); m["status"] != "unknown" {
		t.Errorf("site B polls site A's challenge: %v, want unknown", m)
	}
	r := request("GET", "/challenge_validator/"+tok, "192.0.2.1", nil)
	r.AddCookie(sessionCookie(t, b, "alice@example.com"))
	if rec, _ := serve(t, b, r); rec.Code != http.StatusNotFound {
		t.Errorf("site B shows site A's challenge: %d, want 404", rec.Code)
	}
	if _, err := b.states.Get(context.Background(), tok, time.Now()); err == nil {
		t.Error("site B's store holds site A's challenge")
	}
	if m := poll(t, a, tok, "192.0.2.1"); m["status"] != "pending" {
		t.Errorf("site A's own poll: %v, want pending", m)
	}
	// Approved on A, it is collected on A only.
	if rec := approve(t, a, tok, "192.0.2.1", sessionCookie(t, a, "alice@example.com")); rec.Code != 200 {
		t.Fatalf("approval on A: %d", rec.Code)
	}
	if m := poll(t, b, tok, "192.0.2.1"); m["status"] != "unknown" {
		t.Errorf("site B collects site A's approved challenge: %v", m)
	}
	if m := poll(t, a, tok, "192.0.2.1"); m["status"] != "success" {
		t.Errorf("site A: %v, want success", m)
	}
}

// Two sites on one Redis with the default key prefix share nothing either,
// while two instances of one site do.
func TestTwoSitesOnOneRedis(t *testing.T) {
	url := startAttackRedis(t)
	site := func(secret string) func(*Handler) {
		return func(h *Handler) {
			h.JWTSecret = secret
			h.Store = &StoreConfig{Type: "redis", URL: url}
		}
	}
	a := newTestHandler(t, site("secret-of-sandbox"))
	b := newTestHandler(t, site("secret-of-production"))
	twoSites(t, a, b)

	a2 := newTestHandler(t, site("secret-of-sandbox"))
	tok := generate(t, a, "alice@example.com", "192.0.2.1")
	if m := poll(t, a2, tok, "192.0.2.1"); m["status"] != "pending" {
		t.Errorf("a second instance of site A: %v, want pending", m)
	}
}
