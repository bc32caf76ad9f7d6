package consolemeauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

const testSecret = "unit-test-secret"

// newTestHandler provisions a handler with the memory store and no SAML.
func newTestHandler(t testing.TB, mutate func(*Handler)) *Handler {
	t.Helper()
	h := &Handler{JWTSecret: testSecret, PublicURL: "https://consoleme.example.com", MaxPending: 1000 + len(t.Name())}
	if mutate != nil {
		mutate(h)
	}
	ctx, cancel := newCtx()
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	h.logger = zap.NewNop()
	return h
}

func newCtx() (caddy.Context, context.CancelFunc) {
	return caddy.NewContext(caddy.Context{Context: context.Background()})
}

// request builds a request whose Caddy client IP is ip.
func request(method, target, ip string, body io.Reader) *http.Request {
	r := httptest.NewRequest(method, target, body)
	vars := map[string]any{caddyhttp.ClientIPVarKey: ip}
	return r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
}

// serve runs one request through the handler; next records pass-through.
func serve(t testing.TB, h *Handler, r *http.Request) (*httptest.ResponseRecorder, bool) {
	t.Helper()
	rec := httptest.NewRecorder()
	passed := false
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		passed = true
		w.WriteHeader(299)
		return nil
	})
	if err := h.ServeHTTP(rec, r, next); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	return rec, passed
}

func decode(t testing.TB, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=UTF-8" {
		t.Fatalf("Content-Type = %q, body %s", ct, rec.Body)
	}
	var m map[string]any
	d := json.NewDecoder(rec.Body)
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decoding %q: %v", rec.Body, err)
	}
	return m
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// generate makes a challenge for user from ip and returns its token.
func generate(t testing.TB, h *Handler, user, ip string) string {
	t.Helper()
	rec, _ := serve(t, h, request("GET", "/noauth/v1/challenge_generator/"+user, ip, nil))
	if rec.Code != 200 {
		t.Fatalf("generator: %d %s", rec.Code, rec.Body)
	}
	m := decode(t, rec)
	cu, _ := m["challenge_url"].(string)
	tok := cu[strings.LastIndex(cu, "/")+1:]
	if !uuidRE.MatchString(tok) {
		t.Fatalf("token %q is not a uuid4", tok)
	}
	return tok
}

func poll(t *testing.T, h *Handler, tok, ip string) map[string]any {
	t.Helper()
	rec, _ := serve(t, h, request("GET", "/noauth/v1/challenge_poller/"+tok, ip, nil))
	if rec.Code != 200 {
		t.Fatalf("poller: %d %s", rec.Code, rec.Body)
	}
	return decode(t, rec)
}

