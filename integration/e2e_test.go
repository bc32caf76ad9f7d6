package integration

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
	"github.com/google/uuid"
)

// TestHappyPath is the whole flow: generator, pending poll, browser login
// through the IdP, approval, one success, unknown afterwards, and the real
// ConsoleMe accepting both the CLI's and the browser's token.
func TestHappyPath(t *testing.T) {
	t.Parallel()
	e := newRealEnv(t, sharedRealConsoleMe(t))
	c := e.generate(t, userAlice.Email, nil)
	e.expectPoll(t, c.PollingURL, nil, "pending")

	b := newBrowser(t)
	hops := e.login(t, b, userAlice, c.ChallengeURL)
	if hops.LoginForm == nil {
		t.Error("a fresh browser was not asked to log in at the IdP")
	}
	// Logging in approves nothing.
	e.expectPoll(t, c.PollingURL, nil, "pending")

	p, form := e.openApproval(t, b, c.ChallengeURL, userAlice.Email, "127.0.0.1")
	e.expectPoll(t, c.PollingURL, nil, "pending")
	e.approve(t, b, p, form)

	s := e.pollSuccess(t, c.PollingURL, nil, userAlice)
	e.expectPoll(t, c.PollingURL, nil, "unknown")

	// ConsoleMe accepts the CLI's token and the browser's own cookie.
	e.upstreamIdentity(t, s.EncodedJWT, userAlice)
	e.upstreamIdentity(t, b.CookieValue(e.Base, "consoleme_auth"), userAlice)
	e.expectNoLeaks(t)
}

// TestPassThrough: requests outside the module's routes reach ConsoleMe
// untouched. This test keeps the stand-in ConsoleMe: it must see exactly
// what reached the upstream, byte for byte, and echo it back.
func TestPassThrough(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	checkPassThrough(t, e, forgeToken(t, "HS256", e.Secret, userAlice, nil))
	e.expectNoLeaks(t)
}

// checkPassThrough sends requests the module must not touch and compares
// what ConsoleMe received with what was sent.
func checkPassThrough(t *testing.T, e *env, jwtValue string) {
	t.Helper()
	body := "hello=world&binary=%00%FF\nsecond line"
	cookies := "a=1; consoleme_auth=" + jwtValue + "; b=two"
	h := http.Header{
		"Content-Type":    {"text/plain; charset=latin1"},
		"X-Custom-Header": {"custom value", "second value"},
		"Authorization":   {"Bearer not-a-jwt"},
		"Cookie":          {cookies},
	}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodGet} {
		sent := body
		if method == http.MethodGet {
			sent = ""
		}
		r := call(t, method, e.Base+"/echo/x/y.json?y=1&y=2&z=%2F&empty=", h, sent)
		if r.Status != http.StatusOK {
			t.Errorf("%s /echo/...: %s", method, r)
			continue
		}
		var got echoReply
		if err := json.Unmarshal(r.Body, &got); err != nil {
			t.Fatalf("echo reply: %v %s", err, r.Body)
		}
		if got.Method != method || got.RequestURI != "/echo/x/y.json?y=1&y=2&z=%2F&empty=" || got.Body != sent {
			t.Errorf("%s passed through as %s %s with body %q", method, got.Method, got.RequestURI, got.Body)
		}
		for _, name := range []string{"Content-Type", "X-Custom-Header", "Authorization"} {
			if !reflect.DeepEqual(got.Header[name], h[name]) {
				t.Errorf("%s: header %s arrived as %q, sent %q", method, name, got.Header[name], h[name])
			}
		}
		want := []echoCookie{{Name: "a", Value: "1"}, {Name: "consoleme_auth", Value: jwtValue}, {Name: "b", Value: "two"}}
		if !reflect.DeepEqual(got.Cookies, want) {
			t.Errorf("%s: cookies arrived as %v, sent %v", method, got.Cookies, want)
		}
	}

	// Paths next to the module's routes are ConsoleMe's.
	for _, path := range []string{"/noauth/v1/other", "/api/v2/get_resource_url?arn=x", "/challenge_validators"} {
		before := len(e.ConsoleMe.Requests())
		call(t, http.MethodGet, e.Base+path, nil, "")
		reqs := e.ConsoleMe.Requests()
		if len(reqs) != before+1 || reqs[len(reqs)-1].RequestURI != path {
			t.Errorf("GET %s did not reach ConsoleMe unchanged", path)
		}
	}
}

