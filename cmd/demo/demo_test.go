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
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/oidcauth/oidctest"
	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
	"golang.org/x/net/html"
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
	out := &syncBuffer{}
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

	if err := out.waitFor("Press Ctrl-C to stop.", 60*time.Second, finished); err != nil {
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

	b := newBrowser(t)

	t.Run("by hand", func(t *testing.T) {
		// Step 1: the printed generator command, called as Weep calls it.
		var ch challenge
		getJSON(t, generatorURL, "", http.StatusOK, &ch)
		if !strings.HasPrefix(ch.ChallengeURL, caddyURL+"/challenge_validator/") ||
			!strings.HasPrefix(ch.PollingURL, caddyURL+"/noauth/v1/challenge_poller/") {
			t.Fatalf("generator: %+v", ch)
		}
		var creds credentials
		getJSON(t, ch.PollingURL, "", http.StatusOK, &creds)
		if creds.Status != "pending" {
			t.Fatalf("poll before approval: %+v, want pending", creds)
		}

		// Step 2: the browser opens challenge_url and lands on the IdP's
		// login form, on the other host name.
		p := b.get(ch.ChallengeURL)
		login := p.formWith(t, "password")
		if p.URL.Host != strings.TrimPrefix(idpURL, "http://") || p.URL.Path != "/sso" {
			t.Fatalf("challenge_url led to %s, want the IdP's /sso", p.URL)
		}
		if login.Fields.Get("user") != cfg.User {
			t.Errorf("login form: user prefilled with %q, want %q", login.Fields.Get("user"), cfg.User)
		}
		// A wrong password gets the form again with an error.
		login.Fields.Set("password", "wrong")
		p = b.submit(login)
		if !strings.Contains(p.Body, "Invalid username or password") {
			t.Fatalf("wrong password: want the login form with an error, got %d\n%s", p.Status, p.Body)
		}
		login = p.formWith(t, "password")
		login.Fields.Set("password", cfg.Password)
		p = b.submit(login)

		// The IdP answers with the form that a script submits at once: the
		// signed assertion, POSTed cross-site to Caddy's ACS, which signs the
		// browser in and sends it back to the challenge.
		assertion := p.formWith(t, "SAMLResponse")
		if assertion.Action != caddyURL+"/saml/acs" {
			t.Fatalf("the IdP posts to %s, want %s/saml/acs", assertion.Action, caddyURL)
		}
		p = b.submit(assertion)
		if p.URL.String() != ch.ChallengeURL {
			t.Fatalf("after the ACS the browser is at %s, want %s\n%s", p.URL, ch.ChallengeURL, p.Body)
		}
		if !strings.Contains(p.Body, `id="user">`+cfg.User+"<") {
			t.Errorf("the approval page does not name %s:\n%s", cfg.User, p.Body)
		}
		approve := p.formWith(t, "nonce")
		p = b.submit(approve)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "You've successfully authenticated to ConsoleMe and may now close this page.") {
			t.Fatalf("approving: %d\n%s", p.Status, p.Body)
		}

		// Step 3: the poll hands out the token, exactly once.
		getJSON(t, ch.PollingURL, "", http.StatusOK, &creds)
		if creds.Status != "success" || creds.CookieName != "consoleme_auth" || creds.User != cfg.User || creds.EncodedJWT == "" {
			t.Fatalf("poll after approval: %+v", creds)
		}
		if d := time.Until(time.Unix(creds.Expiration, 0)); d < 55*time.Minute || d > 61*time.Minute {
			t.Errorf("expiration is %s from now, want about 1h", d)
		}
		var again credentials
		getJSON(t, ch.PollingURL, "", http.StatusOK, &again)
		if again.Status != "unknown" {
			t.Errorf("second poll after success: %+v, want unknown", again)
		}

		// Step 4: the printed get_roles command, with the token as the
		// cookie: ConsoleMe accepts it and maps the groups to roles (the
		// stand-in: one role per group; the real one: its group mapping).
		rolesURL := match(t, rolesCurl, `'(http\S+)'`)
		var roles rolesResponse
		getJSON(t, rolesURL, "consoleme_auth="+creds.EncodedJWT, http.StatusOK, &roles)
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
		getJSON(t, rolesURL, "consoleme_auth="+creds.EncodedJWT+"x", http.StatusForbidden, &refusal)
		if refusal["code"] != "invalid_jwt" {
			t.Errorf("get_roles with a tampered token: %v, want code invalid_jwt", refusal)
		}
		getJSON(t, rolesURL, "", http.StatusForbidden, &refusal)
		if refusal["title"] != "Forbidden" {
			t.Errorf("get_roles without a cookie: %v, want ConsoleMe's problem JSON", refusal)
		}

		// The browser is signed in to ConsoleMe too: the ACS set the cookie.
		if real {
			p = b.get(caddyURL + "/api/v2/user_profile")
			var profile struct {
				User string `json:"user"`
			}
			if err := json.Unmarshal([]byte(p.Body), &profile); err != nil || profile.User != cfg.User {
				t.Errorf("ConsoleMe's user_profile in the browser: %d %.300s, want it to name %s", p.Status, p.Body, cfg.User)
			}
			return
		}
		p = b.get(caddyURL + "/")
		home := "Signed in to ConsoleMe as " + cfg.User + ", groups: " + strings.Join(cfg.Groups, ", ")
		if !strings.Contains(textOf(p.Body), home) {
			t.Errorf("ConsoleMe's home page: want %q, got\n%s", home, textOf(p.Body))
		}
		if p := getPage(t, caddyURL+"/"); !strings.Contains(textOf(p), "Not signed in to ConsoleMe.") {
			t.Errorf("ConsoleMe's home page without a cookie:\n%s", textOf(p))
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
		p := b.get(challengeURL)
		if p.URL.String() != challengeURL {
			t.Fatalf("a signed-in browser was sent to %s instead of the approval page", p.URL)
		}
		p = b.submit(p.formWith(t, "nonce"))
		if !strings.Contains(p.Body, "You've successfully authenticated to ConsoleMe") {
			t.Fatalf("approving: %d\n%s", p.Status, p.Body)
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

// browser is an HTTP client that keeps cookies and follows redirects, and
// submits forms with the Origin and Sec-Fetch-Site headers a browser sends.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, client: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

// page is where a request ended up, after redirects.
type page struct {
	URL            *url.URL
	Status         int
	Body           string
	ReferrerPolicy string
}

func (b *browser) get(u string) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// submit posts a form from the page it is on. Like a browser (the Fetch
// standard's "append a request Origin header"), it sends "Origin: null"
// when that page's Referrer-Policy is no-referrer, as the module's approval
// page's is: Chromium does exactly that.
func (b *browser) submit(f form) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.Action, strings.NewReader(f.Fields.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	origin := f.from.URL.Scheme + "://" + f.from.URL.Host
	if f.from.ReferrerPolicy == "no-referrer" {
		req.Header.Set("Origin", "null")
	} else {
		req.Header.Set("Origin", origin)
	}
	site := "same-origin"
	if req.URL.Scheme+"://"+req.URL.Host != origin {
		// Good enough here: the demo's two origins are different sites.
		site = "cross-site"
	}
	req.Header.Set("Sec-Fetch-Site", site)
	return b.do(req)
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return &page{URL: resp.Request.URL, Status: resp.StatusCode, Body: string(body),
		ReferrerPolicy: resp.Header.Get("Referrer-Policy")}
}

// form is an HTML form: its absolute action, the values it would send and
// the page it is on.
type form struct {
	Action string
	Fields url.Values
	from   *page
}

// formWith returns the page's first form with a field called name.
func (p *page) formWith(t *testing.T, name string) form {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(p.Body))
	if err != nil {
		t.Fatal(err)
	}
	var forms []form
	var cur *form
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				action, _ := p.URL.Parse(attr(n, "action"))
				forms = append(forms, form{Action: action.String(), Fields: url.Values{}, from: p})
				cur = &forms[len(forms)-1]
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c)
				}
				cur = nil
				return
			case "input":
				if cur != nil && attr(n, "name") != "" {
					cur.Fields.Set(attr(n, "name"), attr(n, "value"))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	for _, f := range forms {
		if _, ok := f.Fields[name]; ok {
			return f
		}
	}
	t.Fatalf("no form with a %q field at %s (%d):\n%s", name, p.URL, p.Status, p.Body)
	return form{}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// textOf is the text of an HTML page, without tags, spaces collapsed.
func textOf(body string) string {
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		return body
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "style" || n.Data == "script") {
			return
		}
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return strings.Join(strings.Fields(b.String()), " ")
}

// getJSON calls u as Weep does and decodes the answer, which must have the
// given status.
func getJSON(t *testing.T, u, cookie string, status int, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %d %s, want %d", u, resp.StatusCode, body, status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", u, err, body)
	}
}

func getPage(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
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

// syncBuffer collects the demo's output, which run writes from its own
// goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the output contains want, run ends, or timeout passes.
func (s *syncBuffer) waitFor(want string, timeout time.Duration, finished <-chan struct{}) error {
	deadline := time.After(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(s.String(), want) {
		select {
		case <-finished:
			return errors.New("the demo ended before it was ready")
		case <-deadline:
			return fmt.Errorf("the demo did not print %q within %s", want, timeout)
		case <-tick.C:
		}
	}
	return nil
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
	resp, err := http.Get(d.CaddyURL + "/noauth/v1/challenge_generator/" + cfg.User)
	if err != nil {
		t.Fatal(err)
	}
	var gen struct {
		ChallengeURL string `json:"challenge_url"`
	}
	err = json.NewDecoder(resp.Body).Decode(&gen)
	resp.Body.Close()
	if err != nil || gen.ChallengeURL == "" {
		t.Fatalf("generator: %v %+v", err, gen)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Get(gen.ChallengeURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, d.IdPURL+"/auth?") || !strings.Contains(loc, "code_challenge=") {
		t.Errorf("challenge link: %d to %q, want a redirect to the provider %s with PKCE", resp.StatusCode, loc, d.IdPURL)
	}
}