// sessionCookie returns a cookie for email as the SAML ACS would set it.
func sessionCookie(t *testing.T, h *Handler, email string, groups ...string) *http.Cookie {
	t.Helper()
	jwt, _, err := h.sessions.codec.Mint(email, groups, h.now())
	if err != nil {
		t.Fatal(err)
	}
	return &http.Cookie{Name: h.CookieName, Value: jwt}
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// approve views the approval page as the cookie's user and posts its form.
func approve(t *testing.T, h *Handler, tok, ip string, cookie *http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	form := approvalForm(t, h, tok, ip, cookie)
	r := request("POST", "/challenge_validator/"+tok, ip, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", "https://consoleme.example.com")
	r.AddCookie(cookie)
	rec, _ := serve(t, h, r)
	return rec
}

// approvalForm views the approval page as the cookie's user and returns the
// hidden fields of its form.
func approvalForm(t *testing.T, h *Handler, tok, ip string, cookie *http.Cookie) url.Values {
	t.Helper()
	r := request("GET", "/challenge_validator/"+tok, ip, nil)
	r.AddCookie(cookie)
	rec, _ := serve(t, h, r)
	if rec.Code != 200 {
		t.Fatalf("approval page: %d %s", rec.Code, rec.Body)
	}
	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(rec.Body.String(), -1) {
		form.Set(m[1], m[2])
	}
	return form
}

func TestGenerator(t *testing.T) {
	h := newTestHandler(t, nil)
	rec, passed := serve(t, h, request("GET", "/noauth/v1/challenge_generator/alice@example.com", "192.0.2.1", nil))
	if passed || rec.Code != 200 {
		t.Fatalf("got %d passed=%v", rec.Code, passed)
	}
	m := decode(t, rec)
	if len(m) != 2 {
		t.Errorf("reply has keys %v, want exactly challenge_url and polling_url", m)
	}
	cu, pu := m["challenge_url"].(string), m["polling_url"].(string)
	tok := strings.TrimPrefix(cu, "https://consoleme.example.com/challenge_validator/")
	if !uuidRE.MatchString(tok) {
		t.Errorf("challenge_url = %q", cu)
	}
	if pu != "https://consoleme.example.com/noauth/v1/challenge_poller/"+tok {
		t.Errorf("polling_url = %q", pu)
	}
	c, err := h.states.Get(context.Background(), tok, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "alice@example.com" || c.IP != "192.0.2.1" || c.Status != store.StatusPending ||
		c.Expires.Sub(c.Created) != DefaultChallengeTTL {
		t.Errorf("stored %+v", c)
	}
	if tok2 := generate(t, h, "alice@example.com", "192.0.2.1"); tok2 == tok {
		t.Error("two calls gave the same token")
	}
}

func TestGeneratorBaseFromRequest(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) { h.PublicURL = "" })
	r := request("GET", "http://cm.internal:8080/noauth/v1/challenge:generator/bob", "192.0.2.1", nil)
	rec, _ := serve(t, h, r)
	m := decode(t, rec)
	if cu := m["challenge_url"].(string); !strings.HasPrefix(cu, "http://cm.internal:8080/challenge_validator/") {
		t.Errorf("challenge_url = %q", cu)
	}
}

func TestGeneratorUserNames(t *testing.T) {
	h := newTestHandler(t, nil)
	for _, tc := range []struct {
		path string
		user string // "" means refused with 400
	}{
		{"/noauth/v1/challenge_generator/alice@example.com", "alice@example.com"},
		{"/noauth/v1/challenge_generator/a+b@example.com", "a+b@example.com"},
		{"/noauth/v1/challenge_generator/dom%2Fuser", "dom/user"},
		{"/noauth/v1/challenge_generator/J%C3%BCrgen", "Jürgen"},
		{"/noauth/v1/challenge_generator/", ""},
		{"/noauth/v1/challenge_generator", ""},
		{"/noauth/v1/challenge_generator/a%00b", ""},
		{"/noauth/v1/challenge_generator/a%0Ab", ""},
		{"/noauth/v1/challenge_generator/a%7Fb", ""},
		{"/noauth/v1/challenge_generator/%FF", ""},
		{"/noauth/v1/challenge_generator/" + strings.Repeat("x", 257), ""},
	} {
		rec, passed := serve(t, h, request("GET", tc.path, "192.0.2.1", nil))
		if passed {
			t.Errorf("%s passed through", tc.path)
			continue
		}
		m := decode(t, rec)
		if tc.user == "" {
			if rec.Code != 400 || m["status"] != "error" || m["code"] != "invalid_user" || m["message"] == "" {
				t.Errorf("%s: %d %v, want 400 invalid_user", tc.path, rec.Code, m)
			}
			continue
		}
		if rec.Code != 200 {
			t.Errorf("%s: %d %v", tc.path, rec.Code, m)
			continue
		}
		cu := m["challenge_url"].(string)
		c, err := h.states.Get(context.Background(), cu[strings.LastIndex(cu, "/")+1:], time.Now())
		if err != nil || c.User != tc.user {
			t.Errorf("%s: stored user %q, want %q (%v)", tc.path, c.User, tc.user, err)
		}
	}
	// 256 bytes is still fine.
	if rec, _ := serve(t, h, request("GET", "/noauth/v1/challenge_generator/"+strings.Repeat("x", 256), "192.0.2.1", nil)); rec.Code != 200 {
		t.Errorf("256-byte user: %d", rec.Code)
	}
}

func TestWrongMethods(t *testing.T) {
	h := newTestHandler(t, nil)
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/noauth/v1/challenge_generator/alice", "GET"},
		{"DELETE", "/noauth/v1/challenge_poller/abc", "GET"},
		{"PUT", "/challenge_validator/abc", "GET, POST"},
		{"PATCH", "/api/v2/challenge_validator/abc", "GET, POST"},
	} {
		rec, passed := serve(t, h, request(tc.method, tc.path, "192.0.2.1", nil))
		if passed || rec.Code != 405 || rec.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow=%q passed=%v", tc.method, tc.path, rec.Code, rec.Header().Get("Allow"), passed)
			continue
		}
		if m := decode(t, rec); m["code"] != "method_not_allowed" {
			t.Errorf("%s %s: %v", tc.method, tc.path, m)
		}
	}
}