// TestWrongUser: a challenge made for bob cannot be approved by alice.
func TestWrongUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.generate(t, "bob@example.com", nil)
	b := newBrowser(t)
	e.login(t, b, userAlice, c.ChallengeURL)
	expectErrorPage(t, b.Get(c.ChallengeURL), http.StatusForbidden)
	e.expectPoll(t, c.PollingURL, nil, "pending")

	// The comparison is exact: a differently cased email is another user.
	c2 := e.generate(t, "Alice@example.com", nil)
	expectErrorPage(t, b.Get(c2.ChallengeURL), http.StatusForbidden)
	e.expectPoll(t, c2.PollingURL, nil, "pending")
}

// TestUnknownChallenge: well-formed tokens nobody generated.
func TestUnknownChallenge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := uuid.NewString()
	e.expectPoll(t, e.Base+"/noauth/v1/challenge_poller/"+token, nil, "unknown")
	b := e.loggedInBrowser(t, userAlice)
	expectErrorPage(t, b.Get(e.Base+"/challenge_validator/"+token), http.StatusNotFound)
}

// TestExpiredChallenge runs with a 2 s challenge TTL and no public_url, so
// the URLs handed out are built from the request.
func TestExpiredChallenge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *moduleConfig) {
		c.ChallengeTTL = "2s"
		c.PublicURL = ""
	})
	b := e.loggedInBrowser(t, userAlice)
	polled := e.generate(t, userAlice.Email, nil)
	viewed := e.generate(t, userAlice.Email, nil)
	e.expectPoll(t, polled.PollingURL, nil, "pending")

	// Wait until a challenge made after those two has expired: then they
	// have too. It stays pending until then, as a poll of it shows.
	probe := e.generate(t, userAlice.Email, nil)
	err := testbed.WaitFor(10*time.Second, 100*time.Millisecond, func() error {
		switch m := e.poll(t, probe.PollingURL, nil); m["status"] {
		case "expired":
			return nil
		case "pending":
			return errors.New("the challenge is still pending")
		default:
			t.Fatalf("polling a challenge until it expires: %v", m)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("a challenge with a 2 s TTL did not expire: %v", err)
	}
	e.expectPoll(t, polled.PollingURL, nil, "expired")
	e.expectPoll(t, polled.PollingURL, nil, "unknown")
	expectErrorPage(t, b.Get(viewed.ChallengeURL), http.StatusGone)
}

// TestOtherClientIP: the poller and the validator are bound to the IP that
// created the challenge, and a refused request consumes nothing.
func TestOtherClientIP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.loggedInBrowser(t, userAlice)

	c := e.generate(t, userAlice.Email, nil)
	e.expectPoll(t, c.PollingURL, fromOtherIP(), "unauthorized")
	e.expectPoll(t, c.PollingURL, nil, "pending")

	// The same browser, seen from another IP.
	b.Header.Set("X-Forwarded-For", otherIP)
	expectErrorPage(t, b.Get(c.ChallengeURL), http.StatusForbidden)
	b.Header.Del("X-Forwarded-For")
	e.expectPoll(t, c.PollingURL, nil, "pending")

	// The refusal did not use up the single view: the rightful owner can
	// still approve, and a poll from elsewhere cannot take the success.
	p, f := e.openApproval(t, b, c.ChallengeURL, userAlice.Email, "127.0.0.1")
	e.approve(t, b, p, f)
	e.expectPoll(t, c.PollingURL, fromOtherIP(), "unauthorized")
	e.pollSuccess(t, c.PollingURL, nil, userAlice)
	e.expectPoll(t, c.PollingURL, nil, "unknown")

	// A challenge created from the other IP shows that IP and cannot be
	// viewed from 127.0.0.1.
	c2 := e.generate(t, userAlice.Email, fromOtherIP())
	expectErrorPage(t, b.Get(c2.ChallengeURL), http.StatusForbidden)
	e.expectPoll(t, c2.PollingURL, nil, "unauthorized")
	e.expectPoll(t, c2.PollingURL, fromOtherIP(), "pending")
}

