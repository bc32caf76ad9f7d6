package integration

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/oidcauth/oidctest"
	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// The refusals of issue 18 proven through the running Caddy, in Chromium,
// against the real OpenID provider: a replayed callback, a callback with
// an altered state or another login's state, and ID tokens that the
// provider itself issues wrong (for another audience, expired, with
// another nonce, unsigned). The provider misbehaves on demand through its
// test-control endpoints (oidctest.ForgeNextIDToken, HoldNextRedirect);
// the forged tokens are re-signed with its own key, so each is refused for
// the one claim changed, not for a bad signature.
//
// Every refusal must leave: the module's page with a 4xx status and clear
// text (the reason itself stays in the log), no consoleme_auth cookie, one
// consoleme_auth_logins_total{method="oidc",result="refused"} more and no
// success counted, one "OIDC login refused" line at info level with the
// reason, and neither the ID token nor the code anywhere in Caddy's log.

const (
	oidcRefusedMetric = `consoleme_auth_logins_total{method="oidc",result="refused"}`
	oidcSuccessMetric = `consoleme_auth_logins_total{method="oidc",result="success"}`
)

// oidcRefusal is what a refused callback must show.
type oidcRefusal struct {
	Status int    // of the callback's answer
	Page   string // in the page's text
	Reason string // in the log line's reason
	// Grant is the provider's reason for refusing the code at its token
	// endpoint; "" when the provider must have refused nothing (the module
	// refused on its own, or the provider issued a token).
	Grant string
}

// The pages of the refusals, as the module words them.
var (
	refusedNotAccepted = oidcRefusal{Status: http.StatusForbidden, Page: "answer was not accepted"}
	refusedUsedState   = oidcRefusal{Status: http.StatusBadRequest, Page: "expired or was already used",
		Reason: "unknown, expired or already used state"}
	refusedCode = oidcRefusal{Status: http.StatusForbidden, Page: "refused to complete this sign-in",
		Reason: "invalid_grant", Grant: "invalid_grant: code_verifier does not match code_challenge"}
)

// oidcMark is where the log, the counters and the provider's record stood
// before a step.
type oidcMark struct {
	log     int
	metrics map[string]float64
	op      oidctest.Record
}

// mark notes where the log, the counters and the provider's record stand
// now.
func (w *oidcWorld) mark(t *testing.T) oidcMark {
	t.Helper()
	rec, err := w.OP.Record()
	if err != nil {
		t.Fatal(err)
	}
	return oidcMark{log: len(w.Caddy.Output()), metrics: scrape(t, w.Admin), op: rec}
}

// logLines decodes Caddy's JSON log lines written since m whose msg is msg.
func (w *oidcWorld) logLines(t *testing.T, m oidcMark, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(w.Caddy.Output()[m.log:], "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) == nil && entry["msg"] == msg {
			out = append(out, entry)
		}
	}
	return out
}

// lastCallback is the last /oidc/callback URL the tab was sent to.
func lastCallback(t *testing.T, tb *tab, base string) string {
	t.Helper()
	found := ""
	for _, r := range tb.Requests() {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL, base+"/oidc/callback?") {
			found = r.URL
		}
	}
	if found == "" {
		t.Fatalf("the browser made no callback:\n%s", tb.NavigationLog())
	}
	return found
}

// withState is the callback URL callback with its state replaced.
func withState(t *testing.T, callback, state string) string {
	t.Helper()
	u, err := url.Parse(callback)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("state", state)
	u.RawQuery = q.Encode()
	return u.String()
}

// queryOf is the parameter name of the URL rawURL.
func queryOf(t *testing.T, rawURL, name string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	v := u.Query().Get(name)
	if v == "" {
		t.Fatalf("%s has no %s", rawURL, name)
	}
	return v
}

// startLoginElsewhere starts a login at path from another client (the Go
// client, no cookies) and returns its state, which the module now holds
// as a login in progress.
func (w *oidcWorld) startLoginElsewhere(t *testing.T, path string) string {
	t.Helper()
	r := call(t, http.MethodGet, w.Base+path, nil, "")
	loc := r.Header.Get("Location")
	if r.Status != http.StatusFound || !strings.HasPrefix(loc, w.OP.Issuer+"/") {
		t.Fatalf("GET %s without a session: %s; want a redirect to the provider", path, r)
	}
	return queryOf(t, loc, "state")
}