func TestGeneratorBound(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) { h.MaxPending = 3 })
	for i := 0; i < 3; i++ {
		generate(t, h, fmt.Sprintf("u%d", i), "192.0.2.1")
	}
	rec, _ := serve(t, h, request("GET", "/noauth/v1/challenge_generator/one-too-many", "192.0.2.1", nil))
	if rec.Code != 503 {
		t.Fatalf("status %d, want 503", rec.Code)
	}
	if ra := rec.Header().Get("Retry-After"); ra != "120" {
		t.Errorf("Retry-After = %q, want 120", ra)
	}
	if m := decode(t, rec); m["code"] != "too_many_pending" {
		t.Errorf("body %v", m)
	}
}

func TestPollerStates(t *testing.T) {
	h := newTestHandler(t, nil)
	if m := poll(t, h, "f82e6492-36a3-477d-9dab-98df1a0753a3", "192.0.2.1"); len(m) != 1 || m["status"] != "unknown" {
		t.Errorf("unknown token: %v", m)
	}
	tok := generate(t, h, "alice@example.com", "192.0.2.1")
	if m := poll(t, h, tok, "192.0.2.1"); len(m) != 1 || m["status"] != "pending" {
		t.Errorf("fresh: %v", m)
	}
	if m := poll(t, h, tok, "198.51.100.9"); len(m) != 1 || m["status"] != "unauthorized" {
		t.Errorf("other ip: %v", m)
	}
	if m := poll(t, h, tok, "192.0.2.1"); m["status"] != "pending" {
		t.Errorf("other ip consumed the challenge: %v", m)
	}
	rec := approve(t, h, tok, "192.0.2.1", sessionCookie(t, h, "alice@example.com", "eng", "admins"))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), SuccessMessage) {
		t.Fatalf("approve: %d %s", rec.Code, rec.Body)
	}
	if m := poll(t, h, tok, "198.51.100.9"); m["status"] != "unauthorized" {
		t.Errorf("approved, other ip: %v", m)
	}
	before := time.Now().Unix()
	rec, _ = serve(t, h, request("GET", "/noauth/v1/challenge_poller/"+tok, "192.0.2.1", nil))
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("success without Cache-Control: no-store")
	}
	m := decode(t, rec)
	if m["status"] != "success" || m["cookie_name"] != "consoleme_auth" || m["user"] != "alice@example.com" || len(m) != 5 {
		t.Fatalf("success: %v", m)
	}
	exp, err := m["expiration"].(json.Number).Int64()
	if err != nil {
		t.Fatalf("expiration %v is not an integer", m["expiration"])
	}
	if d := exp - before; d < 3599 || d > 3601 {
		t.Errorf("expiration - now = %d, want 3600", d)
	}
	id, err := h.sessions.codec.Verify(m["encoded_jwt"].(string), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if id.Email != "alice@example.com" || strings.Join(id.Groups, ",") != "eng,admins" || id.Expires.Unix() != exp {
		t.Errorf("token identity %+v, expiration %d", id, exp)
	}
	if m := poll(t, h, tok, "192.0.2.1"); m["status"] != "unknown" {
		t.Errorf("after success: %v", m)
	}
}