// TestConcurrentPollers: of 20 simultaneous polls of an approved challenge
// exactly one gets the token.
func TestConcurrentPollers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.loggedInBrowser(t, userAlice)
	for round := 0; round < 3; round++ {
		c := e.generate(t, userAlice.Email, nil)
		p, f := e.openApproval(t, b, c.ChallengeURL, userAlice.Email, "127.0.0.1")
		e.approve(t, b, p, f)

		const pollers = 20
		start := make(chan struct{})
		replies := make([]reply, pollers)
		var wg sync.WaitGroup
		for i := range pollers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				req, _ := http.NewRequest(http.MethodGet, c.PollingURL, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					replies[i] = reply{Status: -1, Body: []byte(err.Error())}
					return
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				replies[i] = reply{Status: resp.StatusCode, Header: resp.Header, Body: body}
			}()
		}
		before := time.Now()
		close(start)
		wg.Wait()

		var successes int
		for _, r := range replies {
			if r.Status != http.StatusOK {
				t.Errorf("round %d: a poller got %s", round, r)
				continue
			}
			m := r.object(t)
			switch m["status"] {
			case "success":
				successes++
				e.checkSuccess(t, m, userAlice, before.Add(-time.Minute))
			case "unknown":
			default:
				t.Errorf("round %d: a poller got %v, want success once and unknown otherwise", round, m)
			}
		}
		if successes != 1 {
			t.Errorf("round %d: %d of %d concurrent pollers got the token, want exactly 1", round, successes, pollers)
		}
	}
}

// TestSessionCookieChecks: the module verifies the browser's cookie with
// ConsoleMe's rules; a bad one sends the browser to the IdP again, a good
// one (even one the module did not mint) does not.
func TestSessionCookieChecks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.generate(t, userAlice.Email, nil)
	bad := map[string]string{
		"forged":     forgeToken(t, "HS256", "another-secret", userAlice, nil),
		"expired":    forgeToken(t, "HS256", e.Secret, userAlice, func(m map[string]any) { m["exp"] = time.Now().Add(-time.Minute).Unix() }),
		"future nbf": forgeToken(t, "HS256", e.Secret, userAlice, func(m map[string]any) { m["nbf"] = time.Now().Add(time.Minute).Unix() }),
		"with aud":   forgeToken(t, "HS256", e.Secret, userAlice, func(m map[string]any) { m["aud"] = "consoleme" }),
		"HS512":      forgeToken(t, "HS512", e.Secret, userAlice, nil),
		"alg none":   forgeToken(t, "none", e.Secret, userAlice, nil),
		"garbage":    "not-a-jwt",
	}
	for name, tok := range bad {
		t.Run(name, func(t *testing.T) {
			b := newBrowser(t)
			b.SetCookie(e.Base, "consoleme_auth", tok)
			e.redirectsToIdP(t, b.Get(c.ChallengeURL))
		})
	}
	// None of that used up the challenge.
	e.expectPoll(t, c.PollingURL, nil, "pending")

	// A cookie ConsoleMe itself would have minted is accepted as is.
	good := newBrowser(t)
	good.SetCookie(e.Base, "consoleme_auth", forgeToken(t, "HS256", e.Secret, userAlice, nil))
	p, f := e.openApproval(t, good, c.ChallengeURL, userAlice.Email, "127.0.0.1")
	e.approve(t, good, p, f)
	e.pollSuccess(t, c.PollingURL, nil, userAlice)

	// A browser logged in through the module is not sent to the IdP for
	// its next challenge.
	b := e.loggedInBrowser(t, userAlice)
	c2 := e.generate(t, userAlice.Email, nil)
	e.openApproval(t, b, c2.ChallengeURL, userAlice.Email, "127.0.0.1")
}

// TestApprovalPageRules: single view, CSRF-protected approval, approval
// only by the logged-in browser.
func TestApprovalPageRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.loggedInBrowser(t, userAlice)
	c := e.generate(t, userAlice.Email, nil)
	p, f := e.openApproval(t, b, c.ChallengeURL, userAlice.Email, "127.0.0.1")

	expectErrorPage(t, b.Get(c.ChallengeURL), http.StatusConflict)

	action, _ := p.URL.Parse(f.Action)
	good := f.Values("approve")
	if len(f.Hidden()) == 0 {
		t.Fatalf("the approval form has no hidden anti-forgery field:\n%s", p)
	}

	// Tampered anti-forgery fields approve nothing.
	var tokenFields []string
	for name := range f.Hidden() {
		ln := strings.ToLower(name)
		if strings.Contains(ln, "nonce") || strings.Contains(ln, "csrf") || strings.Contains(ln, "xsrf") || strings.Contains(ln, "token") {
			tokenFields = append(tokenFields, name)
		}
	}
	if len(tokenFields) == 0 {
		for name := range f.Hidden() {
			tokenFields = append(tokenFields, name)
		}
	}
	for _, name := range tokenFields {
		v := url.Values{}
		for k, vs := range good {
			v[k] = append([]string(nil), vs...)
		}
		v.Set(name, "tampered-"+uuid.NewString())
		res := b.PostForm(action.String(), testbed.Origin(p.URL), v)
		if res.Status == http.StatusOK && strings.Contains(res.Text(), approvedText) {
			t.Errorf("approval with a tampered %s succeeded", name)
		}
		e.expectPoll(t, c.PollingURL, nil, "pending")
	}

	// The same form posted without the session cookie approves nothing.
	anon := newBrowser(t)
	res := anon.PostForm(action.String(), testbed.Origin(p.URL), good)
	if res.Status == http.StatusOK && strings.Contains(res.Text(), approvedText) {
		t.Error("approval without the session cookie succeeded")
	}
	e.expectPoll(t, c.PollingURL, nil, "pending")

	// The untouched form still works.
	e.approve(t, b, p, f)
	e.pollSuccess(t, c.PollingURL, nil, userAlice)
}

