package consolemeauth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// sid is the session id of a session cookie.
func sid(t *testing.T, h *Handler, c *http.Cookie) string {
	t.Helper()
	id, err := h.sessions.codec.Verify(c.Value, time.Now())
	if err != nil || id.SessionID == "" {
		t.Fatalf("cookie without a session id: %v", err)
	}
	return id.SessionID
}

// sessionsPageOf loads /sessions with c as a same-origin navigation.
func sessionsPageOf(t *testing.T, h *Handler, c *http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	r := request("GET", "/sessions", "192.0.2.1", nil)
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if c != nil {
		r.AddCookie(c)
	}
	rec, passed := serve(t, h, r)
	if passed {
		t.Fatal("/sessions was passed to the upstream")
	}
	return rec
}

var csrfFieldRE = regexp.MustCompile(`name="csrf_token" value="([0-9a-f]+)"`)

// sessionsCSRFOf reads the CSRF token of the page c is shown.
func sessionsCSRFOf(t *testing.T, h *Handler, c *http.Cookie) string {
	t.Helper()
	rec := sessionsPageOf(t, h, c)
	m := csrfFieldRE.FindStringSubmatch(rec.Body.String())
	if rec.Code != 200 || m == nil {
		t.Fatalf("sessions page: %d %s", rec.Code, rec.Body)
	}
	return m[1]
}

// postSessions posts the page's form as c, same-origin unless hdr says
// otherwise.
func postSessions(t *testing.T, h *Handler, c *http.Cookie, form url.Values, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := request("POST", "/sessions", "192.0.2.1", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", "https://consoleme.example.com")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	if c != nil {
		r.AddCookie(c)
	}
	rec, passed := serve(t, h, r)
	if passed {
		t.Fatal("a POST to /sessions was passed to the upstream")
	}
	return rec
}

// cliToken approves a challenge with the browser session c and collects
// its token as Weep does; it returns the token as Weep's cookie.
func cliToken(t *testing.T, h *Handler, user string, c *http.Cookie) *http.Cookie {
	t.Helper()
	tok := generate(t, h, user, "192.0.2.1")
	if rec := approve(t, h, tok, "192.0.2.1", c); rec.Code != 200 {
		t.Fatalf("approve: %d %s", rec.Code, rec.Body)
	}
	m := poll(t, h, tok, "192.0.2.1")
	jwt, _ := m["encoded_jwt"].(string)
	if m["status"] != "success" || jwt == "" {
		t.Fatalf("collecting: %v", m)
	}
	return &http.Cookie{Name: h.CookieName, Value: jwt}
}

// works reports whether a Weep call with c reaches the upstream.
func works(t *testing.T, h *Handler, c *http.Cookie) bool {
	t.Helper()
	_, passed := serve(t, h, withCookie("/api/v1/get_credentials", c))
	return passed
}