func TestPollerExpired(t *testing.T) {
	h := newTestHandler(t, nil)
	now := time.Now()
	h.now = func() time.Time { return now }
	tok := generate(t, h, "alice", "192.0.2.1")
	now = now.Add(DefaultChallengeTTL + time.Second)
	// Expiry is checked before the IP, as in ConsoleMe: any poller deletes it.
	if m := poll(t, h, tok, "198.51.100.9"); m["status"] != "expired" {
		t.Errorf("after ttl: %v", m)
	}
	if m := poll(t, h, tok, "192.0.2.1"); m["status"] != "unknown" {
		t.Errorf("after expired: %v", m)
	}
}

func TestPollerMalformedToken(t *testing.T) {
	h := newTestHandler(t, nil)
	for _, p := range []string{"", "abc%2Fdef", "a.b", "<script>", strings.Repeat("a", 65), "abc/", "%00"} {
		rec, passed := serve(t, h, request("GET", "/noauth/v1/challenge_poller/"+p, "192.0.2.1", nil))
		if passed || rec.Code != 400 {
			t.Errorf("%q: %d passed=%v", p, rec.Code, passed)
			continue
		}
		if m := decode(t, rec); m["code"] != "invalid_token" {
			t.Errorf("%q: %v", p, m)
		}
	}
}

func TestPollerIPCheckOff(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) { h.DisablePollerIPCheck = true })
	tok := generate(t, h, "alice", "192.0.2.1")
	if m := poll(t, h, tok, "198.51.100.9"); m["status"] != "pending" {
		t.Errorf("other ip with the check off: %v", m)
	}
}

func TestConcurrentPollersOneSuccess(t *testing.T) {
	h := newTestHandler(t, nil)
	tok := generate(t, h, "alice", "192.0.2.1")
	if rec := approve(t, h, tok, "192.0.2.1", sessionCookie(t, h, "alice")); rec.Code != 200 {
		t.Fatalf("approve: %d", rec.Code)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			_ = h.ServeHTTP(rec, request("GET", "/noauth/v1/challenge_poller/"+tok, "192.0.2.1", nil), nil)
			var m map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &m)
			mu.Lock()
			counts[fmt.Sprint(m["status"])]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts["success"] != 1 || counts["unknown"] != 39 {
		t.Errorf("outcomes %v, want exactly one success", counts)
	}
}

func TestPassThroughUntouched(t *testing.T) {
	h := newTestHandler(t, nil)
	for _, p := range []string{"/", "/api/v1/get_credentials", "/api/v2/get_roles?all=true", "/noauth/v1/other",
		"/challenge_validatorX", "/saml/acs", "/saml/metadata", "/noauth/v1/challenge_generatorX/alice"} {
		r := request("POST", p, "192.0.2.1", strings.NewReader("body"))
		r.Header.Set("Cookie", "consoleme_auth=garbage")
		rec, passed := serve(t, h, r)
		if !passed || rec.Code != 299 {
			t.Errorf("%s: passed=%v code=%d", p, passed, rec.Code)
		}
		if b, _ := io.ReadAll(r.Body); string(b) != "body" {
			t.Errorf("%s: body consumed", p)
		}
	}
}

func TestValidatorWithoutSAML(t *testing.T) {
	h := newTestHandler(t, nil)
	tok := generate(t, h, "alice@example.com", "192.0.2.1")
	rec, _ := serve(t, h, request("GET", "/challenge_validator/"+tok, "192.0.2.1", nil))
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "Sign in to ConsoleMe") {
		t.Errorf("no cookie, no saml: %d %s", rec.Code, rec.Body)
	}
	for _, hdr := range []string{"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy", "Cache-Control"} {
		if rec.Header().Get(hdr) == "" {
			t.Errorf("page without %s", hdr)
		}
	}
}