// expectRefused checks that the callback the tab made last was refused as
// want says, with the effects the file's comment lists since m. secrets
// (ID tokens, codes) must not appear in Caddy's log.
func (w *oidcWorld) expectRefused(t *testing.T, tb *tab, m oidcMark, want oidcRefusal, secrets ...string) {
	t.Helper()
	tb.WaitText("Sign-in failed")
	callback := lastCallback(t, tb, w.Base)
	if d := tb.WaitDocument(http.MethodGet, callback); d.Status != int64(want.Status) || d.Location != "" {
		t.Errorf("the callback was answered %d (Location %q), want %d and a page", d.Status, d.Location, want.Status)
	}
	page := tb.Text()
	if !strings.Contains(page, want.Page) {
		t.Errorf("the refusal page lacks %q:\n%s", want.Page, page)
	}
	if want.Reason != "" && strings.Contains(page, want.Reason) {
		t.Errorf("the refusal page shows the log's reason %q:\n%s", want.Reason, page)
	}
	if c := tb.Cookie(w.Base, "consoleme_auth"); c != nil {
		t.Errorf("a refused callback left a session cookie (%d bytes)", len(c.Value))
	}
	now := scrape(t, w.Admin)
	if d := now[oidcRefusedMetric] - m.metrics[oidcRefusedMetric]; d != 1 {
		t.Errorf("%s rose by %v, want 1", oidcRefusedMetric, d)
	}
	if d := now[oidcSuccessMetric] - m.metrics[oidcSuccessMetric]; d != 0 {
		t.Errorf("%s rose by %v, want 0", oidcSuccessMetric, d)
	}
	if n := len(w.logLines(t, m, "OIDC login")); n != 0 {
		t.Errorf("%d OIDC login audit lines for a refused callback", n)
	}
	lines := w.logLines(t, m, "OIDC login refused")
	if len(lines) != 1 {
		t.Fatalf("%d \"OIDC login refused\" lines, want 1:\n%s", len(lines), w.Caddy.Output()[m.log:])
	}
	reason, _ := lines[0]["reason"].(string)
	if lines[0]["level"] != "info" || !strings.Contains(reason, want.Reason) {
		t.Errorf("the refusal was logged at %v with reason %q; want info and %q", lines[0]["level"], reason, want.Reason)
	}
	t.Logf("refused: %s", reason)
	rec, err := w.OP.Record()
	if err != nil {
		t.Fatal(err)
	}
	grants := rec.GrantErrors[len(m.op.GrantErrors):]
	if (want.Grant == "" && len(grants) != 0) || (want.Grant != "" && (len(grants) != 1 || grants[0] != want.Grant)) {
		t.Errorf("the provider refused grants %q, want %q", grants, want.Grant)
	}
	w.expectNotLogged(t, append(secrets, queryOf(t, callback, "code"))...)
}

// expectNotLogged checks that no secret, nor any long part of one (a
// segment of a JWT), is in Caddy's log.
func (w *oidcWorld) expectNotLogged(t *testing.T, secrets ...string) {
	t.Helper()
	out := w.Caddy.Output()
	for _, s := range secrets {
		for _, part := range append(strings.Split(s, "."), s) {
			if len(part) >= 16 && strings.Contains(out, part) {
				t.Errorf("Caddy's log holds a secret (%d characters of %d)", len(part), len(s))
			}
		}
	}
}

// forgedToken is the ID token the provider forged since m, after checking
// that it forged exactly one (so the refusal is the forgery's).
func (w *oidcWorld) forgedToken(t *testing.T, m oidcMark) string {
	t.Helper()
	rec, err := w.OP.Record()
	if err != nil {
		t.Fatal(err)
	}
	before := len(m.op.ForgedIDTokens)
	if len(rec.ForgedIDTokens) != before+1 {
		t.Fatalf("the provider forged %d ID tokens in this step, want 1", len(rec.ForgedIDTokens)-before)
	}
	return rec.ForgedIDTokens[before]
}

