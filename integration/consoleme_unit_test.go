package integration

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// signedToken builds a JWT by hand so tests can make tokens no JWT library
// would: any alg header, float or string claims, an aud. HS256 and HS512
// sign with an HMAC over secret; any other alg gets an empty signature.
func signedToken(t testing.TB, alg, secret string, claims map[string]any) string {
	t.Helper()
	header, err := json.Marshal(map[string]any{"typ": "JWT", "alg": alg})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	var h func() hash.Hash
	switch alg {
	case "HS256":
		h = sha256.New
	case "HS512":
		h = sha512.New
	default:
		return input + "."
	}
	mac := hmac.New(h, []byte(secret))
	mac.Write([]byte(input))
	return input + "." + enc.EncodeToString(mac.Sum(nil))
}

// consoleMeClaims is a claim set as ConsoleMe's generate_jwt_token makes
// it, relative to now.
func consoleMeClaims(email string, groups []string, now time.Time) map[string]any {
	return map[string]any{
		"nbf":    now.Add(-5 * time.Second).Unix(),
		"iat":    now.Unix(),
		"exp":    now.Add(time.Hour).Unix(),
		"email":  email,
		"groups": groups,
	}
}

// apiCall sends a request with an optional consoleme_auth cookie, the way
// Weep does, and returns status, content type and body.
func apiCall(t testing.TB, method, url, cookie, body string) (int, string, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if cookie != "" {
		req.Header.Set("Cookie", "consoleme_auth="+cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func TestConsoleMeStandInAcceptsConsoleMeToken(t *testing.T) {
	const secret = "unit-secret"
	cm := newConsoleMe(t, secret)
	tok := signedToken(t, "HS256", secret, consoleMeClaims("alice@example.com", []string{"engineering", "consoleme-admins"}, time.Now()))

	status, ct, body := apiCall(t, http.MethodGet, cm.URL()+"/api/v2/get_roles?all=true", tok, "")
	if status != http.StatusOK || !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("get_roles: %d %s %s", status, ct, body)
	}
	roles := decodeRoles(t, body)
	if got, want := roleNames(roles), []string{"consoleme-admins", "engineering"}; !reflect.DeepEqual(got, want) {
		t.Errorf("roles reveal groups %v, want %v", got, want)
	}
	for _, r := range roles {
		if owner := r.Apps.AppDetails[0].Owner; owner != "alice@example.com" {
			t.Errorf("role %s owner %q, want the token's email", r.Arn, owner)
		}
	}

	status, _, body = apiCall(t, http.MethodPost, cm.URL()+"/api/v1/get_credentials", tok,
		`{"requested_role":"arn:aws:iam::123456789012:role/engineering","no_ip_restrictions":false}`)
	if status != http.StatusOK {
		t.Fatalf("get_credentials: %d %s", status, body)
	}
	sess := decodeCredentials(t, body)
	if sess.Email != "alice@example.com" || sess.Role != "arn:aws:iam::123456789012:role/engineering" {
		t.Errorf("credentials issued to %+v", sess)
	}

	// A role the groups do not grant is refused with ConsoleMe's code.
	status, _, body = apiCall(t, http.MethodPost, cm.URL()+"/api/v1/get_credentials", tok, `{"requested_role":"finance"}`)
	if status != http.StatusForbidden || jsonField(t, body, "code") != "900" {
		t.Errorf("unknown role: %d %s", status, body)
	}

	// A token without groups is valid and has no roles (groups default []).
	claims := consoleMeClaims("dave@example.com", nil, time.Now())
	delete(claims, "groups")
	status, _, body = apiCall(t, http.MethodGet, cm.URL()+"/api/v2/get_roles?all=true", signedToken(t, "HS256", secret, claims), "")
	if status != http.StatusOK || len(decodeRoles(t, body)) != 0 {
		t.Errorf("token without groups: %d %s", status, body)
	}

	// An empty aud is falsy in Python, so PyJWT lets it through.
	claims = consoleMeClaims("alice@example.com", []string{"engineering"}, time.Now())
	claims["aud"] = ""
	if status, _, body := apiCall(t, http.MethodGet, cm.URL()+"/api/v2/get_roles?all=true", signedToken(t, "HS256", secret, claims), ""); status != http.StatusOK {
		t.Errorf("empty aud: %d %s", status, body)
	}
}

func TestConsoleMeStandInRejectsLikeConsoleMe(t *testing.T) {
	const secret = "unit-secret"
	cm := newConsoleMe(t, secret)
	now := time.Now()
	with := func(mod func(map[string]any)) map[string]any {
		c := consoleMeClaims("alice@example.com", []string{"engineering"}, now)
		mod(c)
		return c
	}

	cases := []struct {
		name   string
		token  string
		status int // 403 means {"code":"invalid_jwt"}, 500 an uncaught exception
		reason string
	}{
		{"expired", signedToken(t, "HS256", secret, with(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Second).Unix() })), 403, "expired"},
		{"wrong secret", signedToken(t, "HS256", "another-secret", with(func(map[string]any) {})), 403, "signature"},
		{"garbage", "not-a-jwt", 403, "segments"},
		{"bad base64", "a.b.c", 403, "padding"},
		{"non-numeric nbf", signedToken(t, "HS256", secret, with(func(c map[string]any) { c["nbf"] = "soon" })), 403, "nbf"},
		{"future nbf", signedToken(t, "HS256", secret, with(func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() })), 500, "future"},
		{"aud", signedToken(t, "HS256", secret, with(func(c map[string]any) { c["aud"] = "consoleme" })), 500, "aud"},
		{"HS512", signedToken(t, "HS512", secret, with(func(map[string]any) {})), 500, "HS512"},
		{"alg none", signedToken(t, "none", secret, with(func(map[string]any) {})), 500, "none"},
		{"float iat", signedToken(t, "HS256", secret, with(func(c map[string]any) { c["iat"] = float64(now.Unix()) + 0.5 })), 500, "iat"},
		{"string iat", signedToken(t, "HS256", secret, with(func(c map[string]any) { c["iat"] = "yesterday" })), 500, "iat"},
		{"no iat", signedToken(t, "HS256", secret, with(func(c map[string]any) { delete(c, "iat") })), 500, "no iat"},
		{"null groups", signedToken(t, "HS256", secret, with(func(c map[string]any) { c["groups"] = nil })), 500, "groups"},
		// PyJWT checks exp before aud, so an expired token with aud is
		// still only rejected.
		{"expired with aud", signedToken(t, "HS256", secret, with(func(c map[string]any) {
			c["exp"] = now.Add(-2 * time.Second).Unix()
			c["aud"] = "x"
		})), 403, "expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, call := range []struct{ method, path, body string }{
				{http.MethodGet, "/api/v2/get_roles?all=true", ""},
				{http.MethodPost, "/api/v1/get_credentials", `{"requested_role":"engineering","no_ip_restrictions":false}`},
			} {
				status, ct, body := apiCall(t, call.method, cm.URL()+call.path, tc.token, call.body)
				if status != tc.status {
					t.Errorf("%s %s: status %d, want %d; body %s", call.method, call.path, status, tc.status, body)
					continue
				}
				reqs := cm.Requests()
				if last := reqs[len(reqs)-1]; last.Auth == nil || !strings.Contains(last.Auth.Reason, tc.reason) {
					t.Errorf("%s %s: verdict %+v, want a reason mentioning %q", call.method, call.path, last.Auth, tc.reason)
				}
				if status == http.StatusForbidden {
					if !strings.HasPrefix(ct, "application/json") || jsonField(t, body, "code") != "invalid_jwt" ||
						jsonField(t, body, "message") != "JWT is invalid or has expired." {
						t.Errorf("%s %s: want invalid_jwt JSON, got %s %s", call.method, call.path, ct, body)
					}
				}
			}
		})
	}

	// No cookie, or an empty one: Tornado's HTTPError(403) as problem JSON.
	for _, cookie := range []string{"", "consoleme_auth="} {
		req, _ := http.NewRequest(http.MethodGet, cm.URL()+"/api/v2/get_roles?all=true", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var got map[string]any
		_ = json.Unmarshal(body, &got)
		want := map[string]any{"status": float64(403), "title": "Forbidden", "message": "Forbidden"}
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") != "application/problem+json" || !reflect.DeepEqual(got, want) {
			t.Errorf("cookie %q: %d %s %s", cookie, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}

	// Every API request was recorded with its verdict.
	var crashes int
	for _, r := range cm.Requests() {
		if r.Auth != nil && r.Auth.Verdict == tokenCrash {
			crashes++
		}
	}
	if crashes == 0 {
		t.Error("no crash verdicts recorded")
	}
}

func TestConsoleMeStandInEcho(t *testing.T) {
	cm := newConsoleMe(t, "s")
	req, _ := http.NewRequest(http.MethodPut, cm.URL()+"/echo/some/path?b=2&a=1", strings.NewReader("payload"))
	req.Header.Set("X-Custom", "v1")
	req.Header.Set("Cookie", "k=v; consoleme_auth=tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got echoReply
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Method != "PUT" || got.RequestURI != "/echo/some/path?b=2&a=1" || got.RawQuery != "b=2&a=1" ||
		got.Body != "payload" || got.Header["X-Custom"][0] != "v1" ||
		!reflect.DeepEqual(got.Cookies, []echoCookie{{Name: "k", Value: "v"}, {Name: "consoleme_auth", Value: "tok"}}) {
		t.Errorf("echo reply %+v", got)
	}
	if n := len(cm.Requests()); n != 1 {
		t.Errorf("recorded %d requests, want 1", n)
	}
}

// Weep's view of the API replies (W pkg/creds/consoleme.go types): the
// roles as the test bed's Weep-like client decodes them.
type (
	rolesReply = testbed.RolesResponse
	roleEntry  = testbed.RoleEntry
)

type credentialsReply struct {
	Credentials struct {
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string `json:"SecretAccessKey"`
		SessionToken    string `json:"SessionToken"`
		Expiration      int64  `json:"Expiration"`
	} `json:"Credentials"`
}

func decodeRoles(t testing.TB, body []byte) []roleEntry {
	t.Helper()
	var r rolesReply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("decoding get_roles reply %s: %v", body, err)
	}
	if r.Status != "success" || r.StatusCode != 200 {
		t.Fatalf("get_roles reply %s", body)
	}
	return r.Data.Roles
}

func roleNames(roles []roleEntry) []string {
	var names []string
	for _, r := range roles {
		names = append(names, r.RoleName)
	}
	return sortedCopy(names)
}

// decodeCredentials decodes a get_credentials reply the way Weep does
// (Expiration must be an integer) and unpacks the stand-in's session token.
func decodeCredentials(t testing.TB, body []byte) standInSession {
	t.Helper()
	var r credentialsReply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("decoding get_credentials reply %s: %v", body, err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(r.Credentials.SessionToken)
	if err != nil {
		t.Fatalf("session token %q: %v", r.Credentials.SessionToken, err)
	}
	var s standInSession
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if r.Credentials.Expiration <= time.Now().Unix() {
		t.Errorf("credentials Expiration %d is not in the future", r.Credentials.Expiration)
	}
	return s
}

// jsonField returns a top-level string field of a JSON object, or "" if
// the body is not such an object.
func jsonField(t testing.TB, body []byte, name string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return ""
	}
	s, _ := m[name].(string)
	return s
}