func TestApprovalPage(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) { h.DisableValidatorIPCheck = true })
	tok := generate(t, h, "<alice>@example.com", "192.0.2.1")
	r := request("GET", "/challenge_validator/"+tok, "198.51.100.9", nil)
	r.AddCookie(sessionCookie(t, h, "<alice>@example.com"))
	rec, _ := serve(t, h, r)
	body := rec.Body.String()
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, body)
	}
	for _, want := range []string{`id="approve"`, `method="POST"`, "192.0.2.1", "198.51.100.9", `id="ip-warning"`, "&lt;alice&gt;@example.com"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<alice>") {
		t.Error("user name not escaped")
	}
	if strings.Count(body, "<form") != 1 {
		t.Error("want exactly one form")
	}
	if rec.Header().Get("X-Frame-Options") != "DENY" || !strings.Contains(rec.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("framing allowed: %v", rec.Header())
	}
	// Viewed once only.
	r = request("GET", "/challenge_validator/"+tok, "198.51.100.9", nil)
	r.AddCookie(sessionCookie(t, h, "<alice>@example.com"))
	if rec, _ := serve(t, h, r); rec.Code != 409 {
		t.Errorf("second view: %d", rec.Code)
	}
}

func TestValidatorRefusals(t *testing.T) {
	h := newTestHandler(t, nil)
	now := time.Now()
	h.now = func() time.Time { return now }
	alice := sessionCookie(t, h, "alice@example.com")
	view := func(tok, ip string, c *http.Cookie) *httptest.ResponseRecorder {
		r := request("GET", "/challenge_validator/"+tok, ip, nil)
		if c != nil {
			r.AddCookie(c)
		}
		rec, _ := serve(t, h, r)
		return rec
	}
	if rec := view("f82e6492-36a3-477d-9dab-98df1a0753a3", "192.0.2.1", alice); rec.Code != 404 {
		t.Errorf("unknown: %d", rec.Code)
	}
	if rec := view("not.a.token", "192.0.2.1", alice); rec.Code != 400 {
		t.Errorf("malformed: %d", rec.Code)
	}
	bobs := generate(t, h, "bob@example.com", "192.0.2.1")
	if rec := view(bobs, "192.0.2.1", alice); rec.Code != 403 || !strings.Contains(rec.Body.String(), "another user") {
		t.Errorf("other user: %d %s", rec.Code, rec.Body)
	}
	if m := poll(t, h, bobs, "192.0.2.1"); m["status"] != "pending" {
		t.Errorf("other user changed the challenge: %v", m)
	}
	tok := generate(t, h, "alice@example.com", "192.0.2.1")
	if rec := view(tok, "198.51.100.9", alice); rec.Code != 403 || !strings.Contains(rec.Body.String(), "IP address") {
		t.Errorf("other ip: %d %s", rec.Code, rec.Body)
	}
	// The refusals above did not use up the view.
	expired := generate(t, h, "alice@example.com", "192.0.2.1")
	now = now.Add(3 * time.Minute)
	if rec := view(expired, "192.0.2.1", alice); rec.Code != 410 {
		t.Errorf("expired: %d", rec.Code)
	}
	// A cookie signed with another secret is no session.
	other := newTestHandler(t, func(o *Handler) { o.JWTSecret = "another-secret" })
	forged := sessionCookie(t, other, "alice@example.com")
	fresh := generate(t, h, "alice@example.com", "192.0.2.1")
	if rec := view(fresh, "192.0.2.1", forged); rec.Code != 401 {
		t.Errorf("forged cookie: %d", rec.Code)
	}
}

