package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The sessions page in Chromium, against SimpleSAMLphp and the real
// ConsoleMe: two browsers of one user (two tabs with their own cookies)
// and a CLI token from the challenge flow; "Sign out everywhere else" in
// the first browser ends the second browser's session and the CLI token
// at the proxy, while the first keeps working; a form another site posts
// changes nothing.

// weepRolesURI is a Weep route the checks call with a token as its cookie.
const weepRolesURI = "/api/v2/get_roles?sessions-page=1"

// evalString runs JavaScript in the tab and returns its string result.
func evalString(tb *tab, js string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		tb.fail("evaluating %s: %v", excerpt(js, 80), err)
	}
	return v
}

// sessionRows counts the rows of the sessions page the tab shows.
func sessionRows(tb *tab) int {
	tb.t.Helper()
	var n int
	fmt.Sscan(evalString(tb, `String(document.querySelectorAll("tr.session").length)`), &n)
	return n
}

// signInToSessions opens /sessions in a browser without a session, signs
// in at SimpleSAMLphp and expects to come back to the page.
func (rw *realWorld) signInToSessions(tb *tab, user string) string {
	tb.t.Helper()
	rw.signInAtIdP(tb, userAlice, rw.Base+"/sessions")
	tb.WaitFor("the sessions page after the sign-in", func(loc, text string) bool {
		return loc == rw.Base+"/sessions" && strings.Contains(text, "Your sessions")
	})
	if got := evalString(tb, `document.getElementById("user").textContent`); got != user {
		tb.fail("the sessions page names %q, want %s", got, user)
	}
	ck := tb.Cookie(rw.Base, rw.cookieName())
	if ck == nil {
		tb.fail("no %s cookie after the sign-in", rw.cookieName())
	}
	return ck.Value
}

// weepWith calls a Weep route with token as its cookie and reports the
// answer and whether ConsoleMe received the call.
func (rw *realWorld) weepWith(t *testing.T, token string) (reply, bool) {
	t.Helper()
	before := rw.Real.Saw(http.MethodGet, weepRolesURI)
	h := cookieHeader(rw.cookieName(), token)
	h.Set("Content-Type", "application/json")
	r := rw.cli(t, http.MethodGet, rw.Base+weepRolesURI, h)
	return r, rw.Real.Saw(http.MethodGet, weepRolesURI) > before
}

// expectRefusedAtProxy checks that a token gets ConsoleMe's invalid_jwt
// answer from the proxy, and that ConsoleMe never saw the call.
func (rw *realWorld) expectRefusedAtProxy(t *testing.T, what, token string) {
	t.Helper()
	r, reached := rw.weepWith(t, token)
	if reached {
		t.Errorf("%s: the call reached ConsoleMe", what)
	}
	if r.Status != http.StatusForbidden || r.object(t)["code"] != "invalid_jwt" {
		t.Errorf("%s: want ConsoleMe's 403 invalid_jwt from the proxy, got %s", what, r)
	}
}