// TestValidatorJSONAPI: ConsoleMe's own UI flow, GET for a nonce and POST
// to approve, with ConsoleMe's messages (PROTOCOL.md section 4).
func TestValidatorJSONAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.loggedInBrowser(t, userAlice)
	cookie := "consoleme_auth=" + b.CookieValue(e.Base, "consoleme_auth")
	api := func(method, path, body string, withCookie bool) reply {
		h := http.Header{
			"Accept":           {"application/json"},
			"Content-Type":     {"application/json"},
			"X-Requested-With": {"XMLHttpRequest"},
			"X-Xsrftoken":      {"x"},
		}
		if withCookie {
			h.Set("Cookie", cookie)
		}
		return call(t, method, e.Base+path, h, body)
	}
	message := func(r reply) string {
		t.Helper()
		if r.Status != http.StatusOK {
			t.Errorf("want 200, got %s", r)
		}
		s, _ := r.object(t)["message"].(string)
		return s
	}

	c := e.generate(t, userAlice.Email, nil)
	path := "/api/v2/challenge_validator/" + c.Token
	r := api(http.MethodGet, path, "", true)
	m := r.object(t)
	if r.Status != http.StatusOK || m["show_approve_button"] != true || !reflect.DeepEqual(keys(m), []string{"message", "nonce", "show_approve_button"}) {
		t.Fatalf("GET %s: want 200 {message, nonce, show_approve_button: true}, got %s", path, r)
	}
	nonce, _ := m["nonce"].(string)
	if !isUUID4(nonce) {
		t.Errorf("nonce %q is not a uuid4", nonce)
	}
	if msg, _ := m["message"].(string); !strings.Contains(msg, userAlice.Email) || !strings.Contains(msg, "127.0.0.1") {
		t.Errorf("message %q does not name the user and the IP", msg)
	}

	if got, want := message(api(http.MethodGet, path, "", true)),
		"This unique challenge URL has already been viewed. Please try requesting a new challenge URL."; got != want {
		t.Errorf("second GET: message %q, want %q", got, want)
	}
	if got, want := message(api(http.MethodPost, path, `{"nonce":"`+uuid.NewString()+`"}`, true)),
		"Unable to validate challenge URL. The Nonce you've submitted is invalid."; got != want {
		t.Errorf("POST with a wrong nonce: message %q, want %q", got, want)
	}
	e.expectPoll(t, c.PollingURL, nil, "pending")

	// Without the session cookie: a redirect instruction, never approval.
	r = api(http.MethodPost, path, `{"nonce":"`+nonce+`"}`, false)
	if r.Status != http.StatusForbidden || r.object(t)["type"] != "redirect" || r.object(t)["reason"] != "unauthenticated" {
		t.Errorf("POST without cookie: want 403 {type: redirect, reason: unauthenticated}, got %s", r)
	}
	r = api(http.MethodGet, path, "", false)
	if r.Status != http.StatusForbidden || r.object(t)["type"] != "redirect" || r.object(t)["reason"] != "unauthenticated" {
		t.Errorf("GET without cookie: want 403 {type: redirect, reason: unauthenticated}, got %s", r)
	}
	e.expectPoll(t, c.PollingURL, nil, "pending")

	if got := message(api(http.MethodPost, path, `{"nonce":"`+nonce+`"}`, true)); got != approvedText {
		t.Errorf("POST with the nonce: message %q, want %q", got, approvedText)
	}
	e.pollSuccess(t, c.PollingURL, nil, userAlice)

	// Another user's challenge, and an unknown one.
	other := e.generate(t, "bob@example.com", nil)
	if got, want := message(api(http.MethodGet, "/api/v2/challenge_validator/"+other.Token, "", true)),
		"This challenge URL is associated with a different user. Ensure that your client configuration is specifying the correct user."; got != want {
		t.Errorf("other user's challenge: message %q, want %q", got, want)
	}
	e.expectPoll(t, other.PollingURL, nil, "pending")
	msg := message(api(http.MethodGet, "/api/v2/challenge_validator/"+uuid.NewString(), "", true))
	if !strings.Contains(msg, "not found") && !strings.Contains(msg, "Unable to find a matching challenge URL") {
		t.Errorf("unknown challenge: message %q", msg)
	}
	e.expectNoLeaks(t)
}

