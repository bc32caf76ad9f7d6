package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"
)

// The types Weep decodes the challenge replies into (W
// pkg/httpAuth/challenge/types.go), field for field.
type weepChallenge struct {
	ChallengeURL string `json:"challenge_url"`
	PollingUrl   string `json:"polling_url"`
}

type weepChallengeResponse struct {
	Status       string `json:"status"`
	EncodedJwt   string `json:"encoded_jwt"`
	CookieName   string `json:"cookie_name"`
	WantSecure   bool   `json:"secure"`
	WantHttpOnly bool   `json:"http_only"`
	SameSite     int    `json:"same_site"`
	Expires      int64  `json:"expiration"`
	User         string `json:"user"`
}

// weepGet is one request as Weep's challenge client sends it: a zero
// http.Client, only Content-Type set, Go's default User-Agent, and the
// body decoded without looking at the status. A decode error is fatal, as
// it is for Weep.
func weepGet(t *testing.T, rawURL string, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatalf("Weep could not build the request for %q: %v", rawURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(v); err != nil {
		t.Fatalf("Weep cannot decode the reply to GET %s (%d %s): %v", rawURL, resp.StatusCode, body, err)
	}
}

// TestWeepClient does what Weep's RefreshChallenge does (PROTOCOL.md
// section 8), with a browser standing in for the user who opens the
// challenge URL, then calls the real ConsoleMe with the saved token as
// Weep's API client does.
func TestWeepClient(t *testing.T) {
	t.Parallel()
	e := newRealEnv(t, sharedRealConsoleMe(t))

	// consoleme_url without a trailing slash and the user unescaped.
	var ch weepChallenge
	weepGet(t, fmt.Sprintf("%s/noauth/v1/challenge_generator/%s", e.Base, "alice@example.com"), &ch)
	if ch.ChallengeURL == "" || ch.PollingUrl == "" {
		t.Fatalf("challenge %+v", ch)
	}

	// Weep polls the polling URL verbatim; everything but success means
	// "poll again".
	var first weepChallengeResponse
	weepGet(t, ch.PollingUrl, &first)
	if first.Status != "pending" {
		t.Errorf("first poll: %+v", first)
	}

	b := newBrowser(t)
	e.login(t, b, userAlice, ch.ChallengeURL)
	p, f := e.openApproval(t, b, ch.ChallengeURL, userAlice.Email, "127.0.0.1")
	e.approve(t, b, p, f)

	var cred weepChallengeResponse
	deadline := time.Now().Add(10 * time.Second)
	for {
		weepGet(t, ch.PollingUrl, &cred)
		if cred.Status == "success" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if cred.Status != "success" || cred.CookieName != "consoleme_auth" || cred.User != userAlice.Email || cred.EncodedJwt == "" {
		t.Fatalf("Weep's credentials: %+v", cred)
	}
	claims := e.checkJWT(t, cred.EncodedJwt, userAlice, time.Now().Add(-time.Minute))
	if cred.Expires != claims.Exp {
		t.Errorf("expiration %d is not the JWT's exp %d", cred.Expires, claims.Exp)
	}
	// Weep's HasValidJwt: !now.After(time.Unix(expiration, 0)).
	if time.Now().After(time.Unix(cred.Expires, 0)) {
		t.Errorf("Weep would consider the new credentials expired: %d", cred.Expires)
	}

	// NewHTTPClient: a jar cookie from the saved fields, host-only for
	// consoleme_url, with Secure, HttpOnly and SameSite from fields the
	// server never sends.
	jar, _ := cookiejar.New(nil)
	base, _ := url.Parse(e.Base)
	jar.SetCookies(base, []*http.Cookie{{
		Name:     cred.CookieName,
		Value:    cred.EncodedJwt,
		Secure:   cred.WantSecure,
		HttpOnly: cred.WantHttpOnly,
		SameSite: http.SameSite(cred.SameSite),
		Expires:  time.Unix(cred.Expires, 0),
	}})
	client := &http.Client{Jar: jar}
	build := func(method, path, body string) *http.Request {
		var rd io.Reader
		if body != "" {
			rd = bytes.NewBufferString(body)
		}
		req, _ := http.NewRequest(method, e.Base+path, rd)
		req.Header.Set("User-Agent", "weep/integration Go-http-client/1.1")
		req.Header.Set("Content-Type", "application/json")
		return req
	}

	resp, err := client.Do(build(http.MethodGet, "/api/v2/get_roles?all=true", ""))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("RolesExtended: %d %s", resp.StatusCode, body)
	}
	// Weep's list: ConsoleMe's roles for alice, by its group mapping.
	var arns []string
	for _, r := range decodeRoles(t, body) {
		arns = append(arns, r.Arn)
	}
	if want := e.Real.CM.Mapping.RolesFor(userAlice.Email, userAlice.Groups, true); fmt.Sprint(sortedCopy(arns)) != fmt.Sprint(want) {
		t.Errorf("roles %v, want ConsoleMe's mapping for alice %v", arns, want)
	}
	// The same cookie names alice at ConsoleMe's profile API.
	resp, err = client.Do(build(http.MethodGet, "/api/v2/user_profile", ""))
	if err != nil {
		t.Fatal(err)
	}
	var profile struct {
		User string `json:"user"`
	}
	err = json.NewDecoder(resp.Body).Decode(&profile)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || profile.User != userAlice.Email {
		t.Errorf("user_profile: %d, user %q (%v), want %s", resp.StatusCode, profile.User, err, userAlice.Email)
	}
	e.expectNoLeaks(t)
}
