package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/oidcauth/oidctest"
	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// TestDemo starts the demo as `go run ./cmd/demo` would (on free ports) and
// walks the challenge login twice: by hand with the printed commands and a
// browser-like client, then with the built-in Weep-like client; first with
// the stand-in ConsoleMe, then with the real one (-consoleme). Caddy is
// process-wide, so this is the only test that starts the demo, and the two
// runs follow each other.
func TestDemo(t *testing.T) {
	cfg := defaultConfig()
	cfg.CaddyPort, cfg.IdPPort, cfg.UpstreamPort = 0, 0, 0
	cfg.LogLevel = "WARN"
	cfg.ConsoleMe = ""
	t.Run("stand-in", func(t *testing.T) { testDemo(t, cfg) })
	t.Run("real-consoleme", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts the real ConsoleMe; skipped with -short")
		}
		root, err := testbed.ModuleRoot()
		launcher := ""
		if err == nil {
			launcher, err = testbed.LauncherDir(root)
		}
		if err == nil {
			err = testbed.EnsureInstalled(launcher)
		}
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal(err)
			}
			t.Skipf("the real ConsoleMe cannot run here: %v", err)
		}
		cfg.ConsoleMe = launcher
		testDemo(t, cfg)
	})
}

func testDemo(t *testing.T, cfg config) {
	real := cfg.ConsoleMe != ""

	ctx, cancel := context.WithCancel(context.Background())
	out := &testbed.SyncBuffer{}
	var runErr error
	finished := make(chan struct{})
	go func() {
		runErr = run(ctx, cfg, out)
		close(finished)
	}()
	// stop is Ctrl-C: cancel, then wait for run to clean up and return.
	stop := func() error {
		cancel()
		select {
		case <-finished:
			return runErr
		case <-time.After(30 * time.Second):
			return errors.New("run did not return within 30 s of cancelling its context")
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("demo output:\n%s", out.String())
		}
	})

	if err := waitReady(out, "Press Ctrl-C to stop.", 60*time.Second, finished); err != nil {
		t.Fatalf("%v (run: %v)", err, stop())
	}
	instructions := out.String()
	caddyURL := match(t, instructions, `ConsoleMe \(Caddy \+ consoleme_auth\)\s+(\S+)`)
	idpURL := match(t, instructions, `demo SAML IdP \(crewjam/saml\)\s+(\S+)`)
	caddyfile := match(t, instructions, `Caddyfile in use\s+(\S+)`)
	generatorURL := match(t, instructions, `curl -s (\S+/noauth/v1/challenge_generator/\S+)`)
	rolesCurl := match(t, instructions, `(curl -s -H 'Cookie: consoleme_auth=<encoded_jwt>' '\S+')`)
	if !strings.HasPrefix(caddyURL, "http://127.0.0.1:") || !strings.HasPrefix(idpURL, "http://localhost:") {
		t.Fatalf("Caddy at %s and the IdP at %s: want 127.0.0.1 and localhost, so that cookies stay apart", caddyURL, idpURL)
	}
	if !strings.Contains(instructions, "go run ./cmd/demo login -url "+caddyURL+" alice@example.com") {
		t.Errorf("the instructions do not show the login command for a non-default port:\n%s", instructions)
	}
	if _, err := os.Stat(caddyfile); err != nil {
		t.Errorf("the printed Caddyfile: %v", err)
	}

	// The browser sends what Chromium sends with a form: Sec-Fetch-Site,
	// and Origin: null from a page with Referrer-Policy: no-referrer, as
	// the module's approval page is.
	b := testbed.NewBrowser(t)
	b.FetchMetadata = true
	// cli calls ConsoleMe as Weep does: no cookie jar, no redirects.
	cli := testbed.NewClient(testbed.ClientOptions{})
	t.Cleanup(cli.Close)

	t.Run("by hand", func(t *testing.T) {
		// Step 1: the printed generator command, called as Weep calls it.
		var ch challenge
		getJSON(t, cli, generatorURL, "", http.StatusOK, &ch)
		if !strings.HasPrefix(ch.ChallengeURL, caddyURL+"/challenge_validator/") ||
			!strings.HasPrefix(ch.PollingURL, caddyURL+"/noauth/v1/challenge_poller/") {
			t.Fatalf("generator: %+v", ch)
		}
		var creds credentials
		getJSON(t, cli, ch.PollingURL, "", http.StatusOK, &creds)
		if creds.Status != "pending" {
			t.Fatalf("poll before approval: %+v, want pending", creds)
		}

		// Step 2: the browser opens challenge_url and lands on the IdP's
		// login form, on the other host name.
		p := navigate(b, ch.ChallengeURL)
		login := formWith(t, p, "password")
		if p.URL.Host != strings.TrimPrefix(idpURL, "http://") || p.URL.Path != "/sso" {
			t.Fatalf("challenge_url led to %s, want the IdP's /sso", p.URL)
		}
		if user := login.Field("user"); user == nil || user.Value != cfg.User {
			t.Errorf("login form: user field %+v, want it prefilled with %q", user, cfg.User)
		}
		// A wrong password gets the form again with an error.
		login.Field("password").Value = "wrong"
		p = submit(b, p, login, "sign-in")
		if !strings.Contains(string(p.Body), "Invalid username or password") {
			t.Fatalf("wrong password: want the login form with an error, got %s", p)
		}
		login = formWith(t, p, "password")
		login.Field("password").Value = cfg.Password
		p = submit(b, p, login, "sign-in")

		// The IdP answers with the form that a script submits at once: the
		// signed assertion, POSTed cross-site to Caddy's ACS, which signs the
		// browser in and sends it back to the challenge.
		assertion := formWith(t, p, "SAMLResponse")
		if action := actionOf(t, p, assertion); action != caddyURL+"/saml/acs" {
			t.Fatalf("the IdP posts to %s, want %s/saml/acs", action, caddyURL)
		}
		p = submit(b, p, assertion, "")
		if p.URL.String() != ch.ChallengeURL {
			t.Fatalf("after the ACS the browser is at %s, want %s\n%s", p.URL, ch.ChallengeURL, p)
		}
		if !strings.Contains(string(p.Body), `id="user">`+cfg.User+"<") {
			t.Errorf("the approval page does not name %s:\n%s", cfg.User, p)
		}
		approve := formWith(t, p, "nonce")
		p = submit(b, p, approve, "approve")
		if p.Status != http.StatusOK || !strings.Contains(string(p.Body), "You've successfully authenticated to ConsoleMe and may now close this page.") {
			t.Fatalf("approving: %s", p)
		}

		// Step 3: the poll hands out the token, exactly once.
		getJSON(t, cli, ch.PollingURL, "", http.StatusOK, &creds)
		if creds.Status != "success" || creds.CookieName != "consoleme_auth" || creds.User != cfg.User || creds.EncodedJWT == "" {
			t.Fatalf("poll after approval: %+v", creds)
		}
		if d := time.Until(time.Unix(creds.Expiration, 0)); d < 55*time.Minute || d > 61*time.Minute {
			t.Errorf("expiration is %s from now, want about 1h", d)
		}
		var again credentials
		getJSON(t, cli, ch.PollingURL, "", http.StatusOK, &again)
		if again.Status != "unknown" {
			t.Errorf("second poll after success: %+v, want unknown", again)
		}

		// Step 4: the printed get_roles command, with the token as the
		// cookie: ConsoleMe accepts it and maps the groups to roles (the
		// stand-in: one role per group; the real one: its group mapping).
		rolesURL := match(t, rolesCurl, `'(http\S+)'`)
		var roles rolesResponse
		getJSON(t, cli, rolesURL, "consoleme_auth="+creds.EncodedJWT, http.StatusOK, &roles)
		want := cfg.Groups
		if real {
			want = nil
			for _, arn := range demoMapping(cfg).RolesFor(cfg.User, cfg.Groups, true) {
				want = append(want, arn[strings.LastIndex(arn, "/")+1:])
			}
		}
		if got := roleNames(roles); roles.Status != "success" || !slices.Equal(sorted(got), sorted(want)) {
			t.Errorf("get_roles: %+v; roles %v, want %v", roles, got, want)
		}

		// ConsoleMe refuses a token it cannot trust, as Weep expects.
		var refusal map[string]any
		getJSON(t, cli, rolesURL, "consoleme_auth="+creds.EncodedJWT+"x", http.StatusForbidden, &refusal)
		if refusal["code"] != "invalid_jwt" {
			t.Errorf("get_roles with a tampered token: %v, want code invalid_jwt", refusal)
		}
		getJSON(t, cli, rolesURL, "", http.StatusForbidden, &refusal)
		if refusal["title"] != "Forbidden" {
			t.Errorf("get_roles without a cookie: %v, want ConsoleMe's problem JSON", refusal)
		}

		// The browser is signed in to ConsoleMe too: the ACS set the cookie.
		if real {
			p = navigate(b, caddyURL+"/api/v2/user_profile")
			var profile struct {
				User string `json:"user"`
			}
			if err := json.Unmarshal(p.Body, &profile); err != nil || profile.User != cfg.User {
				t.Errorf("ConsoleMe's user_profile in the browser: %d %.300s, want it to name %s", p.Status, p.Body, cfg.User)
			}
			return
		}
		p = navigate(b, caddyURL+"/")
		home := "Signed in to ConsoleMe as " + cfg.User + ", groups: " + strings.Join(cfg.Groups, ", ")
		if !strings.Contains(p.Text(), home) {
			t.Errorf("ConsoleMe's home page: want %q, got\n%s", home, p.Text())
		}
		if p := navigate(testbed.NewBrowser(t), caddyURL+"/"); !strings.Contains(p.Text(), "Not signed in to ConsoleMe.") {
			t.Errorf("ConsoleMe's home page without a cookie:\n%s", p.Text())
		}
	})

	t.Run("built-in client", func(t *testing.T) {
		pr, pw := io.Pipe()
		lines := make(chan string, 100)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(pr)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		var log strings.Builder
		// The desktop's opener is replaced by one that only records the URL.
		opened := make(chan string, 1)
		c := weepClient{BaseURL: caddyURL, PollEvery: 200 * time.Millisecond, Timeout: 30 * time.Second, Out: pw,
			Open: func(u string) error { opened <- u; return nil }, OpenWith: "test opener"}
		type result struct {
			creds *credentials
			err   error
		}
		res := make(chan result, 1)
		loginCtx, cancelLogin := context.WithCancel(context.Background())
		t.Cleanup(cancelLogin)
		go func() {
			creds, err := c.Login(loginCtx, cfg.User)
			pw.Close()
			res <- result{creds, err}
		}()

		// The client prints the challenge URL; "open" it in the browser,
		// which is still signed in: no trip to the IdP this time.
		var challengeURL string
		for challengeURL == "" {
			line, ok := <-lines
			if !ok {
				r := <-res
				t.Fatalf("the client ended before printing a challenge URL: %v\n%s", r.err, log.String())
			}
			log.WriteString(line + "\n")
			if s := strings.TrimSpace(line); strings.HasPrefix(s, caddyURL+"/challenge_validator/") {
				challengeURL = s
			}
		}
		select {
		case u := <-opened:
			if u != challengeURL {
				t.Errorf("the client opened %s, printed %s", u, challengeURL)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("the client did not open the challenge URL")
		}
		p := navigate(b, challengeURL)
		if p.URL.String() != challengeURL {
			t.Fatalf("a signed-in browser was sent to %s instead of the approval page", p.URL)
		}
		p = submit(b, p, formWith(t, p, "nonce"), "approve")
		if !strings.Contains(string(p.Body), "You've successfully authenticated to ConsoleMe") {
			t.Fatalf("approving: %s", p)
		}

		for line := range lines {
			log.WriteString(line + "\n")
		}
		r := <-res
		if r.err != nil {
			t.Fatalf("login: %v\n%s", r.err, log.String())
		}
		if r.creds.User != cfg.User || r.creds.EncodedJWT == "" {
			t.Errorf("login: %+v, want a token for %s", r.creds, cfg.User)
		}
		for _, want := range []string{
			"ConsoleMe accepted the token for " + cfg.User,
			"arn:aws:iam::123456789012:role/engineering",
			"curl -s -H 'Cookie: consoleme_auth=" + r.creds.EncodedJWT + "' '" + caddyURL + "/api/v2/get_roles?all=true'",
		} {
			if !strings.Contains(log.String(), want) {
				t.Errorf("the client's output lacks %q:\n%s", want, log.String())
			}
		}
	})

	t.Run("built-in client, cancelled in the browser", func(t *testing.T) {
		// What `demo login` does: it stops as soon as the browser says
		// "This wasn't me", long before its timeout.
		var log testbed.SyncBuffer
		opened := make(chan string, 1)
		c := weepClient{BaseURL: caddyURL, PollEvery: 200 * time.Millisecond, Timeout: 2 * time.Minute, Out: &log,
			Open: func(u string) error { opened <- u; return nil }, OpenWith: "test opener", StopWhenCancelled: true}
		res := make(chan error, 1)
		go func() {
			_, err := c.Login(context.Background(), cfg.User)
			res <- err
		}()
		var challengeURL string
		select {
		case challengeURL = <-opened:
		case err := <-res:
			t.Fatalf("the client ended before opening a challenge URL: %v\n%s", err, log.String())
		case <-time.After(10 * time.Second):
			t.Fatalf("the client did not open the challenge URL:\n%s", log.String())
		}
		// Let it see the challenge pending first, as a user's click comes.
		if err := testbed.WaitFor(10*time.Second, 50*time.Millisecond, func() error {
			if !strings.Contains(log.String(), "status: pending") {
				return errors.New("not polled yet")
			}
			return nil
		}); err != nil {
			t.Fatalf("%v:\n%s", err, log.String())
		}
		p := navigate(b, challengeURL)
		p = submit(b, p, formWith(t, p, "nonce"), "cancel")
		if !strings.Contains(string(p.Body), "The request was cancelled") {
			t.Fatalf("This wasn't me: %s", p)
		}
		cancelled := time.Now()
		select {
		case err := <-res:
			if !errors.Is(err, testbed.ErrCancelled) || !strings.Contains(err.Error(), "cancelled in the browser") {
				t.Fatalf("login after This wasn't me: %v, want it cancelled in the browser\n%s", err, log.String())
			}
			if d := time.Since(cancelled); d > 5*time.Second {
				t.Errorf("the client took %s to stop", d)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("the client still polls 20 s after This wasn't me:\n%s", log.String())
		}
	})

	// Ctrl-C: everything stops and the temporary directory is gone.
	if err := stop(); err != nil {
		t.Fatalf("stopping: %v", err)
	}
	if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(caddyURL, "http://"), time.Second); err == nil {
		conn.Close()
		t.Errorf("Caddy still listens at %s after stopping", caddyURL)
	}
	if _, err := os.Stat(caddyfile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary directory survived stopping: stat %s: %v", caddyfile, err)
	}
}