func TestApproveFormCSRF(t *testing.T) {
	h := newTestHandler(t, nil)
	alice := sessionCookie(t, h, "alice@example.com")
	tok := generate(t, h, "alice@example.com", "192.0.2.1")
	form := approvalForm(t, h, tok, "192.0.2.1", alice)
	if form.Get("nonce") == "" || form.Get("csrf_token") == "" {
		t.Fatalf("form fields %v", form)
	}
	post := func(f url.Values, hdr map[string]string, c *http.Cookie) int {
		r := request("POST", "/challenge_validator/"+tok, "192.0.2.1", strings.NewReader(f.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		if c != nil {
			r.AddCookie(c)
		}
		rec, _ := serve(t, h, r)
		return rec.Code
	}
	bad := url.Values{"nonce": {form.Get("nonce")}, "csrf_token": {strings.Repeat("0", 64)}}
	if code := post(bad, nil, alice); code != 403 {
		t.Errorf("bad csrf token: %d", code)
	}
	if code := post(form, map[string]string{"Origin": "https://evil.example"}, alice); code != 403 {
		t.Errorf("foreign origin: %d", code)
	}
	if code := post(form, map[string]string{"Sec-Fetch-Site": "cross-site"}, alice); code != 403 {
		t.Errorf("cross-site: %d", code)
	}
	if code := post(form, nil, nil); code != 401 {
		t.Errorf("no cookie: %d", code)
	}
	if code := post(form, nil, sessionCookie(t, h, "mallory@example.com")); code != 403 {
		t.Errorf("other user's session: %d", code)
	}
	if m := poll(t, h, tok, "192.0.2.1"); m["status"] != "pending" {
		t.Fatalf("refused posts approved: %v", m)
	}
	if code := post(form, map[string]string{"Origin": "https://consoleme.example.com", "Sec-Fetch-Site": "same-origin"}, alice); code != 200 {
		t.Errorf("good post: %d", code)
	}
	if m := poll(t, h, tok, "192.0.2.1"); m["status"] != "success" {
		t.Errorf("after approval: %v", m)
	}
}

func TestValidatorAPI(t *testing.T) {
	h := newTestHandler(t, nil)
	alice := sessionCookie(t, h, "alice@example.com", "eng")
	tok := generate(t, h, "alice@example.com", "192.0.2.1")
	call := func(method string, body string, c *http.Cookie, hdr map[string]string) (int, map[string]any) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		r := request(method, "/api/v2/challenge_validator/"+tok, "192.0.2.1", rd)
		if c != nil {
			r.AddCookie(c)
		}
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		rec, _ := serve(t, h, r)
		return rec.Code, decode(t, rec)
	}
	code, m := call("GET", "", nil, nil)
	if code != 403 || m["type"] != "redirect" || m["reason"] != "unauthenticated" {
		t.Errorf("unauthenticated: %d %v", code, m)
	}
	code, m = call("GET", "", alice, nil)
	nonce, _ := m["nonce"].(string)
	if code != 200 || m["show_approve_button"] != true || !uuidRE.MatchString(nonce) ||
		!strings.HasPrefix(m["message"].(string), "A user at **192.0.2.1** has requested ConsoleMe credentials for **alice@example.com**.") {
		t.Errorf("first GET: %d %v", code, m)
	}
	if _, m = call("GET", "", alice, nil); m["message"] != msgViewed {
		t.Errorf("second GET: %v", m)
	}
	xsrf := map[string]string{"X-Xsrftoken": "x"}
	if code, _ = call("POST", `{"nonce":"`+nonce+`"}`, alice, nil); code != 403 {
		t.Errorf("POST without xsrf header: %d", code)
	}
	if code, _ = call("POST", `{"nonce":`, alice, xsrf); code != 400 {
		t.Errorf("malformed JSON: %d", code)
	}
	if _, m = call("POST", `{"nonce":"wrong"}`, alice, xsrf); m["message"] != msgBadNonce {
		t.Errorf("wrong nonce: %v", m)
	}
	if _, m = call("POST", `{"nonce":"`+nonce+`"}`, sessionCookie(t, h, "bob@example.com"), xsrf); m["message"] != msgOtherUser {
		t.Errorf("other user: %v", m)
	}
	if m := poll(t, h, tok, "192.0.2.1"); m["status"] != "pending" {
		t.Fatalf("refusals approved: %v", m)
	}
	if _, m = call("POST", `{"nonce":"`+nonce+`"}`, alice, xsrf); m["message"] != SuccessMessage {
		t.Errorf("approve: %v", m)
	}
	if m := poll(t, h, tok, "192.0.2.1"); m["status"] != "success" || m["user"] != "alice@example.com" {
		t.Errorf("after approval: %v", m)
	}
}

func TestStoreUnavailable(t *testing.T) {
	h := newTestHandler(t, nil)
	h.states = brokenStore{}
	rec, _ := serve(t, h, request("GET", "/noauth/v1/challenge_generator/alice", "192.0.2.1", nil))
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Errorf("generator: %d", rec.Code)
	}
	rec, _ = serve(t, h, request("GET", "/noauth/v1/challenge_poller/abc", "192.0.2.1", nil))
	if rec.Code != 503 || decode(t, rec)["code"] != "store_unavailable" {
		t.Errorf("poller: %d", rec.Code)
	}
	// Pass-through does not touch the store at all.
	if _, passed := serve(t, h, request("GET", "/api/v2/get_roles", "192.0.2.1", nil)); !passed {
		t.Error("pass-through broken by the store")
	}
}

