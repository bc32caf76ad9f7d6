package consolemeauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// FuzzUnmarshalCaddyfile: any input either fails with an error or gives a
// config that marshals to JSON and back to the same config; never a panic.
func FuzzUnmarshalCaddyfile(f *testing.F) {
	for _, s := range []string{
		"consoleme_auth {\njwt_secret x\n}",
		"consoleme_auth {\nstore memory\nmax_pending 5\ngenerator_rate_limit 3 1m\npoller_rate_limit off\n}",
		"consoleme_auth {\nsaml {\nidp_metadata_url https://idp/x\nsp_cert a\nsp_key b\nclock_skew 1m\n}\n}",
		"consoleme_auth {\nallowed_groups a b\ngroups_filter \"x.*\"\nuser_match case_insensitive\n}",
		"consoleme_auth",
		"consoleme_auth {\n}\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		// Tokenize as Caddy's adapter does: NewTestDispenser would end the
		// process (log.Fatal) on input the lexer refuses, such as a bad
		// heredoc marker.
		tokens, err := caddyfile.Tokenize([]byte(src), "Caddyfile")
		if err != nil {
			return
		}
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			return
		}
		b, err := json.Marshal(h)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back Handler
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		b2, _ := json.Marshal(back)
		if string(b) != string(b2) {
			t.Fatalf("round trip changed the config:\n%s\n%s", b, b2)
		}
	})
}

// FuzzRoutes: any path and method gets an answer from the handler or goes
// to next; the module's own answers are 2xx-4xx, never 5xx or a panic.
func FuzzRoutes(f *testing.F) {
	for _, s := range []string{"/noauth/v1/challenge_generator/alice", "/noauth/v1/challenge_poller/abc",
		"/challenge_validator/abc", "/api/v2/challenge_validator/x", "/saml/acs", "/noauth/v1/challenge:generator/%2F..",
		"/challenge:validator/", "/"} {
		f.Add("GET", s)
		f.Add("POST", s)
	}
	h := newFuzzHandler(f)
	f.Fuzz(func(t *testing.T, method, path string) {
		if strings.ContainsAny(method, " \t\r\n") || method == "" {
			return
		}
		u := &url.URL{Path: path}
		r := httptest.NewRequest("GET", "/", nil)
		r.Method = method
		r.URL = u
		r.RequestURI = u.RequestURI()
		rec := httptest.NewRecorder()
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(299); return nil })
		if err := h.ServeHTTP(rec, r, next); err != nil {
			t.Fatalf("%s %q: %v", method, path, err)
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s", method, path, rec.Code, rec.Body)
		}
	})
}

// FuzzACS: any form posted to the ACS is refused with a 4xx page and never
// sets the session cookie (no valid assertion can come out of random input).
// It exercises the form and relay-state handling: a random RelayState
// names no login, so the response itself is rarely verified; samlauth's
// FuzzVerify fuzzes the verification on a login in progress.
func FuzzACS(f *testing.F) {
	f.Add("PHNhbWxwOlJlc3BvbnNlLz4=", "relay")
	f.Add("", "")
	f.Add("!!!", strings.Repeat("r", 200))
	f.Add("PD94bWwgdmVyc2lvbj0iMS4wIj8+PCFET0NUWVBFIHg+PHgvPg==", "x")
	h := newFuzzSAMLHandler(f)
	f.Fuzz(func(t *testing.T, samlResponse, relay string) {
		form := url.Values{"SAMLResponse": {samlResponse}, "RelayState": {relay}}
		r := httptest.NewRequest("POST", "/saml/acs", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		if err := h.ServeHTTP(rec, r, nil); err != nil {
			t.Fatal(err)
		}
		if rec.Code < 400 || rec.Code >= 500 {
			t.Fatalf("status %d for %q/%q", rec.Code, samlResponse, relay)
		}
		if rec.Header().Get("Set-Cookie") != "" {
			t.Fatal("cookie set by a refused response")
		}
	})
}

func newFuzzHandler(f *testing.F) *Handler {
	return newTestHandler(f, func(h *Handler) { h.GeneratorRateLimit, h.PollerRateLimit = &RateLimit{}, &RateLimit{} })
}

func newFuzzSAMLHandler(f *testing.F) *Handler { return newSAMLHandler(f) }
