package consolemeauth

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/token"
)

// weepRoutes are ConsoleMe's routes Weep calls with its cookie.
var weepRoutes = []string{"/api/v1/get_credentials", "/api/v1/get_roles", "/api/v2/get_roles", "/api/v1/myheaders"}

// issued signs email in as the ACS does and returns the session cookie.
func issued(t *testing.T, h *Handler, email string, groups ...string) *http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	r := request("GET", "/saml/acs", "192.0.2.1", nil)
	ref, err := h.sessions.issue(rec, r, email, groups, h.now())
	if ref != nil || err != nil {
		t.Fatalf("issue: %v %v", ref, err)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == h.CookieName {
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	t.Fatal("issue set no cookie")
	return nil
}

// expectInvalidJWT checks ConsoleMe's own answer to a token it refuses,
// which the request never got past the proxy to.
func expectInvalidJWT(t *testing.T, rec *httptest.ResponseRecorder, passed bool, what string) {
	t.Helper()
	if passed {
		t.Fatalf("%s: the refused token reached the upstream", what)
	}
	if rec.Code != http.StatusForbidden {
		t.Fatalf("%s: %d %s, want 403", what, rec.Code, rec.Body)
	}
	var m struct{ Code, Message, RequestID string }
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s: %v: %s", what, err, rec.Body)
	}
	var raw map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &raw)
	if m.Code != "invalid_jwt" || m.Message != "JWT is invalid or has expired." || raw["request_id"] == "" || raw["request_id"] == nil {
		t.Errorf("%s: answer %s is not ConsoleMe's invalid_jwt", what, rec.Body)
	}
}

// withCookie is a Weep-like call: no Accept, the cookie only.
func withCookie(path string, c *http.Cookie) *http.Request {
	r := request("GET", path, "192.0.2.1", nil)
	r.AddCookie(c)
	return r
}

// A user the group policy refuses gets no token from a sign-in at the IdP,
// and a token minted before the policy changed is refused on every route,
// Weep's included, not only on pages.
func TestGroupPolicyAtSignInAndOnEveryRequest(t *testing.T) {
	for _, weblogin := range []bool{false, true} {
		h := newTestHandler(t, func(h *Handler) {
			h.DeniedGroups = []string{"eng"}
			if weblogin {
				dir := t.TempDir()
				sp := samltest.NewKeyPair(t, dir, "sp")
				h.SAML = &SAMLConfig{IDPMetadataFile: samltest.NewIdP(t, dir, "idp").MetadataFile(t, dir), SPCert: sp.CertFile, SPKey: sp.KeyFile}
				h.WebLogin = &WebLoginConfig{}
			}
		})
		rec := httptest.NewRecorder()
		if err := h.signIn(rec, request("POST", "/saml/acs", "192.0.2.1", nil), signInSAML, "bob@example.com", []string{"eng"}, "idp", "/", h.now()); err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusForbidden || len(rec.Result().Cookies()) != 0 {
			t.Errorf("web_login=%v: sign-in of a denied user: %d, cookies %v", weblogin, rec.Code, rec.Result().Cookies())
		}
		// A token minted for bob before the policy: refused everywhere.
		old := sessionCookie(t, h, "bob@example.com", "eng")
		for _, p := range weepRoutes {
			rec, passed := serve(t, h, withCookie(p, old))
			expectInvalidJWT(t, rec, passed, p)
		}
		page := withCookie("/", old)
		page.Header.Set("Accept", "text/html")
		if rec, passed := serve(t, h, page); passed || rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "administrator") {
			t.Errorf("web_login=%v: page with a denied token: %d passed=%v", weblogin, rec.Code, passed)
		}
		// Alice, allowed, passes.
		if _, passed := serve(t, h, withCookie("/api/v1/get_roles", sessionCookie(t, h, "alice@example.com", "sre"))); !passed {
			t.Errorf("web_login=%v: an allowed token was refused", weblogin)
		}
	}
}