// brokenStore fails every call as an unreachable backend does.
type brokenStore struct{ store.Store }

var errDown = fmt.Errorf("%w: connection refused", store.ErrUnavailable)

func (brokenStore) Create(context.Context, *store.Challenge, time.Time) error { return errDown }
func (brokenStore) Poll(context.Context, string, string, bool, time.Time) (store.PollOutcome, *store.Challenge, error) {
	return 0, nil, errDown
}

func TestRoutesAndInputs(t *testing.T) {
	for _, tc := range []struct {
		path string
		saml bool
		rt   route
		arg  string
	}{
		{"/noauth/v1/challenge_generator/a/b", false, routeGenerator, "a/b"},
		{"/noauth/v1/challenge:generator/a", false, routeGenerator, "a"},
		{"/noauth/v1/challenge_poller/t", false, routePoller, "t"},
		{"/noauth/v1/challenge:poller/t", false, routePoller, "t"},
		{"/challenge_validator/t", false, routeValidator, "t"},
		{"/challenge:validator/t", false, routeValidator, "t"},
		{"/api/v2/challenge_validator/t", false, routeValidatorAPI, "t"},
		{"/saml/acs", true, routeSAMLACS, ""},
		{"/saml/metadata", true, routeSAMLMetadata, ""},
		{"/saml/acs", false, routeNone, ""},
		{"/saml/acs/", true, routeNone, ""},
		{"/challenge_validatorx/t", false, routeNone, ""},
		{"/", false, routeNone, ""},
		{"", false, routeNone, ""},
	} {
		rt, arg := matchRoute(tc.path, tc.saml, false)
		if rt != tc.rt || arg != tc.arg {
			t.Errorf("matchRoute(%q) = %v %q, want %v %q", tc.path, rt, arg, tc.rt, tc.arg)
		}
	}
	for p, want := range map[string]string{
		"/challenge_validator/x": "/challenge_validator/x", "//evil.com": "/", "https://evil.com": "/",
		"/\\evil.com": "/", "": "/", "relative": "/", "/a\nb": "/",
	} {
		if got := safeReturnPath(p); got != want {
			t.Errorf("safeReturnPath(%q) = %q, want %q", p, got, want)
		}
	}
	if b, err := samlauth.DecodeBase64Loose("aGVs\r\nbG8="); err != nil || string(b) != "hello" {
		t.Errorf("DecodeBase64Loose = %q, %v", b, err)
	}
	if _, err := samlauth.DecodeBase64Loose("!!"); err == nil {
		t.Error("invalid base64 accepted")
	}
}

