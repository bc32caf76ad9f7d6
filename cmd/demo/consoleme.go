package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ConsoleMe's defaults, which the demo's Caddyfile keeps: auth_cookie_name,
// jwt.attributes.email and jwt.attributes.groups.
const (
	cookieName  = "consoleme_auth"
	emailClaim  = "email"
	groupsClaim = "groups"
)

// consoleMe stands in for an unchanged ConsoleMe behind Caddy. It knows
// nothing about the module: like ConsoleMe, it only shares the jwt_secret
// and trusts a consoleme_auth cookie that passes ConsoleMe's checks.
//
//	GET /                            who is signed in, as a page
//	GET /api/v2/get_roles?all=true   Weep's role list (ConsoleMe's JSON)
type consoleMe struct {
	URL    string
	secret []byte
	now    func() time.Time
	srv    *http.Server
}

func startConsoleMe(secret string, port int) (*consoleMe, error) {
	l, err := listen(port, "-upstream-port")
	if err != nil {
		return nil, err
	}
	c := &consoleMe{
		URL:    "http://" + l.Addr().(*net.TCPAddr).String(),
		secret: []byte(secret),
		now:    time.Now,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.home)
	mux.HandleFunc("GET /api/v2/get_roles", c.getRoles)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "The demo's stand-in ConsoleMe only serves / and /api/v2/get_roles.", http.StatusNotFound)
	})
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go c.srv.Serve(l)
	return c, nil
}

func (c *consoleMe) close() error { return c.srv.Close() }

// identity is what ConsoleMe reads from a valid token.
type identity struct {
	Email    string
	Groups   []string
	IssuedAt int64
	Expires  int64
}

var errNoCookie = errors.New("no consoleme_auth cookie")

// authenticate checks the request's consoleme_auth cookie.
func (c *consoleMe) authenticate(r *http.Request) (*identity, error) {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return nil, errNoCookie
	}
	return verifyToken(ck.Value, c.secret, c.now())
}

// verifyToken applies the rules of ConsoleMe's validate_and_return_jwt_token
// (PyJWT 2.4 with algorithms="HS256" and no leeway) and of its CLI API
// handlers, which also need an integer iat:
//
//   - the header's alg is HS256 and the HMAC-SHA256 signature over
//     jwt_secret matches;
//   - exp, when present, is an integer and not in the past;
//   - nbf, when present, is an integer and not in the future;
//   - iat is an integer;
//   - there is no aud claim (ConsoleMe passes no audience, so any aud fails);
//   - the email claim is a string; the groups claim, when present, a list of
//     strings.
//
// Real ConsoleMe answers some of these failures (a future nbf, an aud, a
// wrong alg, a non-integer iat) with an HTTP 500 instead of a clean
// rejection; the stand-in rejects them all the same way.
func verifyToken(tok string, secret []byte, now time.Time) (*identity, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if header.Alg != "HS256" {
		return nil, fmt.Errorf("alg %q is not HS256", header.Alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errors.New("signature: not base64url")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, errors.New("bad signature")
	}

	var claims map[string]json.RawMessage
	if err := decodeSegment(parts[1], &claims); err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	t := now.Unix()
	id := &identity{Groups: []string{}}
	if raw, ok := claims["exp"]; ok {
		if id.Expires, err = intClaim(raw); err != nil {
			return nil, fmt.Errorf("exp: %w", err)
		}
		if id.Expires < t {
			return nil, errors.New("expired")
		}
	}
	if raw, ok := claims["nbf"]; ok {
		nbf, err := intClaim(raw)
		if err != nil {
			return nil, fmt.Errorf("nbf: %w", err)
		}
		if nbf > t {
			return nil, errors.New("not valid yet (nbf is in the future)")
		}
	}
	raw, ok := claims["iat"]
	if !ok {
		return nil, errors.New("no iat")
	}
	if id.IssuedAt, err = intClaim(raw); err != nil {
		return nil, fmt.Errorf("iat: %w", err)
	}
	if _, ok := claims["aud"]; ok {
		return nil, errors.New("has an aud claim")
	}
	if err := json.Unmarshal(claims[emailClaim], &id.Email); err != nil || id.Email == "" {
		return nil, fmt.Errorf("no %q claim with a string", emailClaim)
	}
	if raw, ok := claims[groupsClaim]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &id.Groups); err != nil {
			return nil, fmt.Errorf("%q claim is not a list of strings", groupsClaim)
		}
	}
	return id, nil
}

