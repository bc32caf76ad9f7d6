package testbed

import (
	"encoding/base64"
	"encoding/json"
	"html/template"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// StandIn is a stand-in for an unchanged ConsoleMe behind the module. It
// accepts the consoleme_auth cookie exactly as ConsoleMe does (CM
// consoleme/lib/jwt.py validate_and_return_jwt_token on PyJWT 2.4.0, and
// BaseMtlsHandler.prepare; PROTOCOL.md section 7) and serves the two API
// calls Weep makes after logging in, with ConsoleMe's JSON shapes (PROTOCOL.md
// section 8). Its answers reveal the email and groups it read from the
// token, so a test can see what ConsoleMe would see.
//
// GET / shows, as a page, who the cookie says is signed in (the demo's
// home page). Under /echo/ it describes every request it receives, so tests can prove
// that the module passes requests through untouched. Every request is
// recorded (Requests) so tests can also prove that the module's own routes
// never leak to ConsoleMe.
type StandIn struct {
	Secret      string
	CookieName  string
	EmailClaim  string
	GroupsClaim string
	// Now is the clock used for exp/nbf/iat checks; time.Now by default.
	Now func() time.Time

	srv *http.Server
	url string

	mu       sync.Mutex
	requests []UpstreamRequest
}

// UpstreamRequest is what the stand-in recorded about one request.
type UpstreamRequest struct {
	Method     string
	RequestURI string
	Path       string
	// Set by the recorder in front of the real ConsoleMe.
	Header http.Header
	Body   []byte
	// Set by the stand-in for requests to the cookie-protected API.
	Auth *AuthOutcome
}

// AuthOutcome is the stand-in's verdict on one consoleme_auth cookie.
type AuthOutcome struct {
	Verdict  TokenVerdict
	Reason   string // why it was rejected or crashed
	Email    string
	Groups   []string
	IssuedAt int64
	Expires  int64
}

type TokenVerdict int

const (
	// TokenValid: validate_and_return_jwt_token returned the identity.
	TokenValid TokenVerdict = iota
	// TokenRejected: it returned False (expired, bad signature, malformed);
	// ConsoleMe answers 403 invalid_jwt.
	TokenRejected
	// TokenCrash: an exception ConsoleMe does not catch; Tornado answers 500.
	TokenCrash
)

func (v TokenVerdict) String() string {
	switch v {
	case TokenValid:
		return "valid"
	case TokenRejected:
		return "rejected (403 invalid_jwt)"
	case TokenCrash:
		return "crash (500)"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// StartStandIn starts the stand-in on 127.0.0.1:port (0: a free port)
// with ConsoleMe's default cookie and claim names; Close stops it.
func StartStandIn(secret string, port int) (*StandIn, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	c := &StandIn{
		Secret:      secret,
		CookieName:  "consoleme_auth",
		EmailClaim:  "email",
		GroupsClaim: "groups",
		Now:         time.Now,
		url:         "http://" + l.Addr().String(),
	}
	c.srv = &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second}
	go c.srv.Serve(l)
	return c, nil
}

// Close stops the stand-in.
func (c *StandIn) Close() error { return c.srv.Close() }

// URL is the stand-in's base URL, http://127.0.0.1:<port>.
func (c *StandIn) URL() string { return c.url }

// Addr is host:port, as reverse_proxy wants it.
func (c *StandIn) Addr() string { return strings.TrimPrefix(c.url, "http://") }

// Requests returns a copy of everything received so far.
func (c *StandIn) Requests() []UpstreamRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]UpstreamRequest(nil), c.requests...)
}

func (c *StandIn) record(r UpstreamRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, r)
}

func (c *StandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := UpstreamRequest{Method: r.Method, RequestURI: r.RequestURI, Path: r.URL.Path}
	switch {
	case r.URL.Path == "/" && r.Method == http.MethodGet:
		c.record(rec)
		c.serveHome(w, r)
	case strings.HasPrefix(r.URL.Path, "/echo/"):
		c.record(rec)
		c.serveEcho(w, r)
	case r.URL.Path == "/api/v2/get_roles":
		c.serveAPI(w, r, rec, http.MethodGet, c.serveGetRoles)
	case r.URL.Path == "/api/v1/get_credentials":
		c.serveAPI(w, r, rec, http.MethodPost, c.serveGetCredentials)
	case strings.HasPrefix(r.URL.Path, "/api/v2/"):
		// ConsoleMe's V2NotFoundHandler.
		c.record(rec)
		writeJSON(w, http.StatusNotFound, "application/problem+json",
			map[string]any{"status": 404, "title": "Not Found", "message": "Not Found"})
	default:
		c.record(rec)
		http.Error(w, "stand-in ConsoleMe: no such route", http.StatusNotFound)
	}
}