// TestVerifyToken pins the demo's stand-in ConsoleMe to ConsoleMe's token
// rules.
func TestVerifyToken(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Unix(1_800_000_000, 0)
	good := map[string]any{"nbf": now.Unix() - 5, "iat": now.Unix(), "exp": now.Unix() + 3600,
		"email": "alice@example.com", "groups": []string{"g1", "g2"}}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for k, v := range good {
			c[k] = v
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	tests := []struct {
		name   string
		token  string
		reject string // "" when valid
	}{
		{"valid", sign(t, "HS256", secret, good), ""},
		{"expires this second", sign(t, "HS256", secret, with("exp", now.Unix())), ""},
		{"no groups", sign(t, "HS256", secret, with("groups", nil)), ""},
		{"no nbf", sign(t, "HS256", secret, with("nbf", nil)), ""},
		{"expired", sign(t, "HS256", secret, with("exp", now.Unix()-1)), "expired"},
		{"nbf in the future", sign(t, "HS256", secret, with("nbf", now.Unix()+1)), "nbf"},
		{"no iat", sign(t, "HS256", secret, with("iat", nil)), "iat"},
		{"float iat", sign(t, "HS256", secret, with("iat", 1.5)), "iat"},
		{"aud", sign(t, "HS256", secret, with("aud", "consoleme")), "aud"},
		{"no email", sign(t, "HS256", secret, with("email", nil)), "email"},
		{"groups not a list", sign(t, "HS256", secret, with("groups", "g1")), "groups"},
		{"other secret", sign(t, "HS256", []byte("other"), good), "signature"},
		{"alg none", sign(t, "none", secret, good), "alg"},
		{"garbage", "not.a.jwt", "padding"},
	}
	standIn := &testbed.StandIn{Secret: string(secret), CookieName: "consoleme_auth", EmailClaim: "email",
		GroupsClaim: "groups", Now: func() time.Time { return now }}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := standIn.CheckToken(tt.token)
			if tt.reject == "" {
				if out.Verdict != testbed.TokenValid {
					t.Fatalf("rejected a valid token: %v %s", out.Verdict, out.Reason)
				}
				if out.Email != "alice@example.com" || out.Groups == nil {
					t.Errorf("identity %+v", out)
				}
				return
			}
			if out.Verdict == testbed.TokenValid || !strings.Contains(out.Reason, tt.reject) {
				t.Errorf("got %v %q, want a rejection mentioning %q", out.Verdict, out.Reason, tt.reject)
			}
		})
	}
}

