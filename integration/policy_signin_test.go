package integration

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// The group policy holds at every sign-in, not only at the approval: a user
// the policy refuses gets no consoleme_auth cookie from the IdP, and a
// token minted for them before the policy (or by anyone holding the secret)
// is refused by the proxy on Weep's routes and pages alike, so ConsoleMe
// never sees it. One test per sign-in path: SAML and OpenID Connect, each
// with and without web_login.

// weepRoutesOfConsoleMe are the routes Weep calls with its cookie.
var weepRoutesOfConsoleMe = []string{"/api/v1/get_credentials", "/api/v1/get_roles", "/api/v2/get_roles?all=true"}

// expectProxyRefuses checks that each Weep route, called with the token as
// Weep does, gets ConsoleMe's own invalid_jwt answer from the proxy and
// that none of them reached the upstream (count tells how many requests
// the upstream has seen).
func expectProxyRefuses(t *testing.T, base, cookie, token string, upstreamSaw func() int) {
	t.Helper()
	expectProxyRefusesVia(t, func(path string, h http.Header) reply { return call(t, "GET", base+path, h, "") }, cookie, token, upstreamSaw)
}

// expectProxyRefusesVia is expectProxyRefuses with the client get.
func expectProxyRefusesVia(t *testing.T, get func(path string, h http.Header) reply, cookie, token string, upstreamSaw func() int) {
	t.Helper()
	before := upstreamSaw()
	for _, p := range weepRoutesOfConsoleMe {
		r := get(p, http.Header{"Cookie": {cookie + "=" + token}})
		var m map[string]any
		if r.Status != http.StatusForbidden || json.Unmarshal([]byte(r.Body), &m) != nil ||
			m["code"] != "invalid_jwt" || m["message"] != "JWT is invalid or has expired." || m["request_id"] == nil {
			t.Errorf("%s with a refused token: %s, want ConsoleMe's 403 invalid_jwt", p, r)
		}
	}
	if n := upstreamSaw(); n != before {
		t.Errorf("%d requests with a refused token reached ConsoleMe", n-before)
	}
}

func TestGroupPolicyAtSAMLSignIn(t *testing.T) {
	for _, weblogin := range []bool{false, true} {
		t.Run(map[bool]string{false: "challenge", true: "web_login"}[weblogin], func(t *testing.T) {
			e := newEnv(t, func(c *moduleConfig) {
				c.DeniedGroups = []string{"engineering"}
				if weblogin {
					c.WebLogin = &testbed.WebLogin{}
				}
			})
			start := e.generate(t, userAlice.Email, nil).ChallengeURL
			if weblogin {
				start = e.Base + "/api/v2/user_profile"
			}
			b := newBrowser(t)
			hops := samlLogin(t, b, e.IdP, userAlice, start)
			if hops.ACS.Status != http.StatusForbidden || hops.ACS.Cookie(e.cookieName()) != nil ||
				!strings.Contains(hops.ACS.Text(), "administrator") {
				t.Fatalf("a denied user's sign-in: want a 403 page and no cookie, got\n%s", hops.ACS)
			}
			if v := b.CookieValue(e.Base, e.cookieName()); v != "" {
				t.Fatal("the browser holds a session cookie after a refused sign-in")
			}
			if !strings.Contains(e.Caddy.Output(), "group policy: member of a denied group") {
				t.Errorf("no audit line for the refused sign-in:\n%s", e.Caddy.Output())
			}
			// A token minted before the policy changed.
			old := forgeToken(t, "HS256", e.Secret, userAlice, nil)
			expectProxyRefuses(t, e.Base, e.cookieName(), old, func() int { return len(e.upstreamRequests()) })
			// Dave (no groups) is not denied: his sign-in works.
			b2 := newBrowser(t)
			if weblogin {
				samlLogin(t, b2, e.IdP, userDave, e.Base+"/api/v2/user_profile")
			} else {
				e.login(t, b2, userDave, e.generate(t, userDave.Email, nil).ChallengeURL)
			}
			if b2.CookieValue(e.Base, e.cookieName()) == "" {
				t.Error("an allowed user got no session")
			}
		})
	}
}

func TestGroupPolicyAtOIDCSignInInChromium(t *testing.T) {
	for _, weblogin := range []bool{false, true} {
		t.Run(map[bool]string{false: "challenge", true: "web_login"}[weblogin], func(t *testing.T) {
			w := newOIDCWorld(t, func(s *testbed.Site) {
				s.Auth.DeniedGroups = []string{"consoleme-admins"}
				if weblogin {
					s.Auth.WebLogin = &testbed.WebLogin{}
				}
			})
			start := w.Base + "/"
			if !weblogin {
				gen := call(t, "GET", w.Base+"/noauth/v1/challenge_generator/"+userAlice.Email, nil, "").object(t)
				start, _ = gen["challenge_url"].(string)
			}
			tb := startChromium(t).newTab(t)
			tb.Navigate(start)
			signInAtProvider(tb, "alice")
			tb.WaitText("Your groups do not allow access to ConsoleMe")
			if c := tb.Cookie(w.Base, "consoleme_auth"); c != nil {
				t.Fatalf("the browser holds a session cookie after a refused sign-in")
			}
			old := forgeToken(t, "HS256", w.Secret, userAlice, nil)
			expectProxyRefuses(t, w.Base, "consoleme_auth", old, func() int { return len(w.Upstream.Requests()) })
		})
	}
}