// The page lists the user's own sessions, browser and CLI, marks this
// browser's, and shows nobody else's.
func TestSessionsPageListsOwnSessions(t *testing.T) {
	h := newWebLoginHandler(t, nil)
	a := issued(t, h, "alice@example.com", "eng")
	b := issued(t, h, "alice@example.com", "eng")
	cli := cliToken(t, h, "alice@example.com", a)
	bob := issued(t, h, "bob@example.com", "eng")

	rec := sessionsPageOf(t, h, a)
	body := rec.Body.String()
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, body)
	}
	for _, hdr := range [][2]string{{"Cache-Control", "no-store"}, {"Content-Security-Policy", pageCSP}, {"X-Frame-Options", "DENY"}} {
		if got := rec.Header().Get(hdr[0]); got != hdr[1] {
			t.Errorf("%s = %q, want %q", hdr[0], got, hdr[1])
		}
	}
	if n := strings.Count(body, `class="session"`); n != 3 {
		t.Errorf("%d rows, want 3 (two browsers, one CLI token):\n%s", n, body)
	}
	if !strings.Contains(body, `value="`+sid(t, h, b)+`"`) || !strings.Contains(body, `value="`+sid(t, h, cli)+`"`) {
		t.Error("another browser or the CLI token is not offered a sign-out")
	}
	if strings.Contains(body, sid(t, h, bob)) {
		t.Error("another user's session is listed")
	}
	if strings.Count(body, `id="current"`) != 1 || strings.Contains(body, `name="session" value="`+sid(t, h, a)+`"`) {
		t.Error("this browser's session is not marked, or is offered as one to end (it has /logout)")
	}
	for _, want := range []string{"Browser sign-in", "Command-line token", "192.0.2.1", `href="/logout"`, `id="others"`, "alice@example.com"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Another site may load the page (it shows the user's own data).
	r := request("GET", "/sessions", "192.0.2.1", nil)
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	r.AddCookie(a)
	if rec, _ := serve(t, h, r); rec.Code != 200 {
		t.Errorf("cross-site GET: %d", rec.Code)
	}
}

// "Sign out" ends one of the user's own sessions; the others keep working.
func TestSessionsPageEndsOwnSession(t *testing.T) {
	h := newWebLoginHandler(t, nil)
	a := issued(t, h, "alice@example.com")
	b := issued(t, h, "alice@example.com")
	rec := postSessions(t, h, a, url.Values{"csrf_token": {sessionsCSRFOf(t, h, a)}, "action": {"end"}, "session": {sid(t, h, b)}}, nil)
	done := rec.Header().Get("Location")
	if rec.Code != http.StatusSeeOther || done != "/sessions?done=end" {
		t.Fatalf("end: %d %s %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	rec, passed := serve(t, h, withCookie("/api/v1/get_roles", b))
	expectInvalidJWT(t, rec, passed, "the ended session")
	if !works(t, h, a) {
		t.Error("the browser that ended another session was signed out")
	}
	back := withCookie(done, a)
	back.Header.Set("Sec-Fetch-Site", "same-origin")
	rec, _ = serve(t, h, back)
	page := rec.Body.String()
	if strings.Count(page, `class="session"`) != 1 || !strings.Contains(page, `id="notice"`) {
		t.Errorf("after ending one: %s", page)
	}
}

// Another user's session id cannot be ended through the page: 404, no
// change, and nothing tells it apart from an unknown id.
func TestSessionsPageCannotEndAnotherUsersSession(t *testing.T) {
	h := newWebLoginHandler(t, nil)
	a := issued(t, h, "alice@example.com")
	bob := issued(t, h, "bob@example.com")
	csrf := sessionsCSRFOf(t, h, a)
	theirs := postSessions(t, h, a, url.Values{"csrf_token": {csrf}, "action": {"end"}, "session": {sid(t, h, bob)}}, nil)
	unknown := postSessions(t, h, a, url.Values{"csrf_token": {csrf}, "action": {"end"}, "session": {newSessionID()}}, nil)
	if theirs.Code != http.StatusNotFound || unknown.Code != http.StatusNotFound || theirs.Body.String() != unknown.Body.String() {
		t.Errorf("another user's session: %d, an unknown one: %d", theirs.Code, unknown.Code)
	}
	if !works(t, h, bob) {
		t.Fatal("alice ended bob's session")
	}
	if rec := postSessions(t, h, a, url.Values{"csrf_token": {csrf}, "action": {"end"}, "session": {"../x"}}, nil); rec.Code != 400 {
		t.Errorf("malformed id: %d", rec.Code)
	}
	if rec := postSessions(t, h, a, url.Values{"csrf_token": {csrf}, "action": {"drop"}}, nil); rec.Code != 400 {
		t.Errorf("unknown action: %d", rec.Code)
	}
}

// "Sign out everywhere else" ends the user's other browser sessions and
// their CLI token, while this browser stays signed in, and touches no
// other user.
func TestSessionsPageSignOutEverywhereElse(t *testing.T) {
	h := newWebLoginHandler(t, nil)
	now := time.Now()
	h.now = func() time.Time { return now }
	a := issued(t, h, "alice@example.com", "eng")
	b := issued(t, h, "alice@example.com", "eng")
	cli := cliToken(t, h, "alice@example.com", b)
	bob := issued(t, h, "bob@example.com", "eng")
	if !works(t, h, b) || !works(t, h, cli) {
		t.Fatal("fresh sessions refused")
	}
	csrf := sessionsCSRFOf(t, h, a)
	now = now.Add(1500 * time.Millisecond)
	rec := postSessions(t, h, a, url.Values{"csrf_token": {csrf}, "action": {"others"}}, nil)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/sessions?done=others" {
		t.Fatalf("others: %d %s", rec.Code, rec.Body)
	}
	for name, c := range map[string]*http.Cookie{"other browser": b, "CLI token": cli} {
		rec, passed := serve(t, h, withCookie("/api/v1/get_credentials", c))
		expectInvalidJWT(t, rec, passed, name)
	}
	if !works(t, h, a) {
		t.Error("this browser was signed out too")
	}
	if !works(t, h, bob) {
		t.Error("another user was signed out")
	}
	page := sessionsPageOf(t, h, a)
	if page.Code != 200 || strings.Count(page.Body.String(), `class="session"`) != 1 {
		t.Errorf("after signing out everywhere else: %d %s", page.Code, page.Body)
	}
	// The sessions of the same second as the change, other than this
	// one, are ended too.
	now = now.Add(100 * time.Millisecond)
	c := issued(t, h, "alice@example.com")
	now = now.Add(100 * time.Millisecond)
	if rec := postSessions(t, h, a, url.Values{"csrf_token": {csrf}, "action": {"others"}}, nil); rec.Code != http.StatusSeeOther {
		t.Fatalf("others again: %d", rec.Code)
	}
	if works(t, h, c) || !works(t, h, a) {
		t.Error("a session begun in the second of the change survived it, or this browser did not")
	}
}

// A POST another site makes, or one without the page's token, changes
// nothing.
func TestSessionsPageRefusesCrossSiteAndBadCSRF(t *testing.T) {
	h := newWebLoginHandler(t, nil)
	a := issued(t, h, "alice@example.com")
	b := issued(t, h, "alice@example.com")
	csrf := sessionsCSRFOf(t, h, a)
	others := url.Values{"csrf_token": {csrf}, "action": {"others"}}
	end := url.Values{"csrf_token": {csrf}, "action": {"end"}, "session": {sid(t, h, b)}}
	for name, c := range map[string]struct {
		form url.Values
		hdr  map[string]string
		want int
	}{
		"cross-site":          {others, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		"same-site":           {end, map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		"foreign origin":      {end, map[string]string{"Origin": "https://evil.example"}, 403},
		"no token":            {url.Values{"action": {"others"}}, nil, 403},
		"bad token":           {url.Values{"csrf_token": {strings.Repeat("0", 64)}, "action": {"others"}}, nil, 403},
		"other session token": {url.Values{"csrf_token": {sessionsCSRFOf(t, h, b)}, "action": {"others"}}, nil, 403},
	} {
		if rec := postSessions(t, h, a, c.form, c.hdr); rec.Code != c.want {
			t.Errorf("%s: %d, want %d", name, rec.Code, c.want)
		}
	}
	// Bob's page token does not work with alice's session either.
	bobs := sessionsCSRFOf(t, h, issued(t, h, "bob@example.com"))
	if rec := postSessions(t, h, a, url.Values{"csrf_token": {bobs}, "action": {"others"}}, nil); rec.Code != 403 {
		t.Errorf("another user's token: %d", rec.Code)
	}
	if rec := postSessions(t, h, nil, others, nil); rec.Code != 401 {
		t.Errorf("no session: %d", rec.Code)
	}
	if !works(t, h, a) || !works(t, h, b) {
		t.Error("a refused post signed a session out")
	}
	if list, _ := h.sessions.records.ListSessions(t.Context(), "alice@example.com", time.Now()); len(list) != 2 {
		t.Errorf("%d sessions left, want 2", len(list))
	}
}

// Without a session the browser signs in and comes back to the page; a
// site without a sign-in says what to do.
func TestSessionsPageWithoutSession(t *testing.T) {
	h := newWebLoginHandler(t, nil)
	rec := sessionsPageOf(t, h, nil)
	if got := loginReturnPath(t, h, rec); got != "/sessions" {
		t.Errorf("sign-in returns to %q", got)
	}
	plain := newTestHandler(t, nil)
	rec = sessionsPageOf(t, plain, nil)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "Sign in to ConsoleMe") {
		t.Errorf("no sign-in configured: %d %s", rec.Code, rec.Body)
	}
	r := request("DELETE", "/sessions", "192.0.2.1", nil)
	if rec, passed := serve(t, plain, r); passed || rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d passed=%v", rec.Code, passed)
	}
}

// Without web_login this browser's own session is ended from the page; a
// token minted elsewhere (no session id) is listed but cannot spare
// itself from "everywhere else", so that is not offered.
func TestSessionsPageWithoutWebLogin(t *testing.T) {
	h := newTestHandler(t, nil)
	a := issued(t, h, "alice@example.com")
	body := sessionsPageOf(t, h, a).Body.String()
	if !strings.Contains(body, `id="end-current"`) || strings.Contains(body, `href="/logout"`) {
		t.Errorf("this browser cannot sign out from the page: %s", body)
	}
	rec := postSessions(t, h, a, url.Values{"csrf_token": {sessionsCSRFOf(t, h, a)}, "action": {"end"}, "session": {sid(t, h, a)}}, nil)
	if rec.Code != 200 || !strings.Contains(rec.Header().Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("ending this browser's session: %d %v", rec.Code, rec.Header())
	}
	if works(t, h, a) {
		t.Error("the ended session still works")
	}
	foreign := sessionCookie(t, h, "alice@example.com")
	page := sessionsPageOf(t, h, foreign)
	if page.Code != 200 || strings.Contains(page.Body.String(), `id="others"`) || strings.Count(page.Body.String(), `id="current"`) != 1 {
		t.Errorf("page of a token without a session id: %d %s", page.Code, page.Body)
	}
	// Even a well-formed post (the page has no such form) changes nothing.
	ss := h.sessions.read(withCookie("/sessions", foreign), time.Now())
	rec = postSessions(t, h, foreign, url.Values{"csrf_token": {h.sessionsCSRF(ss)}, "action": {"others"}}, nil)
	if rec.Code != http.StatusConflict || !works(t, h, foreign) {
		t.Errorf("everywhere else without a session id: %d", rec.Code)
	}
}

// The approval success page links to the sessions page and keeps
// ConsoleMe's sentence word for word.
func TestApprovalSuccessLinksToSessions(t *testing.T) {
	h := newTestHandler(t, nil)
	tok := generate(t, h, "alice@example.com", "192.0.2.1")
	body := approve(t, h, tok, "192.0.2.1", issued(t, h, "alice@example.com")).Body.String()
	if !strings.Contains(body, `<p id="message">`+SuccessMessage+`</p>`) || !strings.Contains(body, `href="/sessions"`) {
		t.Errorf("success page: %s", body)
	}
}

// The route is exact and costs nothing to other paths.
func TestSessionsRoute(t *testing.T) {
	for path, want := range map[string]route{"/sessions": routeSessions, "/sessions/": routeNone, "/sessionsx": routeNone, "/session": routeNone} {
		for _, saml := range []bool{false, true} {
			if got, _ := matchRoute(path, saml, false); got != want {
				t.Errorf("%s (saml %v): %v, want %v", path, saml, got, want)
			}
		}
	}
}

// BenchmarkMatchRoute is the route look-up every request pays, for paths
// that are not the module's and for /sessions.
func BenchmarkMatchRoute(b *testing.B) {
	paths := []string{"/", "/static/app.js", "/api/v2/get_roles", "/saml/acs", "/sessions", "/selfservice"}
	for b.Loop() {
		for _, p := range paths {
			_, _ = matchRoute(p, true, false)
		}
	}
}

// BenchmarkSessionsPage renders the page of a user with a few sessions.
func BenchmarkSessionsPage(b *testing.B) {
	h := benchHandler(b)
	var c *http.Cookie
	for range 5 {
		rec := httptest.NewRecorder()
		if _, err := h.sessions.issue(rec, request("GET", "/saml/acs", "192.0.2.1", nil), "alice@example.com", nil, h.now()); err != nil {
			b.Fatal(err)
		}
		c = rec.Result().Cookies()[0]
	}
	r := request("GET", "/sessions", "192.0.2.1", nil)
	r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		_ = h.ServeHTTP(w, r, okNext)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