// The provider issues a wrong ID token (re-signed with its own key, or
// unsigned) once per case, at the CLI flow's validator and at web_login;
// each is refused. A genuine login afterwards goes through: the refusals
// came from the forgeries, not from a broken setup.
func TestOIDCForgedIDTokensRefusedInChromium(t *testing.T) {
	w := newObservedOIDCWorld(t, func(s *testbed.Site) { s.Auth.WebLogin = &testbed.WebLogin{} })
	browser := startChromium(t)
	now := time.Now()
	cases := []struct {
		name   string
		cli    bool // the CLI flow's validator, else web_login
		forge  oidctest.Forgery
		reason string
	}{
		{"wrong audience", true, oidctest.Forgery{Claims: map[string]any{"aud": "another-client"}},
			`expected audience "consoleme"`},
		{"expired", false, oidctest.Forgery{Claims: map[string]any{
			"iat": now.Add(-20 * time.Minute).Unix(), "exp": now.Add(-10 * time.Minute).Unix()}},
			"ID token expired at"},
		{"another nonce", true, oidctest.Forgery{Claims: map[string]any{"nonce": "the-nonce-of-another-login"}},
			"nonce does not match"},
		{"alg none", false, oidctest.Forgery{Unsigned: true},
			`unexpected signature algorithm "none"`},
	}
	forged := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := w.OP.ForgeNextIDToken(tc.forge); err != nil {
				t.Fatal(err)
			}
			tb := browser.newTab(t)
			m := w.mark(t)
			want := refusedNotAccepted
			want.Reason = tc.reason
			if tc.cli {
				gen := call(t, http.MethodGet, w.Base+"/noauth/v1/challenge_generator/"+userAlice.Email, nil, "").object(t)
				challengeURL, _ := gen["challenge_url"].(string)
				pollingURL, _ := gen["polling_url"].(string)
				tb.Navigate(challengeURL)
				signInAtProvider(tb, "alice")
				w.expectRefused(t, tb, m, want)
				if p := call(t, http.MethodGet, pollingURL, nil, "").object(t); p["status"] != "pending" {
					t.Errorf("poll after the refused sign-in: %v, want pending", p)
				}
			} else {
				path := "/echo/forged/" + strings.ReplaceAll(tc.name, " ", "-")
				tb.Navigate(w.Base + path)
				signInAtProvider(tb, "alice")
				w.expectRefused(t, tb, m, want)
				for _, r := range w.Upstream.Requests() {
					if r.Path == path {
						t.Errorf("the page asked for reached ConsoleMe after a refused sign-in: %+v", r)
					}
				}
			}
			w.expectNotLogged(t, w.forgedToken(t, m))
			forged++
		})
	}

	t.Run("genuine afterwards", func(t *testing.T) {
		m := w.mark(t)
		tb := browser.newTab(t)
		w.signInTo(t, tb, "/echo/genuine")
		if d := scrape(t, w.Admin)[oidcSuccessMetric] - m.metrics[oidcSuccessMetric]; d != 1 {
			t.Errorf("%s rose by %v, want 1", oidcSuccessMetric, d)
		}
		if rec, err := w.OP.Record(); err != nil || len(rec.ForgedIDTokens) != forged {
			t.Errorf("the provider forged %d ID tokens (%v), want only the %d asked for", len(rec.ForgedIDTokens), err, forged)
		}
	})
}

