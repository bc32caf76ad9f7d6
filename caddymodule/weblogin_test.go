package consolemeauth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

func newWebLoginHandler(t *testing.T, mutate func(*Handler)) *Handler {
	t.Helper()
	dir := t.TempDir()
	sp := samltest.NewKeyPair(t, dir, "sp")
	md := samltest.NewIdP(t, dir, "idp").MetadataFile(t, dir)
	return newTestHandler(t, func(h *Handler) {
		h.SAML = &SAMLConfig{IDPMetadataFile: md, SPCert: sp.CertFile, SPKey: sp.KeyFile}
		h.WebLogin = &WebLoginConfig{PublicPaths: []string{"/healthcheck", "/static/"}}
		if mutate != nil {
			mutate(h)
		}
	})
}

// loginReturnPath follows a redirect to the IdP back to the stored state.
func loginReturnPath(t *testing.T, h *Handler, rec *httptest.ResponseRecorder) string {
	t.Helper()
	if rec.Code != http.StatusFound {
		t.Fatalf("status %d, want a redirect to the IdP: %s", rec.Code, rec.Body)
	}
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if loc.Host != "idp.example.com" {
		t.Fatalf("redirected to %s", loc)
	}
	st, err := h.states.TakeLogin(t.Context(), loc.Query().Get("RelayState"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return st.ReturnPath
}

func TestWebLoginRedirectsBrowsers(t *testing.T) {
	h := newWebLoginHandler(t, nil)
	for _, target := range []string{"/", "/policies?search=x&page=2"} {
		rec, passed := serve(t, h, request("GET", target, "192.0.2.1", nil))
		if passed {
			t.Fatalf("%s passed without a session", target)
		}
		if got := loginReturnPath(t, h, rec); got != target {
			t.Errorf("returns to %q, want %q", got, target)
		}
	}
}

func TestWebLoginXHRGetsConsoleMeRedirectJSON(t *testing.T) {
	h := newWebLoginHandler(t, nil)
	for _, hdr := range []map[string]string{{"X-Requested-With": "XMLHttpRequest"}, {"Accept": "application/json"}} {
		r := request("GET", "/api/v2/user_profile", "192.0.2.1", nil)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		rec, passed := serve(t, h, r)
		if passed || rec.Code != 403 {
			t.Fatalf("%v: %d passed=%v", hdr, rec.Code, passed)
		}
		m := decode(t, rec)
		if m["type"] != "redirect" || m["reason"] != "unauthenticated" ||
			m["redirect_url"] != "https://consoleme.example.com/saml/login?return_to=%2Fapi%2Fv2%2Fuser_profile" {
			t.Errorf("%v: %v", hdr, m)
		}
	}
	rec, passed := serve(t, h, request("POST", "/api/v2/requests", "192.0.2.1", strings.NewReader("{}")))
	if passed || rec.Code != 403 {
		t.Errorf("POST without session: %d", rec.Code)
	}
}

func TestWebLoginNeverRedirectsWeepOrPublicPaths(t *testing.T) {
	h := newWebLoginHandler(t, nil)
	for _, p := range []string{"/api/v1/get_credentials", "/api/v2/get_roles?all=true", "/api/v1/get_roles",
		"/api/v2/get_resource_url?arn=x", "/api/v2/mtls/roles/x", "/api/v1/myheaders/", "/api/v1/policies/typeahead?resource=account",
		"/healthcheck", "/static/js/main.js"} {
		r := request("POST", p, "192.0.2.1", nil)
		r.Header.Set("Cookie", "consoleme_auth=expired-or-garbage")
		if rec, passed := serve(t, h, r); !passed {
			t.Errorf("%s not passed through: %d", p, rec.Code)
		}
	}
	if _, passed := serve(t, h, request("GET", "/healthcheckX", "192.0.2.1", nil)); passed {
		t.Error("a public path pattern matched more than it says")
	}
}

func TestWebLoginSessionAndRenewal(t *testing.T) {
	h := newWebLoginHandler(t, func(h *Handler) { h.AllowedGroups = []string{"eng"} })
	now := time.Now()
	h.now = func() time.Time { return now }

	fresh, _, _ := h.sessions.codec.Mint("alice@example.com", []string{"eng"}, now)
	r := request("GET", "/", "192.0.2.1", nil)
	r.AddCookie(&http.Cookie{Name: "consoleme_auth", Value: fresh})
	rec, passed := serve(t, h, r)
	if !passed || rec.Header().Get("Set-Cookie") != "" {
		t.Errorf("fresh session: passed=%v set-cookie=%q", passed, rec.Header().Get("Set-Cookie"))
	}

	// 50 minutes later the 1h cookie is due for renewal: same login time.
	loginTime := now
	now = now.Add(50 * time.Minute)
	r = request("GET", "/", "192.0.2.1", nil)
	r.AddCookie(&http.Cookie{Name: "consoleme_auth", Value: fresh})
	r.AddCookie(&http.Cookie{Name: "other", Value: "kept"})
	var seen string
	rec = httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		seen = r.Header.Get("Cookie")
		return nil
	})
	if err := h.ServeHTTP(rec, r, next); err != nil {
		t.Fatal(err)
	}
	var renewed *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == "consoleme_auth" {
			renewed = c
		}
	}
	if renewed == nil {
		t.Fatal("no renewed cookie")
	}
	id, err := h.sessions.codec.Verify(renewed.Value, now)
	orig, _ := h.sessions.codec.Verify(fresh, loginTime)
	if err != nil || id.IssuedAt.Unix() != orig.IssuedAt.Unix() || id.Expires.Sub(now) < 59*time.Minute {
		t.Errorf("renewed token %+v %v", id, err)
	}
	if !strings.Contains(seen, "consoleme_auth="+renewed.Value) || !strings.Contains(seen, "other=kept") || strings.Contains(seen, fresh) {
		t.Errorf("ConsoleMe saw cookies %q", seen)
	}

	// Past the maximum session age the IdP is asked again.
	now = loginTime.Add(13 * time.Hour)
	old, _, _ := h.sessions.codec.MintAt("alice@example.com", []string{"eng"}, loginTime, now)
	r = request("GET", "/x", "192.0.2.1", nil)
	r.AddCookie(&http.Cookie{Name: "consoleme_auth", Value: old})
	rec, _ = serve(t, h, r)
	if got := loginReturnPath(t, h, rec); got != "/x" {
		t.Errorf("old session: %q", got)
	}

	// Outside the allowed groups: refused, not looped through the IdP.
	other, _, _ := h.sessions.codec.Mint("bob@example.com", []string{"sales"}, now)
	r = request("GET", "/", "192.0.2.1", nil)
	r.AddCookie(&http.Cookie{Name: "consoleme_auth", Value: other})
	if rec, passed := serve(t, h, r); passed || rec.Code != 403 {
		t.Errorf("denied group: %d passed=%v", rec.Code, passed)
	}
}

