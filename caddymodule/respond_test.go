package consolemeauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// A site with handle_errors gets the module's browser refusals as errors
// it can restyle; without it the module's own page is served.
func TestBrowserRefusalsGoToHandleErrors(t *testing.T) {
	h := newTestHandler(t, nil)
	r := request("GET", "/challenge_validator/not.a.token", "192.0.2.1", nil)
	srv := &caddyhttp.Server{Errors: &caddyhttp.HTTPErrorConfig{Routes: caddyhttp.RouteList{{}}}}
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.ServerCtxKey, srv))
	err := h.ServeHTTP(httptest.NewRecorder(), r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest || !strings.Contains(he.Err.Error(), "malformed") {
		t.Fatalf("with handle_errors: %v, want a 400 HandlerError naming the cause", err)
	}
	// CLI routes keep ConsoleMe's JSON either way.
	r = request("GET", "/noauth/v1/challenge_poller/not.a.token", "192.0.2.1", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.ServerCtxKey, srv))
	rec, _ := serve(t, h, r)
	if rec.Code != http.StatusBadRequest || decode(t, rec)["code"] != "invalid_token" {
		t.Errorf("CLI route with handle_errors: %d %s", rec.Code, rec.Body)
	}
	// Without handle_errors: the page.
	rec, _ = serve(t, h, request("GET", "/challenge_validator/not.a.token", "192.0.2.1", nil))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Header().Get("Content-Type"), "text/html") {
		t.Errorf("without handle_errors: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
}

// {http.auth.user.id} names the user of every session the module verified.
func TestUserPlaceholderSetForVerifiedSessions(t *testing.T) {
	h := newWebLoginHandler(t, nil)
	withReplacer := func(r *http.Request) (*http.Request, *caddy.Replacer) {
		repl := caddy.NewReplacer()
		return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)), repl
	}
	// web_login
	r, repl := withReplacer(request("GET", "/policies", "192.0.2.1", nil))
	r.AddCookie(sessionCookie(t, h, "alice@example.com"))
	if _, passed := serve(t, h, r); !passed {
		t.Fatal("a session did not pass web_login")
	}
	if got, _ := repl.GetString("http.auth.user.id"); got != "alice@example.com" {
		t.Errorf("web_login: http.auth.user.id = %q", got)
	}
	// approval
	tok := generate(t, h, "bob@example.com", "192.0.2.1")
	r, repl = withReplacer(request("GET", "/challenge_validator/"+tok, "192.0.2.1", nil))
	r.AddCookie(sessionCookie(t, h, "bob@example.com"))
	serve(t, h, r)
	if got, _ := repl.GetString("http.auth.user.id"); got != "bob@example.com" {
		t.Errorf("approval page: http.auth.user.id = %q", got)
	}
}

// TestContentLength checks the table of lengths against strconv.
func TestContentLength(t *testing.T) {
	for _, n := range []int{0, 7, 99, 100, 202, 1023, 1024, 65536} {
		if got, want := contentLength(n), strconv.Itoa(n); got != want {
			t.Errorf("contentLength(%d) = %q, want %q", n, got, want)
		}
	}
}