// TestColonRoutes: the colon spellings of one rendering of ConsoleMe's docs
// behave like the underscore routes, and hand out underscore URLs.
func TestColonRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.loggedInBrowser(t, userAlice)
	c := e.generateAt(t, "/noauth/v1/challenge:generator/", userAlice.Email, nil)
	colonPoll := e.Base + "/noauth/v1/challenge:poller/" + c.Token
	e.expectPoll(t, colonPoll, nil, "pending")

	p, f := e.openApproval(t, b, e.Base+"/challenge:validator/"+c.Token, userAlice.Email, "127.0.0.1")
	e.approve(t, b, p, f)
	e.pollSuccess(t, colonPoll, nil, userAlice)
	e.expectPoll(t, c.PollingURL, nil, "unknown")

	c2 := e.generate(t, userAlice.Email, nil)
	r := call(t, http.MethodGet, e.Base+"/api/v2/challenge:validator/"+c2.Token, http.Header{
		"Accept": {"application/json"},
		"Cookie": {"consoleme_auth=" + b.CookieValue(e.Base, "consoleme_auth")},
	}, "")
	if r.Status != http.StatusOK || r.object(t)["show_approve_button"] != true {
		t.Errorf("colon JSON API: %s", r)
	}
	e.expectNoLeaks(t)
}

// TestGeneratorInput: what the generator accepts and refuses.
func TestGeneratorInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bad := map[string]string{
		"empty":       "",
		"257 bytes":   strings.Repeat("a", 257),
		"newline":     "alice%0A@example.com",
		"NUL":         "alice%00",
		"tab":         "al%09ice",
		"DEL":         "alice%7F",
		"escape code": "%1B%5B31malice",
	}
	for name, user := range bad {
		t.Run(name, func(t *testing.T) {
			r := call(t, http.MethodGet, e.Base+"/noauth/v1/challenge_generator/"+user, nil, "")
			if r.Status != http.StatusBadRequest || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("want 400 JSON, got %s", r)
			}
			m := r.object(t)
			code, hasCode := m["code"]
			msg, _ := m["message"].(string)
			if m["status"] != "error" || !hasCode || code == "" || msg == "" {
				t.Errorf("want {\"status\":\"error\",\"code\":...,\"message\":...}, got %s", r.Body)
			}
		})
	}

	// 256 bytes is still a user name.
	e.generate(t, strings.Repeat("b", 256), nil)

	// Consecutive calls give distinct tokens.
	c1 := e.generate(t, userAlice.Email, nil)
	c2 := e.generate(t, userAlice.Email, nil)
	if c1.Token == c2.Token {
		t.Error("two challenges share a token")
	}

	// The user is percent-decoded before it is stored: alice may approve a
	// challenge generated for alice%40example.com.
	b := e.loggedInBrowser(t, userAlice)
	c3 := e.generate(t, "alice%40example.com", nil)
	e.openApproval(t, b, c3.ChallengeURL, userAlice.Email, "127.0.0.1")
}

// TestPollerInput: malformed tokens get a JSON 400 that Weep can parse,
// never HTML.
func TestPollerInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, token := range []string{"not!a!token", "has%20space", "nul%00byte", "dots..", "%3Cscript%3E"} {
		r := call(t, http.MethodGet, e.Base+"/noauth/v1/challenge_poller/"+token, nil, "")
		if r.Status != http.StatusBadRequest || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Errorf("poll %q: want 400 JSON, got %s", token, r)
			continue
		}
		if _, ok := r.object(t)["status"].(string); !ok {
			t.Errorf("poll %q: no string status in %s", token, r.Body)
		}
	}
	e.expectNoLeaks(t)
}