// decodeSegment decodes one base64url JSON part of a JWT.
func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return errors.New("not base64url")
	}
	return json.Unmarshal(b, v)
}

// intClaim reads a JSON integer; 1.5 or "1" are refused, as by PyJWT.
func intClaim(raw json.RawMessage) (int64, error) {
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		return 0, errors.New("not a number")
	}
	i, err := n.Int64()
	if err != nil {
		return 0, errors.New("not an integer")
	}
	return i, nil
}

var homePage = template.Must(template.New("home").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ConsoleMe (demo stand-in)</title>
<style>body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:40rem;margin:4rem auto;color:#1d2330}
.muted{color:#5a6272;font-size:.9rem}code{background:#f0f2f5;padding:.1rem .3rem}</style></head><body>
<h1>ConsoleMe <span class="muted">(the demo's stand-in)</span></h1>
{{if .ID}}<p id="status">Signed in to ConsoleMe as <b>{{.ID.Email}}</b>, groups: {{range $i, $g := .ID.Groups}}{{if $i}}, {{end}}<b>{{$g}}</b>{{else}}(none){{end}}</p>
<p class="muted">Your <code>consoleme_auth</code> cookie was minted by Caddy's consoleme_auth module after the SAML sign-in; it expires at {{.Expires}}.</p>
{{else}}<p id="status">Not signed in to ConsoleMe.</p>
{{if .Reason}}<p class="muted">Your <code>consoleme_auth</code> cookie was refused: {{.Reason}}.</p>{{end}}
<p class="muted">Run a challenge login (see the terminal) and approve it in this browser: the SAML sign-in sets the cookie.</p>
{{end}}</body></html>
`))

// home shows who the cookie says is signed in.
func (c *consoleMe) home(w http.ResponseWriter, r *http.Request) {
	id, err := c.authenticate(r)
	data := struct {
		ID      *identity
		Expires string
		Reason  string
	}{ID: id}
	if id != nil {
		data.Expires = time.Unix(id.Expires, 0).Format(time.RFC1123)
	} else if !errors.Is(err, errNoCookie) {
		data.Reason = err.Error()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	homePage.Execute(w, data)
}

// The shapes of ConsoleMe's GET /api/v2/get_roles answer, as Weep decodes it.
type (
	rolesResponse struct {
		Status     string `json:"status"`
		StatusCode int    `json:"status_code"`
		Data       struct {
			Roles []role `json:"roles"`
		} `json:"data"`
	}
	role struct {
		Arn                 string `json:"arn"`
		AccountID           string `json:"account_id"`
		AccountFriendlyName string `json:"account_friendly_name"`
		RoleName            string `json:"role_name"`
		Apps                struct {
			AppDetails []appDetail `json:"app_details"`
		} `json:"apps"`
	}
	appDetail struct {
		Name     string `json:"name"`
		Owner    string `json:"owner"`
		OwnerURL string `json:"owner_url"`
		AppURL   string `json:"app_url"`
	}
)

// demoAccount is the made-up AWS account of the demo's roles.
const demoAccount = "123456789012"

// getRoles answers as ConsoleMe's CLI API does: 403 problem JSON without a
// cookie, 403 {"code":"invalid_jwt"} for a cookie that fails the checks
// (Weep then deletes its saved credentials), and otherwise the roles the
// user may assume. Real ConsoleMe maps groups to roles through its
// group_mapping; here every group simply stands for one role of that name.
func (c *consoleMe) getRoles(w http.ResponseWriter, r *http.Request) {
	id, err := c.authenticate(r)
	switch {
	case errors.Is(err, errNoCookie):
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(map[string]any{"status": 403, "title": "Forbidden", "message": "Forbidden"})
		return
	case err != nil:
		writeJSON(w, http.StatusForbidden, map[string]string{
			"code":       "invalid_jwt",
			"message":    "JWT is invalid or has expired.",
			"request_id": uuid.NewString(),
		})
		return
	}
	resp := rolesResponse{Status: "success", StatusCode: http.StatusOK}
	resp.Data.Roles = []role{}
	for _, g := range id.Groups {
		rl := role{
			Arn:                 "arn:aws:iam::" + demoAccount + ":role/" + g,
			AccountID:           demoAccount,
			AccountFriendlyName: "demo",
			RoleName:            g,
		}
		rl.Apps.AppDetails = []appDetail{}
		resp.Data.Roles = append(resp.Data.Roles, rl)
	}
	writeJSON(w, http.StatusOK, resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