func TestLogoutAndLoginRoute(t *testing.T) {
	h := newWebLoginHandler(t, nil)
	r := request("GET", "/logout", "192.0.2.1", nil)
	r.AddCookie(sessionCookie(t, h, "alice@example.com"))
	rec, passed := serve(t, h, r)
	if passed || rec.Code != 200 {
		t.Fatalf("logout: %d", rec.Code)
	}
	cleared := false
	for _, c := range rec.Result().Cookies() {
		cleared = cleared || (c.Name == "consoleme_auth" && c.MaxAge < 0 && c.Value == "")
	}
	if !cleared {
		t.Errorf("cookie not cleared: %v", rec.Header()["Set-Cookie"])
	}
	rec, _ = serve(t, h, request("GET", "/saml/login?return_to=//evil.example/x", "192.0.2.1", nil))
	if got := loginReturnPath(t, h, rec); got != "/" {
		t.Errorf("open redirect: returns to %q", got)
	}
	rec, _ = serve(t, h, request("GET", "/saml/login?return_to=/policies", "192.0.2.1", nil))
	if got := loginReturnPath(t, h, rec); got != "/policies" {
		t.Errorf("returns to %q", got)
	}
}

func TestWebLoginConfig(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("consoleme_auth {\nweb_login {\npublic_paths /healthcheck /static/\nmax_session_age 8h\nrenew_before 15m\n}\n}"))
	if err != nil {
		t.Fatal(err)
	}
	if w := h.WebLogin; w == nil || len(w.PublicPaths) != 2 || w.MaxSessionAge != caddy.Duration(8*time.Hour) || w.RenewBefore != caddy.Duration(15*time.Minute) {
		t.Errorf("%+v", h.WebLogin)
	}
	if err := (&Handler{}).UnmarshalCaddyfile(caddyfile.NewTestDispenser("consoleme_auth {\nweb_login\n}")); err != nil {
		t.Errorf("bare web_login: %v", err)
	}
	x := &Handler{JWTSecret: "s", WebLogin: &WebLoginConfig{}}
	ctx, cancel := newCtx()
	defer cancel()
	if err := x.Provision(ctx); err == nil || !strings.Contains(err.Error(), "web_login") {
		t.Errorf("web_login without saml: %v", err)
	}
	_ = x.Cleanup()
}

// TestSingleLogoutEndpoint: the SP metadata names /saml/slo, where the IdP
// returns the browser after a logout; it clears the session either way.
func TestSingleLogoutEndpoint(t *testing.T) {
	h := newWebLoginHandler(t, nil)
	rec, _ := serve(t, h, request("GET", "/saml/metadata", "192.0.2.1", nil))
	if !strings.Contains(rec.Body.String(), `SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://consoleme.example.com/saml/slo"`) {
		t.Errorf("metadata lacks the SLO endpoint:\n%s", rec.Body)
	}
	for _, method := range []string{"GET", "POST"} {
		r := request(method, "/saml/slo?SAMLResponse=garbage", "192.0.2.1", nil)
		r.AddCookie(sessionCookie(t, h, "alice@example.com"))
		rec, passed := serve(t, h, r)
		if passed || rec.Code != 200 || !strings.Contains(rec.Body.String(), "signed out") {
			t.Errorf("%s /saml/slo: %d %s", method, rec.Code, rec.Body)
		}
		if c := rec.Result().Cookies(); len(c) != 1 || c[0].MaxAge >= 0 {
			t.Errorf("%s /saml/slo: cookie not cleared: %v", method, rec.Header()["Set-Cookie"])
		}
	}
}
