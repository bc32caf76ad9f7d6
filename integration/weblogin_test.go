package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// The tests in this file prove web_login with the same real software as
// realworld_test.go: SimpleSAMLphp as the IdP and Chromium as the browser,
// Caddy over https in front of the real ConsoleMe (behind the recording
// proxy, which shows which cookie reached it). With web_login the
// module guards every ConsoleMe page, not only the challenge page, so what
// matters is where the browser ends up, which cookie ConsoleMe receives,
// and which requests the module must leave to ConsoleMe.

// webLoginPage is the ConsoleMe page the browser asks for first: ConsoleMe's
// own profile API, which answers with the signed-in user (ConsoleMe ignores
// the query, which proves that the module returns to the whole request URI,
// not only the path).
const webLoginPage = "/api/v2/user_profile?x=1"

// webLoginWorld is a realWorld deployment with web_login switched on and
// /healthcheck public.
type webLoginWorld struct {
	*realWorld
}

func newWebLoginWorld(t *testing.T) *webLoginWorld {
	t.Helper()
	rw := newRealWorld(t, realWorldSetup{Module: func(m *moduleConfig) {
		m.WebLogin = &testbed.WebLogin{PublicPaths: []string{"/healthcheck"}}
	}})
	if !strings.Contains(rw.Caddy.Config, "web_login {") {
		t.Fatalf("the Caddyfile has no web_login block:\n%s", rw.Caddy.Config)
	}
	return &webLoginWorld{rw}
}

// send makes one request with a body as a CLI does: no cookies unless
// header names one, no redirects followed.
func (w *webLoginWorld) send(t testing.TB, method, path string, header http.Header, body string) reply {
	t.Helper()
	return w.cliBody(t, method, w.Base+path, header, body)
}

// upstreamSaw counts the requests ConsoleMe received for exactly this
// method and request URI.
func (w *webLoginWorld) upstreamSaw(method, requestURI string) int {
	return w.Real.Saw(method, requestURI)
}

// loginRedirectURL is the redirect_url the module's 403 JSON must name for
// a request to requestURI.
func (w *webLoginWorld) loginRedirectURL(requestURI string) string {
	return w.Base + "/saml/login?return_to=" + url.QueryEscape(requestURI)
}

// userOnPage reads the user that ConsoleMe's /api/v2/user_profile names
// on the page the browser shows. Chromium shows a JSON document as text in
// a <pre> (with a pretty-print control around it in some versions), so the
// <pre> is read when there is one.
func (w *webLoginWorld) userOnPage(tb *tab) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStepTimeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`(() => { const p = document.querySelector("pre"); return p ? p.textContent : (document.body ? document.body.innerText : ""); })()`))
	if err != nil {
		tb.fail("reading the page: %v", err)
	}
	var profile struct {
		User string `json:"user"`
	}
	if err := json.Unmarshal([]byte(raw), &profile); err != nil {
		tb.fail("the page is not ConsoleMe's user profile (%v):\n%s", err, excerpt(raw, 1500))
	}
	return profile.User
}

// sessionCookiesTo returns the values of the session cookies that the last
// request ConsoleMe received for requestURI carried.
func (w *webLoginWorld) sessionCookiesTo(t testing.TB, requestURI string) []string {
	t.Helper()
	var last *upstreamRequest
	for _, r := range w.Real.Requests() {
		if r.Method == http.MethodGet && r.RequestURI == requestURI {
			r := r
			last = &r
		}
	}
	if last == nil {
		t.Fatalf("ConsoleMe never received GET %s", requestURI)
	}
	req := http.Request{Header: last.Header}
	var values []string
	for _, c := range req.Cookies() {
		if c.Name == w.cookieName() {
			values = append(values, c.Value)
		}
	}
	return values
}

// expectAcceptedCookie checks that the page the browser shows is
// ConsoleMe's answer to GET requestURI naming user, that this request
// carried exactly one session cookie, the one in the browser's store, and
// that ConsoleMe maps that cookie to user's roles. It returns the cookie's
// value.
func (w *webLoginWorld) expectAcceptedCookie(tb *tab, requestURI string, user idpUser) string {
	tb.t.Helper()
	t := tb.t
	if got := w.userOnPage(tb); got != user.Email {
		t.Errorf("ConsoleMe's profile page names %q, want %s", got, user.Email)
	}
	values := w.sessionCookiesTo(t, requestURI)
	if len(values) != 1 {
		tb.fail("the request ConsoleMe received carried %d %s cookies, want 1", len(values), w.cookieName())
	}
	ck := tb.Cookie(w.Base, w.cookieName())
	if ck == nil {
		tb.fail("the browser's cookie store holds no %s cookie for %s", w.cookieName(), w.Base)
	}
	if ck.Value != values[0] {
		t.Errorf("ConsoleMe received a %s cookie other than the one in the browser's store", w.cookieName())
	}
	w.upstreamAccepts(t, values[0], user)
	return values[0]
}