// A callback made again after its login succeeded is refused, in another
// browser as anywhere: its state was usable once, so the module refuses it
// without asking the provider. Its code under the state of another login
// in progress is redeemed with that login's PKCE verifier, which the
// provider refuses (before it would notice the code is spent). Neither
// signs anyone in nor counts a second login.
func TestOIDCReplayedCallbackRefusedInChromium(t *testing.T) {
	w := newObservedOIDCWorld(t, func(s *testbed.Site) { s.Auth.WebLogin = &testbed.WebLogin{} })
	browser := startChromium(t)
	tb := browser.newTab(t)
	w.signInTo(t, tb, "/echo/first")
	callback := lastCallback(t, tb, w.Base)

	t.Run("the same callback", func(t *testing.T) {
		m := w.mark(t)
		again := browser.newTab(t)
		again.Navigate(callback)
		w.expectRefused(t, again, m, refusedUsedState)
	})
	t.Run("its code under another login's state", func(t *testing.T) {
		state := w.startLoginElsewhere(t, "/echo/elsewhere")
		m := w.mark(t)
		again := browser.newTab(t)
		again.Navigate(withState(t, callback, state))
		w.expectRefused(t, again, m, refusedCode)
	})

	if n := scrape(t, w.Admin)[oidcSuccessMetric]; n != 1 {
		t.Errorf("%s = %v after the replays, want the one genuine login", oidcSuccessMetric, n)
	}
	if n := strings.Count(w.Caddy.Output(), `"msg":"OIDC login"`); n != 1 {
		t.Errorf("%d OIDC login audit lines, want 1", n)
	}
}

// The provider's redirect back is held, so the test chooses the callback:
// the genuine code with an altered state, and with the state of another
// login in progress, is refused; then the genuine callback, still unused,
// completes the CLI flow's login in the user's browser.
func TestOIDCMismatchedStateRefusedInChromium(t *testing.T) {
	w := newObservedOIDCWorld(t)
	browser := startChromium(t)
	gen := call(t, http.MethodGet, w.Base+"/noauth/v1/challenge_generator/"+userAlice.Email, nil, "").object(t)
	challengeURL, _ := gen["challenge_url"].(string)
	pollingURL, _ := gen["polling_url"].(string)

	if err := w.OP.HoldNextRedirect(); err != nil {
		t.Fatal(err)
	}
	tb := browser.newTab(t)
	tb.Navigate(challengeURL)
	signInAtProvider(tb, "alice")
	tb.WaitVisible("#held")
	rec, err := w.OP.Record()
	if err != nil || len(rec.HeldRedirects) != 1 {
		t.Fatalf("held redirects %q (%v), want 1", rec.HeldRedirects, err)
	}
	genuine := rec.HeldRedirects[0]
	if !strings.HasPrefix(genuine, w.Base+"/oidc/callback?") {
		t.Fatalf("the held redirect %q is not to the callback", genuine)
	}
	state := queryOf(t, genuine, "state")
	code := queryOf(t, genuine, "code")

	t.Run("altered state", func(t *testing.T) {
		altered := []byte(state) // one character changed: still a well-formed state
		if altered[len(altered)/2] == 'A' {
			altered[len(altered)/2] = 'B'
		} else {
			altered[len(altered)/2] = 'A'
		}
		m := w.mark(t)
		attacker := browser.newTab(t)
		attacker.Navigate(withState(t, genuine, string(altered)))
		w.expectRefused(t, attacker, m, refusedUsedState, state)
	})
	t.Run("another login's state", func(t *testing.T) {
		other := call(t, http.MethodGet, w.Base+"/noauth/v1/challenge_generator/"+userAlice.Email, nil, "").object(t)
		otherURL, _ := other["challenge_url"].(string)
		otherState := w.startLoginElsewhere(t, strings.TrimPrefix(otherURL, w.Base))
		m := w.mark(t)
		attacker := browser.newTab(t)
		attacker.Navigate(withState(t, genuine, otherState))
		w.expectRefused(t, attacker, m, refusedCode, state)
	})

	t.Run("the genuine callback", func(t *testing.T) {
		m := w.mark(t)
		tb.Navigate(genuine)
		tb.WaitVisible("#approve")
		tb.Click("#approve")
		tb.WaitText("You've successfully authenticated to ConsoleMe")
		p := call(t, http.MethodGet, pollingURL, nil, "").object(t)
		if p["status"] != "success" || p["user"] != userAlice.Email {
			t.Fatalf("poll after the genuine callback: %v", p)
		}
		if d := scrape(t, w.Admin)[oidcSuccessMetric] - m.metrics[oidcSuccessMetric]; d != 1 {
			t.Errorf("%s rose by %v, want 1", oidcSuccessMetric, d)
		}
		w.expectNotLogged(t, code, state)
	})
}
