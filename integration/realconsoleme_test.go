package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
	"github.com/google/uuid"
)

// realUpstream is the real Netflix ConsoleMe (integration/realconsoleme) behind
// a recording proxy. Caddy proxies to the recorder, which passes every
// request on unchanged and notes what it was, so a test can see both what
// reached ConsoleMe and what ConsoleMe itself answered.
type realUpstream struct {
	CM *testbed.RealConsoleMe

	srv      *httptest.Server
	mu       sync.Mutex
	requests []upstreamRequest
}

// Addr is the recorder's host:port, the upstream Caddy proxies to.
func (u *realUpstream) Addr() string { return strings.TrimPrefix(u.srv.URL, "http://") }

// Secret is ConsoleMe's jwt_secret.
func (u *realUpstream) Secret() string { return u.CM.Secret }

// Requests returns what reached ConsoleMe so far.
func (u *realUpstream) Requests() []upstreamRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamRequest(nil), u.requests...)
}

// Saw counts the requests ConsoleMe received with this method and request URI.
func (u *realUpstream) Saw(method, requestURI string) int {
	n := 0
	for _, r := range u.Requests() {
		if r.Method == method && r.RequestURI == requestURI {
			n++
		}
	}
	return n
}

// realConsoleMeOptions change startRealConsoleMe's defaults.
type realConsoleMeOptions struct {
	// ClockOffset runs ConsoleMe's clock this far from ours (faketime).
	ClockOffset time.Duration
	// Cookie and claim names, as the module's cookie_name, email_claim
	// and groups_claim; ConsoleMe's defaults when empty.
	CookieName, EmailClaim, GroupsClaim string
}

// realConsoleMeLauncher finds the launcher and makes sure ConsoleMe is
// installed; without them the test is skipped, or failed under CI=true.
func realConsoleMeLauncher(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test with the real ConsoleMe, skipped with -short")
	}
	root, _ := testbed.ModuleRoot()
	launcher, err := testbed.LauncherDir(root)
	if err == nil {
		err = testbed.EnsureInstalled(launcher)
	}
	if err != nil {
		msg := fmt.Sprintf("the real ConsoleMe cannot run here: %v", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return launcher
}

// startRealConsoleMe starts a real ConsoleMe of the test's own, with its own
// Redis, the default group mapping and a fresh secret, behind a recording
// proxy. All of it stops when the test ends. Tests that change ConsoleMe's
// configuration or clock, or give a user other groups than the shared
// instance sees (ConsoleMe caches a user's groups for 60 s), use it.
func startRealConsoleMe(t testing.TB, opts ...realConsoleMeOptions) *realUpstream {
	t.Helper()
	var o realConsoleMeOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	launcher := realConsoleMeLauncher(t)
	cm, err := testbed.StartRealConsoleMe(launcher, testbed.RealConsoleMeOptions{
		Secret:      "real-" + uuid.NewString(),
		Dir:         t.TempDir(),
		ClockOffset: o.ClockOffset,
		CookieName:  o.CookieName,
		EmailClaim:  o.EmailClaim,
		GroupsClaim: o.GroupsClaim,
	})
	if errors.Is(err, testbed.ErrNotInstalled) && os.Getenv("CI") != "true" {
		t.Skipf("the real ConsoleMe cannot run here: %v", err) // e.g. no faketime
	}
	if err != nil {
		t.Fatalf("starting the real ConsoleMe: %v", err)
	}
	t.Cleanup(func() {
		cm.Stop()
		if t.Failed() {
			t.Logf("real ConsoleMe's log (last 60 lines):\n%s", lastLines(cm.Log(), 60))
		}
	})
	return recordUpstream(t, cm)
}

// The real ConsoleMe that tests share: one process for the whole run,
// started on first use and stopped by TestMain. Every test that uses it
// gives each user the same groups (alice: engineering and
// consoleme-admins; dave: none), so ConsoleMe's 60 s group cache cannot
// mix them up.
var (
	sharedCMOnce sync.Once
	sharedCM     *testbed.RealConsoleMe
	sharedCMErr  error
)

// sharedRealConsoleMe returns the shared real ConsoleMe behind a recording
// proxy of the test's own.
func sharedRealConsoleMe(t testing.TB) *realUpstream {
	t.Helper()
	launcher := realConsoleMeLauncher(t)
	sharedCMOnce.Do(func() {
		dir, err := os.MkdirTemp(buildDir, "shared-consoleme-")
		if err != nil {
			sharedCMErr = err
			return
		}
		sharedCM, sharedCMErr = testbed.StartRealConsoleMe(launcher, testbed.RealConsoleMeOptions{
			Secret: "shared-" + uuid.NewString(),
			Dir:    dir,
		})
	})
	if sharedCMErr != nil {
		t.Fatalf("starting the shared real ConsoleMe: %v", sharedCMErr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("shared real ConsoleMe's log (last 60 lines):\n%s", lastLines(sharedCM.Log(), 60))
		}
	})
	return recordUpstream(t, sharedCM)
}