// serveAPI authenticates like BaseMtlsHandler.prepare with the default
// auth.require_jwt and no mTLS, then calls next with the identity.
func (c *StandIn) serveAPI(w http.ResponseWriter, r *http.Request, rec UpstreamRequest, method string,
	next func(http.ResponseWriter, *http.Request, *AuthOutcome)) {
	// Tornado's get_cookie returns the value; an empty value is falsy in
	// Python, so "consoleme_auth=" counts as no cookie.
	var cookie string
	if ck, err := r.Cookie(c.CookieName); err == nil {
		cookie = ck.Value
	}
	if cookie == "" {
		c.record(rec)
		// HTTPError(403) rendered by BaseJSONHandler.write_error.
		writeJSON(w, http.StatusForbidden, "application/problem+json",
			map[string]any{"status": 403, "title": "Forbidden", "message": "Forbidden"})
		return
	}
	out := c.CheckToken(cookie)
	rec.Auth = &out
	c.record(rec)
	switch out.Verdict {
	case TokenRejected:
		writeJSON(w, http.StatusForbidden, "application/json; charset=UTF-8", map[string]any{
			"code":       "invalid_jwt",
			"message":    "JWT is invalid or has expired.",
			"request_id": uuid.NewString(),
		})
		return
	case TokenCrash:
		// Tornado's default error page; the header only helps debugging.
		w.Header().Set("X-Stand-In-Reason", out.Reason)
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "<html><title>500: Internal Server Error</title><body>500: Internal Server Error</body></html>")
		return
	}
	if r.Method != method {
		writeJSON(w, http.StatusMethodNotAllowed, "application/json; charset=UTF-8",
			map[string]any{"code": "405", "message": "Method Not Allowed"})
		return
	}
	// GetCredentialsHandler.raise_if_certificate_too_old with the default
	// plugin's 360 days.
	if c.Now().Unix()-out.IssuedAt > 360*24*3600 {
		writeJSON(w, http.StatusForbidden, "application/json; charset=UTF-8",
			map[string]any{"code": "905", "message": "MTLS certificate is too old"})
		return
	}
	next(w, r, &out)
}

const standInAccount = "123456789012"

// StandInRoles maps each group to one role, so the role list reveals the groups
// the stand-in read from the token.
func StandInRoles(groups []string) []string {
	arns := make([]string, 0, len(groups))
	for _, g := range groups {
		arns = append(arns, "arn:aws:iam::"+standInAccount+":role/"+g)
	}
	return arns
}

// serveGetRoles answers GET /api/v2/get_roles?all=true with the shape of
// GetRolesMTLSHandler.get. The requester's email is the owner of every app.
func (c *StandIn) serveGetRoles(w http.ResponseWriter, r *http.Request, id *AuthOutcome) {
	roles := []map[string]any{}
	for _, arn := range StandInRoles(id.Groups) {
		name := arn[strings.LastIndex(arn, "/")+1:]
		roles = append(roles, map[string]any{
			"arn":                   arn,
			"account_id":            standInAccount,
			"account_friendly_name": "stand-in",
			"role_name":             name,
			"apps": map[string]any{"app_details": []map[string]any{{
				"name":      "stand-in-app",
				"owner":     id.Email,
				"owner_url": "",
				"app_url":   "",
			}}},
		})
	}
	writeJSON(w, http.StatusOK, "application/json; charset=UTF-8", map[string]any{
		"status":      "success",
		"status_code": 200,
		"data":        map[string]any{"roles": roles},
	})
}

// StandInSession is what the stand-in packs into the SessionToken of the
// credentials it hands out, so a test can read who asked for them.
type StandInSession struct {
	Email  string   `json:"email"`
	Groups []string `json:"groups"`
	Role   string   `json:"role"`
}