// hasElement reports whether the page shown now has an element matching
// the CSS selector; while the browser moves between pages it reports false.
func hasElement(tb *tab, sel string) bool {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`!!document.querySelector(%q)`, sel)))
	return err == nil && ok
}

// TestWebLogin walks web_login in Chromium against SimpleSAMLphp: a
// ConsoleMe page without a session goes through the IdP and back to the
// same page with the session cookie, a second page goes straight to
// ConsoleMe, ConsoleMe's JavaScript without a cookie gets ConsoleMe's 403
// redirect JSON, the Weep API and CLI routes are never redirected, and
// logout clears the session and revokes its token.
func TestWebLogin(t *testing.T) {
	t.Parallel()
	skipIfShort(t)
	browser := startChromium(t)
	w := newWebLoginWorld(t)
	tb := browser.newTab(t)
	pageURL := w.Base + webLoginPage

	loggedIn := false
	t.Run("page-login-returns-to-the-page", func(t *testing.T) {
		tb.t = t
		before := time.Now()
		w.signInAtIdP(tb, userAlice, pageURL)
		tb.WaitFor("a page of ConsoleMe's site after the ACS", func(loc, text string) bool {
			return hostOf(loc) == hostOf(w.Base) && text != ""
		})
		acs := w.acsPost(tb)
		if acs.resp.Status != http.StatusSeeOther && acs.resp.Status != http.StatusFound {
			tb.fail("the ACS answered %d, want a redirect back to the page; Caddy logged:\n%s",
				acs.resp.Status, logLines(w.Caddy.Output(), "SAML login"))
		}
		if loc := acs.resp.Location; loc != webLoginPage && loc != pageURL {
			t.Errorf("the ACS redirects to %q, want the page asked for, %s", loc, webLoginPage)
		}
		tb.Snapshot("page-after-login")
		if loc := tb.Location(); loc != pageURL {
			tb.fail("after the login the browser is at %s, want exactly %s", loc, pageURL)
		}
		// The way there: the page, the IdP, and the IdP's page POSTing to
		// the ACS, cross-site as in production.
		reqs := tb.Requests()
		if len(reqs) == 0 || reqs[0].Method != http.MethodGet || reqs[0].URL != pageURL {
			t.Errorf("the browser's first request was not GET %s:\n%s", pageURL, tb.NavigationLog())
		}
		if !postedFrom(reqs, w.Base+"/saml/acs", hostOf(w.SSP.URL)) {
			t.Errorf("the POST to the ACS did not come from the IdP's page:\n%s", tb.NavigationLog())
		}
		var first docResponse
		for _, d := range tb.Documents() {
			if d.Method == http.MethodGet && d.URL == pageURL {
				first = d
				break
			}
		}
		if first.Status != http.StatusFound && first.Status != http.StatusSeeOther {
			t.Errorf("the first GET %s was answered %d, want a redirect to the IdP", pageURL, first.Status)
		} else if !strings.HasPrefix(first.Location, w.SSP.SSOURL+"?") {
			t.Errorf("the first GET %s redirects to %q, want the IdP's SSO service %s", pageURL, first.Location, w.SSP.SSOURL)
		}

		value := w.expectAcceptedCookie(tb, webLoginPage, userAlice)
		w.checkJWT(t, value, userAlice, before)
		ck := tb.Cookie(w.Base, w.cookieName())
		if !ck.HTTPOnly || !ck.Secure || ck.SameSite != network.CookieSameSiteLax || ck.Path != "/" {
			t.Errorf("session cookie: HttpOnly=%v Secure=%v SameSite=%q Path=%q, want HttpOnly, Secure, Lax, /",
				ck.HTTPOnly, ck.Secure, ck.SameSite, ck.Path)
		}
		if life := time.Until(time.Unix(int64(ck.Expires), 0)); life < 59*time.Minute || life > 61*time.Minute {
			t.Errorf("session cookie expires in %v, want jwt_expiration (1h)", life)
		}
		// The visit without a session was answered by the module alone:
		// ConsoleMe saw the page once, with the cookie.
		if n := w.upstreamSaw(http.MethodGet, webLoginPage); n != 1 {
			t.Errorf("ConsoleMe received GET %s %d times, want once (only after the login)", webLoginPage, n)
		}
		loggedIn = !t.Failed()
	})

	t.Run("second-page-without-idp", func(t *testing.T) {
		if !loggedIn {
			t.Skip("needs the browser session of page-login-returns-to-the-page")
		}
		tb.t = t
		const page = "/api/v2/user_profile?y=2&z=%2F"
		seen := len(tb.Requests())
		tb.Navigate(w.Base + page)
		if loc := tb.Location(); loc != w.Base+page {
			tb.fail("the browser is at %s, want %s", loc, w.Base+page)
		}
		for _, r := range tb.Requests()[seen:] {
			if hostOf(r.URL) != hostOf(w.Base) || strings.HasPrefix(r.URL, w.Base+"/saml/") {
				t.Errorf("with a session the browser still went to %s %s:\n%s", r.Method, r.URL, tb.NavigationLog())
			}
		}
		if d := tb.WaitDocument(http.MethodGet, w.Base+page); d.Status != http.StatusOK {
			t.Errorf("GET %s was answered %d, want ConsoleMe's 200", page, d.Status)
		}
		w.expectAcceptedCookie(tb, page, userAlice)
	})

	t.Run("xhr-without-cookie-gets-403-json", func(t *testing.T) {
		const api = "/api/v2/user_profile"
		reachedBefore := w.upstreamSaw(http.MethodGet, api)
		want := map[string]any{
			"type":         "redirect",
			"redirect_url": w.loginRedirectURL(api),
			"reason":       "unauthenticated",
		}
		check := func(t *testing.T, status int, contentType string, body []byte) {
			t.Helper()
			if status != http.StatusForbidden || !strings.HasPrefix(contentType, "application/json") {
				t.Fatalf("want 403 application/json, got %d %q: %s", status, contentType, body)
			}
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("the 403 is not JSON: %v: %s", err, body)
			}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("%s = %v, want %v (answer %s)", k, m[k], v, body)
				}
			}
			if msg, _ := m["message"].(string); msg == "" {
				t.Errorf("the 403 JSON has no message: %s", body)
			}
		}
		for name, h := range map[string]http.Header{
			"x-requested-with": {"X-Requested-With": {"XMLHttpRequest"}},
			"accept-json":      {"Accept": {"application/json"}},
		} {
			t.Run(name, func(t *testing.T) {
				r := w.cli(t, http.MethodGet, w.Base+api, h)
				check(t, r.Status, r.Header.Get("Content-Type"), r.Body)
			})
		}

		// ConsoleMe's JavaScript: fetch() from a page of the site in a
		// browser without a session. /healthcheck is public, so the tab
		// can stand on the origin without logging in.
		fresh := browser.newTab(t)
		fresh.Navigate(w.Base + "/healthcheck")
		if loc := fresh.Location(); loc != w.Base+"/healthcheck" {
			fresh.fail("the public /healthcheck led to %s", loc)
		}
		if ck := fresh.Cookie(w.Base, w.cookieName()); ck != nil {
			fresh.fail("a fresh browser context holds a %s cookie", w.cookieName())
		}
		ctx, cancel := context.WithTimeout(fresh.ctx, browserStepTimeout)
		defer cancel()
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch(`+fmt.Sprintf("%q", api)+`, {headers: {"X-Requested-With": "XMLHttpRequest"}})
			.then(async r => JSON.stringify({status: r.status, type: r.headers.get("Content-Type"), redirected: r.redirected, body: await r.text()}))`,
			chromedp.EvalAwaitPromise))
		if err != nil {
			fresh.fail("fetch(%s): %v", api, err)
		}
		var got struct {
			Status     int
			Type       string
			Redirected bool
			Body       string
		}
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			t.Fatalf("fetch result %q: %v", raw, err)
		}
		t.Run("chromium-fetch", func(t *testing.T) {
			if got.Redirected {
				t.Errorf("fetch() was redirected")
			}
			check(t, got.Status, got.Type, []byte(got.Body))
		})

		if n := w.upstreamSaw(http.MethodGet, api) - reachedBefore; n != 0 {
			t.Errorf("ConsoleMe received GET %s %d times without a session", api, n)
		}

		// The redirect_url starts the SAML login, as ConsoleMe's UI
		// expects when it follows it.
		r := w.cli(t, http.MethodGet, w.loginRedirectURL(api), nil)
		if loc := r.Header.Get("Location"); r.Status != http.StatusFound || !strings.HasPrefix(loc, w.SSP.SSOURL+"?") {
			t.Errorf("GET redirect_url: want 302 to %s, got %s", w.SSP.SSOURL, r)
		} else if u, err := url.Parse(loc); err != nil || u.Query().Get("SAMLRequest") == "" {
			t.Errorf("GET redirect_url redirects to %s without a SAMLRequest", loc)
		}
	})

	t.Run("weep-and-cli-routes-never-redirected", func(t *testing.T) {
		// ConsoleMe's own answer without a cookie (BaseJSONHandler's
		// HTTPError(403)), which only ConsoleMe produces.
		problem := map[string]any{"status": json.Number("403"), "title": "Forbidden", "message": "Forbidden"}
		expectProblem := func(t *testing.T, what string, r reply) {
			t.Helper()
			if r.Status != http.StatusForbidden || r.Header.Get("Content-Type") != "application/problem+json" ||
				r.Header.Get("Location") != "" {
				t.Fatalf("%s: want ConsoleMe's 403 application/problem+json, got %s", what, r)
			}
			if m := r.object(t); !reflect.DeepEqual(m, problem) {
				t.Errorf("%s: body %s, want ConsoleMe's problem JSON %v", what, r.Body, problem)
			}
		}
		const roles = "/api/v2/get_roles?all=true"
		for _, h := range []http.Header{
			// As Weep sends it.
			{"Content-Type": {"application/json"}, "User-Agent": {"weep/integration Go-http-client/1.1"}},
			// As a browser's address bar would, and as ConsoleMe's
			// JavaScript would: neither may turn into the module's answer.
			{"Accept": {"text/html,application/xhtml+xml"}},
			{"X-Requested-With": {"XMLHttpRequest"}, "Accept": {"application/json"}},
		} {
			before := w.upstreamSaw(http.MethodGet, roles)
			expectProblem(t, fmt.Sprintf("GET %s %v", roles, h), w.cli(t, http.MethodGet, w.Base+roles, h))
			if w.upstreamSaw(http.MethodGet, roles) != before+1 {
				t.Errorf("GET %s %v did not reach ConsoleMe", roles, h)
			}
		}

		const creds = "/api/v1/get_credentials"
		body := fmt.Sprintf(`{"requested_role":%q,"no_ip_restrictions":false}`, testbed.Role(userAlice.Groups[0]))
		before := w.upstreamSaw(http.MethodPost, creds)
		expectProblem(t, "POST "+creds, w.send(t, http.MethodPost, creds,
			http.Header{"Content-Type": {"application/json"}}, body))
		if w.upstreamSaw(http.MethodPost, creds) != before+1 {
			t.Errorf("POST %s did not reach ConsoleMe", creds)
		}

		// An invalid cookie is ConsoleMe's to refuse as well.
		r := w.cli(t, http.MethodGet, w.Base+roles, http.Header{
			"Cookie": {w.cookieName() + "=not-a-jwt"}, "Content-Type": {"application/json"},
		})
		if r.Status != http.StatusForbidden || r.object(t)["code"] != "invalid_jwt" {
			t.Errorf("GET %s with an invalid cookie: want ConsoleMe's 403 invalid_jwt, got %s", roles, r)
		}

		// The CLI's own route still works without a session.
		c := w.generate(t, userAlice.Email)
		w.expectPending(t, c)

		// The configured public path reaches ConsoleMe, which answers its
		// health check; a path that only starts like it does not.
		before = w.upstreamSaw(http.MethodGet, "/healthcheck")
		r = w.cli(t, http.MethodGet, w.Base+"/healthcheck", nil)
		if r.Status != http.StatusOK || r.Header.Get("Location") != "" {
			t.Errorf("GET /healthcheck: want ConsoleMe's own 200, got %s", r)
		}
		if w.upstreamSaw(http.MethodGet, "/healthcheck") != before+1 {
			t.Errorf("GET /healthcheck did not reach ConsoleMe")
		}
		r = w.cli(t, http.MethodGet, w.Base+"/healthcheck-private", nil)
		if loc := r.Header.Get("Location"); r.Status != http.StatusFound || !strings.HasPrefix(loc, w.SSP.SSOURL+"?") {
			t.Errorf("GET /healthcheck-private is not public and must go to the IdP, got %s", r)
		}
		w.expectNoLeaks(t)
	})

	t.Run("logout-clears-the-session", func(t *testing.T) {
		if !loggedIn {
			t.Skip("needs the browser session of page-login-returns-to-the-page")
		}
		tb.t = t
		signedIn := tb.Cookie(w.Base, w.cookieName())
		if signedIn == nil {
			tb.fail("no %s cookie before logging out", w.cookieName())
		}
		logoutURL := w.Base + "/logout"
		tb.Navigate(logoutURL)
		out := tb.WaitDocument(http.MethodGet, logoutURL)
		tb.Snapshot("after-logout")
		switch out.Status {
		case http.StatusFound, http.StatusSeeOther:
			// The IdP's single-logout service, which the metadata of
			// SimpleSAMLphp names.
			if hostOf(out.Location) != hostOf(w.SSP.URL) || !strings.Contains(out.Location, "SAMLRequest=") {
				t.Errorf("/logout redirects to %q, want the IdP's single-logout service with a LogoutRequest", out.Location)
			}
		case http.StatusOK:
			if text := tb.Text(); !strings.Contains(text, "Signed out") {
				t.Errorf("the logout page says:\n%s", text)
			}
		default:
			t.Errorf("/logout was answered %d", out.Status)
		}
		// The IdP ends its session and sends the browser back to the
		// module's single-logout endpoint, which says so.
		tb.WaitFor("the module's signed-out page", func(loc, text string) bool {
			return strings.HasPrefix(loc, w.Base+"/saml/slo") && strings.Contains(text, "signed out")
		})
		if ck := tb.Cookie(w.Base, w.cookieName()); ck != nil {
			tb.fail("the browser still holds a %s cookie after /logout (expires %v)", w.cookieName(),
				time.Unix(int64(ck.Expires), 0))
		}
		if n := w.upstreamSaw(http.MethodGet, "/logout"); n != 0 {
			t.Errorf("ConsoleMe received GET /logout %d times; the module must answer it", n)
		}
		// The sign-out revoked the session: the old token, replayed (a
		// copy from before the sign-out), is refused at the proxy.
		expectProxyRefusesVia(t, func(path string, h http.Header) reply { return w.send(t, "GET", path, h, "") },
			w.cookieName(), signedIn.Value, func() int { return len(w.Real.Requests()) })

		// The page again: without the cookie the module sends the browser
		// to the IdP, which either asks for the password again or, with
		// its own session still alive, answers at once.
		seen := len(tb.Requests())
		before := time.Now()
		tb.Navigate(pageURL)
		onForm := false
		tb.WaitFor("the page or the IdP's login form", func(loc, text string) bool {
			if loc == pageURL && strings.Contains(text, userAlice.Email) {
				return true
			}
			onForm = hostOf(loc) == hostOf(w.SSP.URL) && hasElement(tb, "#username")
			return onForm
		})
		if onForm {
			t.Logf("the IdP asked for the password again: its session ended with the logout")
			tb.Type("#username", userAlice.Name)
			tb.Type("#password", userAlice.Password)
			tb.Click("#submit_button")
			tb.WaitFor("the page after the second login", func(loc, text string) bool {
				return loc == pageURL && strings.Contains(text, userAlice.Email)
			})
		} else {
			t.Logf("the IdP still had a session and answered without asking for the password")
		}
		after := tb.Requests()[seen:]
		viaIdP := false
		for _, r := range after {
			if hostOf(r.URL) == hostOf(w.SSP.URL) {
				viaIdP = true
			}
		}
		if !viaIdP || !postedFrom(after, w.Base+"/saml/acs", hostOf(w.SSP.URL)) {
			t.Errorf("after the logout the page did not go through the IdP and the ACS:\n%s", tb.NavigationLog())
		}
		value := w.expectAcceptedCookie(tb, webLoginPage, userAlice)
		w.checkJWT(t, value, userAlice, before)
	})
}