// TestCaddyfileFormatted keeps the generated Caddyfile in `caddy fmt` form,
// so Caddy prints no "not formatted" warning at start.
func TestCaddyfileFormatted(t *testing.T) {
	got, err := renderCaddyfile(caddyfileData{
		Port: 8480, PublicURL: "http://127.0.0.1:8480", JWTSecret: "00ff",
		IdPMetadataFile: "/tmp/d/idp.xml", SPCert: "/tmp/d/sp.crt", SPKey: "/tmp/d/sp.key",
		Upstream: "127.0.0.1:8482", StorageDir: "/tmp/d/data", LogLevel: "INFO",
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := caddyfile.Format(got); string(want) != string(got) {
		t.Errorf("the Caddyfile is not formatted; caddy fmt makes it:\n%s", want)
	}
}

func TestFlags(t *testing.T) {
	if err := demoMain(context.Background(), []string{"extra"}, io.Discard); err == nil {
		t.Error("an unexpected argument was accepted")
	}
	if err := loginMain(context.Background(), []string{"a", "b"}, io.Discard); err == nil {
		t.Error("two users were accepted")
	}
	if got := splitList(" a, ,b ,"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("splitList: %q", got)
	}
	for in, want := range map[string]string{
		"alice@example.com": "alice@example.com",
		"o'brien":           `'o'\''brien'`,
		"a b":               "'a b'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
	if got := testbed.Quote(`C:\Users\A B\tmp`); got != "`C:\\Users\\A B\\tmp`" {
		t.Errorf("testbed.Quote: %s", got)
	}
}

func TestOpener(t *testing.T) {
	found := func(name string) (string, error) { return "/usr/bin/" + name, nil }
	missing := func(name string) (string, error) { return "", exec.ErrNotFound }
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name, goos string
		getenv     func(string) string
		lookPath   func(string) (string, error)
		want       string
	}{
		{"X11 desktop", "linux", env("DISPLAY", ":0"), found, "/usr/bin/xdg-open"},
		{"Wayland desktop", "freebsd", env("WAYLAND_DISPLAY", "wayland-0"), found, "/usr/bin/xdg-open"},
		{"no desktop", "linux", env(), found, ""},
		{"desktop without xdg-open", "linux", env("DISPLAY", ":0"), missing, ""},
		{"macOS", "darwin", env(), found, "/usr/bin/open"},
		{"Windows", "windows", env("DISPLAY", ":0"), found, ""},
	} {
		if got := opener(tc.goos, tc.getenv, tc.lookPath); got != tc.want {
			t.Errorf("%s: opener = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// sign makes a JWT with the given alg header, HMAC-SHA256 signed.
func sign(t *testing.T, alg string, secret []byte, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": alg})
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	s := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(s))
	return s + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// navigate loads u in b and follows its redirects, as a browser does.
func navigate(b *testbed.Browser, u string) *testbed.Page {
	return b.Follow(b.Get(u))
}

// submit clicks the control clickID of form f on p and follows the
// redirects of the answer.
func submit(b *testbed.Browser, p *testbed.Page, f testbed.HTMLForm, clickID string) *testbed.Page {
	return b.Follow(b.Submit(p, f, clickID))
}

// formWith returns p's first form with a field called name.
func formWith(t *testing.T, p *testbed.Page, name string) testbed.HTMLForm {
	t.Helper()
	for _, f := range p.Forms() {
		if f.Field(name) != nil {
			return f
		}
	}
	t.Fatalf("no form with a %q field at %s", name, p)
	return testbed.HTMLForm{}
}

// actionOf is the absolute URL form f on p posts to.
func actionOf(t *testing.T, p *testbed.Page, f testbed.HTMLForm) string {
	t.Helper()
	u, err := p.URL.Parse(f.Action)
	if err != nil {
		t.Fatalf("form action %q at %s: %v", f.Action, p.URL, err)
	}
	return u.String()
}

// getJSON calls u as Weep does and decodes the answer, which must have the
// given status.
func getJSON(t *testing.T, c *testbed.Client, u, cookie string, status int, v any) {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	if cookie != "" {
		h.Set("Cookie", cookie)
	}
	r, err := c.Do(http.MethodGet, u, h, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != status {
		t.Fatalf("GET %s: %d %s, want %d", u, r.Status, r.Body, status)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", u, err, r.Body)
	}
}

// waitReady waits until the demo's output contains ready, run ends, or
// timeout passes.
func waitReady(out *testbed.SyncBuffer, ready string, timeout time.Duration, finished <-chan struct{}) error {
	ended := false
	err := testbed.WaitFor(timeout, 50*time.Millisecond, func() error {
		if strings.Contains(out.String(), ready) {
			return nil
		}
		select {
		case <-finished:
			ended = true
			return nil
		default:
		}
		return fmt.Errorf("the demo did not print %q", ready)
	})
	if ended {
		return errors.New("the demo ended before it was ready")
	}
	return err
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func roleNames(r rolesResponse) []string {
	var names []string
	for _, role := range r.Data.Roles {
		names = append(names, role.RoleName)
	}
	return names
}

// match returns the first submatch of re in s.
func match(t *testing.T, s, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no match for %s in:\n%s", re, s)
	}
	return m[1]
}

// With -oidc the demo signs in at a real OpenID provider: a challenge link
// sends the browser to the provider's authorization endpoint, with PKCE.
func TestDemoOIDC(t *testing.T) {
	if err := oidctest.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("the OpenID provider cannot run here: %v", err)
	}
	cfg := defaultConfig()
	cfg.CaddyPort, cfg.IdPPort, cfg.UpstreamPort = 0, 0, 0
	cfg.LogLevel, cfg.ConsoleMe, cfg.OIDC = "WARN", "", true
	d, err := start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.close() })
	cli := testbed.NewClient(testbed.ClientOptions{})
	t.Cleanup(cli.Close)
	var gen challenge
	getJSON(t, cli, d.CaddyURL+"/noauth/v1/challenge_generator/"+cfg.User, "", http.StatusOK, &gen)
	if gen.ChallengeURL == "" {
		t.Fatalf("generator: %+v", gen)
	}
	// The browser gets the redirect itself, not where it leads.
	p := testbed.NewBrowser(t).Get(gen.ChallengeURL)
	loc := p.Header.Get("Location")
	if p.Status != http.StatusFound || !strings.HasPrefix(loc, d.IdPURL+"/auth?") || !strings.Contains(loc, "code_challenge=") {
		t.Errorf("challenge link: %d to %q, want a redirect to the provider %s with PKCE", p.Status, loc, d.IdPURL)
	}
}