// TestUserWithoutGroups: a user the IdP gives no groups gets "groups": []
// and ConsoleMe accepts the token.
func TestUserWithoutGroups(t *testing.T) {
	t.Parallel()
	e := newRealEnv(t, sharedRealConsoleMe(t))
	b := e.loggedInBrowser(t, userDave)
	c := e.generate(t, userDave.Email, nil)
	p, f := e.openApproval(t, b, c.ChallengeURL, userDave.Email, "127.0.0.1")
	e.approve(t, b, p, f)
	s := e.pollSuccess(t, c.PollingURL, nil, userDave)
	e.upstreamIdentity(t, s.EncodedJWT, userDave)
}

// TestCustomNames: cookie_name, email_claim, groups_claim and
// jwt_expiration reach the token, the cookie and the poller, and the real
// ConsoleMe configured the same way accepts the result.
func TestCustomNames(t *testing.T) {
	t.Parallel()
	cm := startRealConsoleMe(t, realConsoleMeOptions{CookieName: "cm_session", EmailClaim: "mail", GroupsClaim: "memberOf"})
	e := newRealEnv(t, cm, func(c *moduleConfig) {
		c.CookieName = "cm_session"
		c.EmailClaim = "mail"
		c.GroupsClaim = "memberOf"
		c.JWTExpiration = "30m"
		c.ChallengeTTL = "2m"
		c.Store = "memory"
	})
	c := e.generate(t, userAlice.Email, nil)
	b := newBrowser(t)
	e.login(t, b, userAlice, c.ChallengeURL)
	p, f := e.openApproval(t, b, c.ChallengeURL, userAlice.Email, "127.0.0.1")
	e.approve(t, b, p, f)
	s := e.pollSuccess(t, c.PollingURL, nil, userAlice)
	e.upstreamIdentity(t, s.EncodedJWT, userAlice)
}

// TestValidatorIPCheckDisabled: with disable_validator_ip_check, approval
// from another IP works while the poller stays bound to the creating IP.
// This deployment also leaves email_attribute unset, so the email comes
// from the NameID (samlidp puts the email there).
func TestValidatorIPCheckDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *moduleConfig) {
		c.DisableValidatorIPCheck = true
		c.EmailAttribute = ""
	})
	c := e.generate(t, userAlice.Email, nil)
	b := newBrowser(t)
	b.Header.Set("X-Forwarded-For", otherIP)
	e.login(t, b, userAlice, c.ChallengeURL)
	p, f := e.openApproval(t, b, c.ChallengeURL, userAlice.Email, "127.0.0.1")
	e.approve(t, b, p, f)
	e.expectPoll(t, c.PollingURL, fromOtherIP(), "unauthorized")
	e.pollSuccess(t, c.PollingURL, nil, userAlice)
}

// TestPollerIPCheckDisabled: with disable_poller_ip_check, another IP may
// collect the token, while the validator stays bound to the creating IP.
func TestPollerIPCheckDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *moduleConfig) { c.DisablePollerIPCheck = true })
	b := e.loggedInBrowser(t, userAlice)
	c := e.generate(t, userAlice.Email, nil)
	e.expectPoll(t, c.PollingURL, fromOtherIP(), "pending")

	b.Header.Set("X-Forwarded-For", otherIP)
	expectErrorPage(t, b.Get(c.ChallengeURL), http.StatusForbidden)
	b.Header.Del("X-Forwarded-For")

	p, f := e.openApproval(t, b, c.ChallengeURL, userAlice.Email, "127.0.0.1")
	e.approve(t, b, p, f)
	e.pollSuccess(t, c.PollingURL, fromOtherIP(), userAlice)
	e.expectPoll(t, c.PollingURL, nil, "unknown")
}

// TestMaxPending: a flood of challenges is refused with 503 JSON and
// Retry-After once max_pending are waiting.
func TestMaxPending(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *moduleConfig) { c.MaxPending = 5 })
	for range 5 {
		e.generate(t, userAlice.Email, nil)
	}
	r := call(t, http.MethodGet, e.Base+"/noauth/v1/challenge_generator/"+userAlice.Email, nil, "")
	if r.Status != http.StatusServiceUnavailable || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || r.Header.Get("Retry-After") == "" {
		t.Errorf("generator beyond max_pending: want 503 JSON with Retry-After, got %s", r)
	}
	r.object(t)
}