// serveGetCredentials answers POST /api/v1/get_credentials with the shape of
// GetCredentialsHandler.post: a role the groups allow gets credentials whose
// Expiration is an integer, as in the default AWS plugin.
func (c *StandIn) serveGetCredentials(w http.ResponseWriter, r *http.Request, id *AuthOutcome) {
	var body struct {
		RequestedRole    string `json:"requested_role"`
		NoIPRestrictions bool   `json:"no_ip_restrictions"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.RequestedRole == "" {
		writeJSON(w, http.StatusBadRequest, "application/json; charset=UTF-8",
			map[string]any{"code": "904", "message": "Malformed request"})
		return
	}
	var match string
	for _, arn := range StandInRoles(id.Groups) {
		if body.RequestedRole == arn || strings.HasSuffix(arn, "/"+body.RequestedRole) {
			match = arn
			break
		}
	}
	if match == "" {
		writeJSON(w, http.StatusForbidden, "application/json; charset=UTF-8", map[string]any{
			"code":           "900",
			"message":        "No matching roles",
			"requested_role": body.RequestedRole,
			"request_id":     uuid.NewString(),
		})
		return
	}
	sess, _ := json.Marshal(StandInSession{Email: id.Email, Groups: id.Groups, Role: match})
	writeJSON(w, http.StatusOK, "application/json; charset=UTF-8", map[string]any{
		"Credentials": map[string]any{
			"AccessKeyId":     "ASIASTANDIN" + strings.ToUpper(uuid.NewString()[:8]),
			"SecretAccessKey": uuid.NewString(),
			"SessionToken":    base64.RawURLEncoding.EncodeToString(sess),
			"Expiration":      c.Now().Add(time.Hour).Unix(),
		},
	})
}

// EchoReply is the stand-in's description of a request under /echo/.
type EchoReply struct {
	Method     string              `json:"method"`
	RequestURI string              `json:"request_uri"`
	Path       string              `json:"path"`
	RawQuery   string              `json:"raw_query"`
	Host       string              `json:"host"`
	Header     map[string][]string `json:"header"`
	Cookies    []EchoCookie        `json:"cookies"`
	Body       string              `json:"body"`
}

type EchoCookie struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (c *StandIn) serveEcho(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	reply := EchoReply{
		Method:     r.Method,
		RequestURI: r.RequestURI,
		Path:       r.URL.Path,
		RawQuery:   r.URL.RawQuery,
		Host:       r.Host,
		Header:     r.Header,
		Cookies:    []EchoCookie{},
		Body:       string(body),
	}
	for _, ck := range r.Cookies() {
		reply.Cookies = append(reply.Cookies, EchoCookie{Name: ck.Name, Value: ck.Value})
	}
	writeJSON(w, http.StatusOK, "application/json", reply)
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var homePage = template.Must(template.New("home").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ConsoleMe (stand-in)</title>
<style>body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:40rem;margin:4rem auto;color:#1d2330}
.muted{color:#5a6272;font-size:.9rem}code{background:#f0f2f5;padding:.1rem .3rem}</style></head><body>
<h1>ConsoleMe <span class="muted">(a stand-in)</span></h1>
{{if .ID}}<p id="status">Signed in to ConsoleMe as <b>{{.ID.Email}}</b>, groups: {{range $i, $g := .ID.Groups}}{{if $i}}, {{end}}<b>{{$g}}</b>{{else}}(none){{end}}</p>
<p class="muted">Your <code>{{.Cookie}}</code> cookie was minted by Caddy's consoleme_auth module after the SAML sign-in; it expires at {{.Expires}}.</p>
{{else}}<p id="status">Not signed in to ConsoleMe.</p>
{{if .Reason}}<p class="muted">Your <code>{{.Cookie}}</code> cookie was refused: {{.Reason}}.</p>{{end}}
<p class="muted">Run a challenge login and approve it in this browser: the SAML sign-in sets the cookie.</p>
{{end}}</body></html>
`))

// serveHome shows who the session cookie says is signed in, by
// ConsoleMe's rules.
func (c *StandIn) serveHome(w http.ResponseWriter, r *http.Request) {
	data := struct {
		ID      *AuthOutcome
		Cookie  string
		Expires string
		Reason  string
	}{Cookie: c.CookieName}
	if ck, err := r.Cookie(c.CookieName); err == nil && ck.Value != "" {
		out := c.CheckToken(ck.Value)
		if out.Verdict == TokenValid {
			data.ID = &out
			data.Expires = time.Unix(out.Expires, 0).Format(time.RFC1123)
		} else {
			data.Reason = out.Reason
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	homePage.Execute(w, data)
}
