package consolemeauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// adminServer serves the admin routes as Caddy's admin endpoint does
// (an APIError becomes its status and a JSON error).
func adminServer(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	for _, rt := range (AdminAPI{}).Routes() {
		mux.HandleFunc(rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := rt.Handler.ServeHTTP(w, r); err != nil {
				var ae caddy.APIError
				if !errors.As(err, &ae) {
					ae = caddy.APIError{HTTPStatus: 500, Err: err}
				}
				if ae.Message == "" {
					ae.Message = ae.Err.Error()
				}
				w.WriteHeader(ae.HTTPStatus)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": ae.Message})
			}
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// The revoke and sessions subcommands reach the site through the admin
// endpoint: a revoked user's token is refused at once, a block shows in
// the listing, and bad input is refused with a clear error.
func TestRevokeThroughTheAdminAPI(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) { h.PublicURL = "https://admin-test.example.com" })
	addr := adminServer(t)
	site := "admin-test.example.com"
	c := issued(t, h, "judy@example.com", "eng")
	out, err := runCommand(t, "sessions", "--address", addr, "--site", site, "--user", "judy@example.com")
	if err != nil || !strings.Contains(out, "1 live session(s) of judy@example.com") || !strings.Contains(out, methodIdP) {
		t.Fatalf("sessions: %v\n%s", err, out)
	}
	out, err = runCommand(t, "revoke", "--address", addr, "--site", site, "--user", "judy@example.com", "--block", "1h")
	if err != nil || !strings.Contains(out, "ended every session of judy@example.com") || !strings.Contains(out, "blocked until") {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	rec, passed := serve(t, h, withCookie("/api/v1/get_credentials", c))
	expectInvalidJWT(t, rec, passed, "after revoke --user")
	out, err = runCommand(t, "sessions", "--address", addr, "--site", site, "--user", "judy@example.com", "--json")
	var listing struct {
		Sites []SiteSessions `json:"sites"`
	}
	if err != nil || json.Unmarshal([]byte(out), &listing) != nil || len(listing.Sites) != 1 ||
		len(listing.Sites[0].Sessions) != 0 || listing.Sites[0].BlockedUntil == nil {
		t.Fatalf("sessions after revoke: %v\n%s", err, out)
	}
	if _, err := runCommand(t, "revoke", "--address", addr, "--site", site, "--user", "judy@example.com", "--unblock"); err != nil {
		t.Fatal(err)
	}
	if _, blocked := h.sessions.revoked.Blocked("judy@example.com", time.Now()); blocked {
		t.Error("unblock did not lift the block")
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--session", "not-an-id"}, "malformed"},
		{[]string{}, "give a user, a session, or both"},
		{[]string{"--user", "a\x01b"}, "control character"},
		{[]string{"--session", newSessionID(), "--block", "1h"}, "need a user"},
		{[]string{"--user", "x@example.com", "--block", "soon"}, "positive duration"},
		{[]string{"--user", "x@example.com", "--site", "nowhere.example.com"}, "no consoleme_auth site matches"},
	} {
		_, err := runCommand(t, append([]string{"revoke", "--address", addr}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("revoke %q: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
	// The endpoint itself refuses what the command would have refused.
	for body, want := range map[string]int{
		`{"session":"not-an-id","site":"admin-test.example.com"}`:              400,
		`{"user":"nobody@example.com","site":"admin-test.example.com"}`:        200,
		`{"session":"` + newSessionID() + `","site":"admin-test.example.com"}`: 200,
		`{"user":"x@example.com","extra":1}`:                                   400,
		`not json`:                                                             400,
	} {
		resp, err := http.Post("http://"+addr+"/consoleme-auth/revoke", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST %s: %d, want %d", body, resp.StatusCode, want)
		}
	}
	if resp, err := http.Get("http://" + addr + "/consoleme-auth/revoke"); err != nil || resp.StatusCode != 405 {
		t.Errorf("GET revoke: %v %v", resp, err)
	}
}