func TestProvisionErrors(t *testing.T) {
	for _, tc := range []struct {
		h    Handler
		want string
	}{
		{Handler{}, "jwt_secret"},
		{Handler{JWTSecret: "{env.CONSOLEME_AUTH_TEST_UNSET_VAR}"}, "jwt_secret"},
		{Handler{JWTSecret: "s", PublicURL: "ftp://x"}, "public_url"},
		{Handler{JWTSecret: "s", PublicURL: "https://x/?q=1"}, "public_url"},
		{Handler{JWTSecret: "s", CookieName: "bad name"}, "cookie_name"},
		{Handler{JWTSecret: "s", EmailClaim: "groups"}, "jwt settings"},
		{Handler{JWTSecret: "s", Store: &StoreConfig{Type: "etcd"}}, "store"},
		{Handler{JWTSecret: "s", SAML: &SAMLConfig{}}, "sp_cert"},
		{Handler{JWTSecret: "s", SAML: &SAMLConfig{SPCert: "/nonexistent.crt", SPKey: "/nonexistent.key", IDPMetadataFile: "x"}}, "sp_cert"},
	} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		h := tc.h
		err := h.Provision(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Provision(%+v) = %v, want an error naming %s", tc.h, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "unit-test-secret") {
			t.Error("error leaks the secret")
		}
		_ = h.Cleanup()
	}
}

func TestProvisionExpandsPlaceholders(t *testing.T) {
	t.Setenv("CONSOLEME_AUTH_TEST_SECRET", "from-env")
	h := newTestHandler(t, func(h *Handler) { h.JWTSecret = "{env.CONSOLEME_AUTH_TEST_SECRET}" })
	if h.JWTSecret != "from-env" {
		t.Errorf("secret = %q", h.JWTSecret)
	}
	if h.CookieName != "consoleme_auth" || time.Duration(h.JWTExpiration) != time.Hour || h.EmailClaim != "email" ||
		h.GroupsClaim != "groups" || time.Duration(h.ChallengeTTL) != 2*time.Minute {
		t.Errorf("defaults not applied: %+v", h)
	}
	if !errors.Is(h.Validate(), nil) {
		t.Error("provisioned handler does not validate")
	}
}

// TestApproveWithNullOrigin: under Referrer-Policy: no-referrer browsers
// post the approval form with Origin: null; Sec-Fetch-Site still tells a
// cross-site post.
func TestApproveWithNullOrigin(t *testing.T) {
	h := newTestHandler(t, nil)
	alice := sessionCookie(t, h, "alice@example.com")
	for _, tc := range []struct {
		site string
		want int
	}{{"cross-site", 403}, {"same-site", 403}, {"same-origin", 200}} {
		tok := generate(t, h, "alice@example.com", "192.0.2.1")
		form := approvalForm(t, h, tok, "192.0.2.1", alice)
		r := request("POST", "/challenge_validator/"+tok, "192.0.2.1", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", "null")
		r.Header.Set("Sec-Fetch-Site", tc.site)
		r.AddCookie(alice)
		if rec, _ := serve(t, h, r); rec.Code != tc.want {
			t.Errorf("Origin null, Sec-Fetch-Site %s: %d, want %d", tc.site, rec.Code, tc.want)
		}
	}
}

func TestRedactURI(t *testing.T) {
	tok := "f82e6492-36a3-477d-9dab-98df1a0753a3"
	for _, p := range []string{"/noauth/v1/challenge_poller/", "/challenge_validator/", "/api/v2/challenge_validator/"} {
		if got := redactURI(p + tok); strings.Contains(got, tok) || !strings.HasPrefix(got, p+"f82e6492") {
			t.Errorf("redactURI(%s…) = %q", p, got)
		}
	}
	if got := redactURI("/api/v2/get_roles"); got != "/api/v2/get_roles" {
		t.Errorf("other path changed: %q", got)
	}
}