// stopSharedRealConsoleMe stops the shared ConsoleMe, if it was started.
func stopSharedRealConsoleMe() {
	if sharedCM != nil {
		sharedCM.Stop()
	}
}

// recordUpstream puts a recording proxy of the test's own in front of cm.
func recordUpstream(t testing.TB, cm *testbed.RealConsoleMe) *realUpstream {
	t.Helper()
	target, _ := url.Parse(cm.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	u := &realUpstream{CM: cm}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := upstreamRequest{Method: r.Method, RequestURI: r.RequestURI, Path: r.URL.Path,
			Header: r.Header.Clone(), Body: body}
		u.mu.Lock()
		u.requests = append(u.requests, rec)
		u.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sendFunc makes one request the way a particular client does (plain http,
// https to Caddy's internal CA, with a client certificate, ...).
type sendFunc func(t testing.TB, method, rawURL string, header http.Header) reply

// plainSend is call without a body.
func plainSend(t testing.TB, method, rawURL string, header http.Header) reply {
	t.Helper()
	return call(t, method, rawURL, header, "")
}

// expectConsoleMeIdentity asks the real ConsoleMe, through Caddy at base,
// who the client is, as Weep and ConsoleMe's UI do: /api/v1/get_roles must
// list exactly the roles ConsoleMe's group mapping gives user (and none of
// another user's), with and without all=true, and /api/v2/user_profile must
// name the user. header carries the session cookie (nil for mTLS, where
// Caddy adds it).
func expectConsoleMeIdentity(t testing.TB, send sendFunc, base string, cm *realUpstream, header http.Header, user idpUser) {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"weep/integration Go-http-client/1.1"}}
	for k, v := range header {
		h[k] = v
	}
	for _, all := range []bool{true, false} {
		path := "/api/v1/get_roles"
		if all {
			path += "?all=true"
		}
		r := send(t, http.MethodGet, base+path, h)
		if r.Status != http.StatusOK {
			t.Errorf("real ConsoleMe refused %s: %s", path, r)
			continue
		}
		var got []string
		if err := json.Unmarshal(r.Body, &got); err != nil {
			t.Errorf("%s: not a JSON list of ARNs: %s", path, r.Body)
			continue
		}
		want := cm.CM.Mapping.RolesFor(user.Email, user.Groups, all)
		if !reflect.DeepEqual(sortedCopy(got), want) {
			t.Errorf("real ConsoleMe's %s for %s (groups %v): %v, want %v", path, user.Email, user.Groups, got, want)
		}
		for who := range cm.CM.Mapping {
			if !strings.Contains(who, "@") || who == user.Email {
				continue
			}
			for _, role := range cm.CM.Mapping.RolesFor(who, nil, true) {
				for _, g := range got {
					if g == role {
						t.Errorf("real ConsoleMe gave %s the role %s of %s", user.Email, role, who)
					}
				}
			}
		}
	}
	r := send(t, http.MethodGet, base+"/api/v2/user_profile", h)
	if r.Status != http.StatusOK {
		t.Errorf("real ConsoleMe's /api/v2/user_profile: %s", excerpt(r.String(), 500))
		return
	}
	var profile struct {
		User string `json:"user"`
	}
	if err := json.Unmarshal(r.Body, &profile); err != nil || profile.User != user.Email {
		t.Errorf("real ConsoleMe's /api/v2/user_profile names %q (%v), want %s", profile.User, err, user.Email)
	}
}

// cookieHeader is the Cookie header that carries a session token.
func cookieHeader(name, value string) http.Header {
	return http.Header{"Cookie": {name + "=" + value}}
}