func TestSessionsPageInChromium(t *testing.T) {
	t.Parallel()
	skipIfShort(t)
	browser := startChromium(t)
	rw := newRealWorld(t, realWorldSetup{})
	a, b := browser.newTab(t), browser.newTab(t)

	// Two browsers of alice, each signed in at the IdP from /sessions.
	tokenA := rw.signInToSessions(a, userAlice.Email)
	tokenB := rw.signInToSessions(b, userAlice.Email)
	if tokenA == tokenB {
		t.Fatal("the two browsers share one session")
	}

	// A CLI token, approved in the second browser; the success page
	// links to the sessions page.
	c := rw.generate(t, userAlice.Email)
	b.Navigate(c.ChallengeURL)
	approvedAfter := rw.approve(b, userAlice, c)
	cli := rw.collect(t, c, userAlice, approvedAfter).EncodedJWT
	b.Click("#more")
	b.WaitFor("the sessions page from the success page's link", func(loc, text string) bool {
		return loc == rw.Base+"/sessions" && strings.Contains(text, "Your sessions")
	})
	if n := sessionRows(b); n != 3 {
		b.fail("the sessions page lists %d sessions, want 3 (two browsers, one CLI token)", n)
	}
	for what, tok := range map[string]string{"browser A": tokenA, "browser B": tokenB, "CLI token": cli} {
		if r, reached := rw.weepWith(t, tok); !reached || r.Status != http.StatusOK {
			t.Fatalf("%s before the sign-out: want ConsoleMe's 200, got %s (reached ConsoleMe: %v)", what, r, reached)
		}
	}

	// Another site's form, with the page's own CSRF token, posted from
	// the IdP's origin (another site): nothing changes.
	a.Navigate(rw.Base + "/sessions")
	csrf := evalString(a, `document.querySelector("input[name=csrf_token]").value`)
	a.Navigate(rw.SSP.URL + "/")
	a.WaitFor("a page of the other site", func(loc, _ string) bool { return hostOf(loc) == hostOf(rw.SSP.URL) })
	evalString(a, fmt.Sprintf(`(() => { const f = document.createElement("form"); f.method = "POST"; f.action = %q;
		for (const [k, v] of [["csrf_token", %q], ["action", "others"]]) {
			const i = document.createElement("input"); i.type = "hidden"; i.name = k; i.value = v; f.appendChild(i); }
		document.body.appendChild(f); f.submit(); return "posted"; })()`, rw.Base+"/sessions", csrf))
	cross := a.WaitDocument(http.MethodPost, rw.Base+"/sessions")
	if cross.Status != http.StatusForbidden {
		t.Errorf("the cross-site POST was answered %d, want the module's 403", cross.Status)
	}
	// The same post with browser A's cookie, as a browser without
	// SameSite would send it: the module refuses the origin itself.
	form := url.Values{"csrf_token": {csrf}, "action": {"others"}}.Encode()
	for name, h := range map[string]http.Header{
		"cross-site":     {"Sec-Fetch-Site": {"cross-site"}, "Origin": {rw.SSP.URL}},
		"foreign origin": {"Origin": {rw.SSP.URL}},
	} {
		h.Set("Cookie", rw.cookieName()+"="+tokenA)
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		if r := rw.cliBody(t, http.MethodPost, rw.Base+"/sessions", h, form); r.Status != http.StatusForbidden {
			t.Errorf("%s POST with the session cookie: want 403, got %s", name, r)
		}
	}
	// The module refuses the origin before it looks for a session (403);
	// a 401 would mean the browser kept its Lax cookie back and the
	// origin went unchecked. Either way, nothing may have changed:
	for what, tok := range map[string]string{"browser B": tokenB, "CLI token": cli} {
		if r, reached := rw.weepWith(t, tok); !reached || r.Status != http.StatusOK {
			t.Fatalf("%s after the cross-site POST: want ConsoleMe's 200, got %s", what, r)
		}
	}

	// "Sign out everywhere else" in browser A.
	a.Navigate(rw.Base + "/sessions")
	if n := sessionRows(a); n != 3 {
		a.fail("the sessions page lists %d sessions, want 3", n)
	}
	a.Click("#others")
	a.WaitFor("the sessions page after signing out everywhere else", func(loc, text string) bool {
		return loc == rw.Base+"/sessions?done=others" && strings.Contains(text, "Every other session was signed out")
	})
	a.Snapshot("signed-out-everywhere-else")
	if n := sessionRows(a); n != 1 {
		a.fail("after signing out everywhere else the page lists %d sessions, want 1", n)
	}
	rw.expectRefusedAtProxy(t, "browser B's token", tokenB)
	rw.expectRefusedAtProxy(t, "the CLI token", cli)
	if r, reached := rw.weepWith(t, tokenA); !reached || r.Status != http.StatusOK {
		t.Errorf("browser A after signing out everywhere else: want ConsoleMe's 200, got %s", r)
	}
	rw.upstreamAccepts(t, tokenA, userAlice)

	// Browser B's next page load: the proxy clears its cookie and never
	// hands the token to ConsoleMe.
	page := rw.Base + "/api/v2/user_profile?sessions-page=b"
	b.Navigate(page)
	b.WaitDocument(http.MethodGet, page)
	if ck := b.Cookie(rw.Base, rw.cookieName()); ck != nil && ck.Value == tokenB {
		t.Errorf("browser B still holds its ended session's cookie")
	}
	for _, r := range rw.Real.Requests() {
		if strings.Contains(r.Header.Get("Cookie"), tokenB) && r.RequestURI == page[len(rw.Base):] {
			t.Errorf("ConsoleMe received browser B's ended token")
		}
	}
}