// Sign-out revokes: the old token is refused at the proxy afterwards, on
// pages and on Weep's routes, while a new sign-in works.
func TestLogoutRevokesTheToken(t *testing.T) {
	h := newWebLoginHandler(t, nil)
	c := issued(t, h, "carol@example.com", "eng")
	if _, passed := serve(t, h, withCookie("/api/v1/get_roles", c)); !passed {
		t.Fatal("a fresh session was refused")
	}
	out := withCookie("/logout", c)
	out.Header.Set("Sec-Fetch-Site", "same-origin")
	if rec, _ := serve(t, h, out); rec.Code >= 400 {
		t.Fatalf("logout: %d %s", rec.Code, rec.Body)
	}
	rec, passed := serve(t, h, withCookie("/api/v1/get_roles", c))
	expectInvalidJWT(t, rec, passed, "Weep route after logout")
	page := withCookie("/policies", c)
	page.Header.Set("Accept", "text/html")
	rec, passed = serve(t, h, page)
	if passed || rec.Code != http.StatusFound || !strings.Contains(rec.Header().Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("page after logout: %d passed=%v cookie %q; want the cookie cleared and a new sign-in", rec.Code, passed, rec.Header().Get("Set-Cookie"))
	}
	if got := loginReturnPath(t, h, rec); got != "/policies" {
		t.Errorf("sign-in returns to %q", got)
	}
	if _, passed := serve(t, h, withCookie("/api/v1/get_roles", issued(t, h, "carol@example.com", "eng"))); !passed {
		t.Error("a new sign-in after the logout was refused")
	}
}

// A user revoked at T loses every token begun before T (the sign-in's
// auth_time, not the iat that is backdated 5 s), while one who signs in
// right after works; CLI tokens of approvals made before T are not minted.
func TestRevokeUser(t *testing.T) {
	h := newTestHandler(t, nil)
	now := time.Now()
	h.now = func() time.Time { return now }
	before := issued(t, h, "dave@example.com", "eng")
	tok := generate(t, h, "dave@example.com", "192.0.2.1")
	if rec := approve(t, h, tok, "192.0.2.1", before); rec.Code != 200 {
		t.Fatalf("approve: %d", rec.Code)
	}
	now = now.Add(1500 * time.Millisecond)
	if err := h.revokeUser(t.Context(), "dave@example.com", "", revokedByAdmin, now); err != nil {
		t.Fatal(err)
	}
	rec, passed := serve(t, h, withCookie("/api/v1/get_credentials", before))
	expectInvalidJWT(t, rec, passed, "token from before the revocation")
	if m := poll(t, h, tok, "192.0.2.1"); m["status"] != "unauthorized" || m["encoded_jwt"] != nil {
		t.Errorf("collecting an approval made before the revocation: %v", m)
	}
	now = now.Add(200 * time.Millisecond) // the same second as the revocation, or the next
	after := issued(t, h, "dave@example.com", "eng")
	if _, passed := serve(t, h, withCookie("/api/v1/get_credentials", after)); !passed {
		t.Error("a sign-in right after the revocation was refused")
	}
	// A session begun in the second of the revocation, before it, is
	// refused by its id.
	now2 := now.Truncate(time.Second).Add(900 * time.Millisecond)
	h.now = func() time.Time { return now2.Add(-800 * time.Millisecond) }
	early := issued(t, h, "erin@example.com", "eng")
	if err := h.revokeUser(t.Context(), "erin@example.com", "", revokedByAdmin, now2); err != nil {
		t.Fatal(err)
	}
	h.now = func() time.Time { return now2 }
	rec, passed = serve(t, h, withCookie("/api/v1/get_roles", early))
	expectInvalidJWT(t, rec, passed, "token of the same second, before the revocation")
}

// A forged token naming a revoked session (wrong key) is left to the
// upstream as any invalid token is: the refusal reveals nothing.
func TestForgedTokenOfRevokedSession(t *testing.T) {
	h := newTestHandler(t, nil)
	c := issued(t, h, "frank@example.com")
	id, err := h.sessions.codec.Verify(c.Value, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.revokeSession(t.Context(), id.SessionID, revokedByAdmin, time.Now()); err != nil {
		t.Fatal(err)
	}
	other, err := token.NewCodec("another-secret", "email", "groups", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := other.MintSubject(token.Subject{Email: "frank@example.com", SessionID: id.SessionID}, time.Now(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, passed := serve(t, h, withCookie("/api/v1/get_roles", &http.Cookie{Name: h.CookieName, Value: forged})); !passed {
		t.Error("a token that does not verify was refused by the proxy instead of left to ConsoleMe")
	}
	rec, passed := serve(t, h, withCookie("/api/v1/get_roles", c))
	expectInvalidJWT(t, rec, passed, "the revoked token itself")
}

// A revocation made through one handler is enforced by another handler of
// the same site that shares the store (as after a config reload), and
// survives an edit of the group policy.
func TestRevocationSurvivesReloadAndPolicyEdit(t *testing.T) {
	a := newTestHandler(t, nil)
	c := issued(t, a, "gina@example.com", "eng")
	id, _ := a.sessions.codec.Verify(c.Value, time.Now())
	if err := a.revokeSession(t.Context(), id.SessionID, revokedByAdmin, time.Now()); err != nil {
		t.Fatal(err)
	}
	b := newTestHandler(t, func(h *Handler) { h.AllowedGroups = []string{"eng", "sre"} })
	rec, passed := serve(t, b, withCookie("/api/v1/get_roles", c))
	expectInvalidJWT(t, rec, passed, "after the reload with a new policy")
	list, err := b.sessions.records.ListSessions(t.Context(), "gina@example.com", time.Now())
	if err != nil || len(list) != 0 {
		t.Errorf("the revoked session is still listed: %v %v", list, err)
	}
	c2 := issued(t, b, "gina@example.com", "eng")
	if list, _ := a.sessions.records.ListSessions(t.Context(), "gina@example.com", time.Now()); len(list) != 1 || list[0].Method != methodIdP {
		t.Errorf("a new session is not listed through the other handler: %v", list)
	}
	if _, passed := serve(t, a, withCookie("/api/v1/get_roles", c2)); !passed {
		t.Error("the new session was refused")
	}
}

// A blocked user gets no token at all: no sign-in, no approval, and their
// existing tokens are refused; lifting the block lets them sign in again.
func TestBlockedUser(t *testing.T) {
	h := newTestHandler(t, nil)
	c := issued(t, h, "hank@example.com", "eng")
	now := time.Now()
	if err := h.block(t.Context(), "hank@example.com", revokedByAdmin, now, time.Hour); err != nil {
		t.Fatal(err)
	}
	rec, passed := serve(t, h, withCookie("/api/v1/get_roles", c))
	expectInvalidJWT(t, rec, passed, "blocked user's token")
	rec = httptest.NewRecorder()
	if err := h.signIn(rec, request("POST", "/saml/acs", "192.0.2.1", nil), signInSAML, "hank@example.com", nil, "idp", "/", time.Now()); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusForbidden || len(rec.Result().Cookies()) != 0 || !strings.Contains(rec.Body.String(), "suspended") {
		t.Errorf("sign-in while blocked: %d %v", rec.Code, rec.Result().Cookies())
	}
	if err := h.unblock(t.Context(), "hank@example.com", revokedByAdmin, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, passed := serve(t, h, withCookie("/api/v1/get_roles", issued(t, h, "hank@example.com"))); !passed {
		t.Error("sign-in after the block was lifted is refused")
	}
}

// Sessions are recorded with who, how, where and until when; a user's
// records are bounded, the oldest dropped first.
func TestSessionsRecorded(t *testing.T) {
	h := newTestHandler(t, nil)
	now := time.Now()
	for i := range maxSessionsPerUser + 5 {
		h.now = func() time.Time { return now.Add(time.Duration(i) * time.Second) }
		issued(t, h, "ivy@example.com")
	}
	list, err := h.sessions.records.ListSessions(t.Context(), "ivy@example.com", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != maxSessionsPerUser {
		t.Fatalf("%d sessions recorded, want the bound %d", len(list), maxSessionsPerUser)
	}
	if got, want := list[len(list)-1].Created, now.Add(5*time.Second); !got.Equal(want) {
		t.Errorf("oldest kept began %v, want %v", got, want)
	}
	s := list[0]
	if s.Method != methodIdP || s.IP != "192.0.2.1" || !validSessionID(s.ID) || !s.Expires.After(s.Created) {
		t.Errorf("record %+v", s)
	}
	var _ store.Session = s
}

// A blocked user's client certificate mints no token until the block is
// lifted; a revocation of the user's sessions alone does not stop it (a
// certificate token belongs to no session).
func TestBlockedCertificateUser(t *testing.T) {
	ca := mtlsCA(t)
	now := time.Now()
	h := mtlsHandler(t, &MTLSConfig{}, now, nil)
	leaf := ca.leaf(t, now.Add(-time.Hour), func(c *x509.Certificate) { c.EmailAddresses = []string{"kim@example.com"} })
	passMTLS(t, h, mtlsRequest(ca, leaf))
	if err := h.revokeUser(t.Context(), "kim@example.com", "", revokedByAdmin, now); err != nil {
		t.Fatal(err)
	}
	passMTLS(t, h, mtlsRequest(ca, leaf))
	if err := h.block(t.Context(), "kim@example.com", revokedByAdmin, now, time.Hour); err != nil {
		t.Fatal(err)
	}
	r := mtlsRequest(ca, leaf)
	rec, passed := serve(t, h, r)
	if passed || rec.Code != http.StatusForbidden {
		t.Fatalf("blocked certificate user: %d passed=%v", rec.Code, passed)
	}
	if m := decode(t, rec); m["code"] != "user_blocked" {
		t.Errorf("reply %v", m)
	}
	if err := h.unblock(t.Context(), "kim@example.com", revokedByAdmin, now); err != nil {
		t.Fatal(err)
	}
	passMTLS(t, h, mtlsRequest(ca, leaf))
}

// A user who signs in again in the second of their revocation, after it,
// gets a CLI token too: the approver's auth_time rides on the approval as
// a whole second (from the token), and is compared by the second, as the
// browser's token itself is. The real Weep, quick enough to do this, would
// otherwise poll in vain until it gives up.
func TestRevokeUserThenCLISignInSameSecond(t *testing.T) {
	h := newTestHandler(t, nil)
	now := time.Now().Truncate(time.Second).Add(300 * time.Millisecond)
	h.now = func() time.Time { return now }
	if err := h.revokeUser(t.Context(), "dave@example.com", "", revokedByAdmin, now); err != nil {
		t.Fatal(err)
	}
	now = now.Add(200 * time.Millisecond)
	after := issued(t, h, "dave@example.com", "eng")
	if _, passed := serve(t, h, withCookie("/api/v1/get_roles", after)); !passed {
		t.Fatal("a sign-in right after the revocation was refused")
	}
	tok := generate(t, h, "dave@example.com", "192.0.2.1")
	if rec := approve(t, h, tok, "192.0.2.1", after); rec.Code != 200 {
		t.Fatalf("approve: %d %s", rec.Code, rec.Body)
	}
	now = now.Add(100 * time.Millisecond)
	m := poll(t, h, tok, "192.0.2.1")
	if m["status"] != "success" {
		t.Fatalf("collecting an approval made in the second of the revocation, after it: %v", m)
	}
	cli := &http.Cookie{Name: h.CookieName, Value: m["encoded_jwt"].(string)}
	if _, passed := serve(t, h, withCookie("/api/v1/get_credentials", cli)); !passed {
		t.Error("the CLI token of that approval was refused")
	}
}

// The cookie reader sees every value a lax upstream parser would: quoted,
// with spaces, in several Cookie lines, beside other cookies, or with bytes
// net/http drops; a revoked token is refused however it is sent.
func TestRevokedTokenInAnyCookieSpelling(t *testing.T) {
	h := newTestHandler(t, nil)
	c := issued(t, h, "lee@example.com")
	id, err := h.sessions.codec.Verify(c.Value, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.revokeSession(t.Context(), id.SessionID, revokedByAdmin, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, lines := range [][]string{
		{"consoleme_auth=" + c.Value},
		{`consoleme_auth="` + c.Value + `"`},
		{"a=b;consoleme_auth=" + c.Value + " ; c=d"},
		{"a=b", "x=1; consoleme_auth=" + c.Value},
		{"consoleme_auth=junk", "consoleme_auth=" + c.Value},
		{"a=\x01; consoleme_auth =  " + c.Value},
	} {
		r := request("GET", "/api/v1/get_roles", "192.0.2.1", nil)
		r.Header["Cookie"] = lines
		rec, passed := serve(t, h, r)
		expectInvalidJWT(t, rec, passed, fmt.Sprintf("Cookie %q", lines))
	}
	var got []string
	for v := range cookieValues(http.Header{"Cookie": {`a=1; consoleme_auth="x"; consoleme_auth=y;consoleme_auth`}}, "consoleme_auth") {
		got = append(got, v)
	}
	if strings.Join(got, ",") != "x,y" {
		t.Errorf("cookieValues: %q", got)
	}
}
