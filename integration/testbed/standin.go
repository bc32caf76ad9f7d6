package testbed

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
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

// CheckToken reproduces ConsoleMe's acceptance of a cookie:
// jwt.decode(cookie, jwt_secret, algorithms="HS256") in PyJWT 2.4.0 with
// its defaults (leeway 0, no required claims, no audience given), then
// validate_and_return_jwt_token and BaseMtlsHandler.prepare. Exceptions that
// ConsoleMe catches (ExpiredSignatureError, InvalidSignatureError,
// DecodeError) reject the token; any other exception is a crash (HTTP 500).
func (c *StandIn) CheckToken(token string) AuthOutcome {
	reject := func(format string, a ...any) AuthOutcome {
		return AuthOutcome{Verdict: TokenRejected, Reason: fmt.Sprintf(format, a...)}
	}
	crash := func(format string, a ...any) AuthOutcome {
		return AuthOutcome{Verdict: TokenCrash, Reason: fmt.Sprintf(format, a...)}
	}

	// api_jws._load: segments, base64url and a JSON object header; every
	// failure is a DecodeError.
	dot := strings.LastIndexByte(token, '.')
	if dot < 0 {
		return reject("not enough segments")
	}
	signingInput, sigSeg := token[:dot], token[dot+1:]
	first := strings.IndexByte(signingInput, '.')
	if first < 0 {
		return reject("not enough segments")
	}
	headerRaw, err := pyB64Decode(signingInput[:first])
	if err != nil {
		return reject("invalid header padding")
	}
	payloadRaw, err := pyB64Decode(signingInput[first+1:])
	if err != nil {
		return reject("invalid payload padding")
	}
	sig, err := pyB64Decode(sigSeg)
	if err != nil {
		return reject("invalid crypto padding")
	}
	var header map[string]any
	if err := json.Unmarshal(headerRaw, &header); err != nil || header == nil {
		return reject("invalid header string")
	}

	// api_jws._verify_signature with algorithms="HS256": `alg not in
	// "HS256"` is a substring test on a str (a non-str alg raises
	// TypeError); a substring other than HS256 then misses the algorithm
	// table. Both escape as exceptions ConsoleMe does not catch.
	alg, ok := header["alg"].(string)
	if !ok || alg != "HS256" {
		return crash("alg %v is not HS256 (InvalidAlgorithmError)", header["alg"])
	}
	mac := hmac.New(sha256.New, []byte(c.Secret))
	mac.Write([]byte(signingInput))
	if !hmac.Equal(mac.Sum(nil), sig) {
		return reject("signature verification failed")
	}

	dec := json.NewDecoder(bytes.NewReader(payloadRaw))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return reject("invalid payload string")
	}
	now := c.Now().Unix()

	// _validate_iat. PyJWT only calls int() on it; ConsoleMe then computes
	// int(time.time()) - iat. The contract (DESIGN.md, PROTOCOL.md §7 and
	// checklist 12) is stricter than int(): iat must be present and a JSON
	// integer, so anything else is treated as the 500 a string or missing
	// iat produces in ConsoleMe.
	iatV, hasIat := claims["iat"]
	iat, isInt := JSONInteger(iatV)
	if hasIat && !isInt {
		return crash("iat %v is not an integer (InvalidIssuedAtError/TypeError)", iatV)
	}

	// _validate_nbf: int(nbf); ValueError is a DecodeError, TypeError is
	// uncaught; nbf > now raises ImmatureSignatureError, which ConsoleMe
	// does not catch.
	if v, ok := claims["nbf"]; ok {
		nbf, kind := pyInt(v)
		switch kind {
		case pyValueError:
			return reject("nbf %v must be an integer (DecodeError)", v)
		case pyTypeError:
			return crash("nbf %v: int() raises TypeError", v)
		}
		if nbf > now {
			return crash("nbf %d is in the future (ImmatureSignatureError)", nbf)
		}
	}

	// _validate_exp: exp < now is ExpiredSignatureError (caught).
	var exp int64
	if v, ok := claims["exp"]; ok {
		var kind pyIntResult
		exp, kind = pyInt(v)
		switch kind {
		case pyValueError:
			return reject("exp %v must be an integer (DecodeError)", v)
		case pyTypeError:
			return crash("exp %v: int() raises TypeError", v)
		}
		if exp < now {
			return reject("signature has expired (exp %d < now %d)", exp, now)
		}
	}

	// _validate_aud with audience=None: a truthy aud claim raises
	// InvalidAudienceError, which ConsoleMe does not catch.
	if v, ok := claims["aud"]; ok && pyTruthy(v) {
		return crash("aud %v present (InvalidAudienceError)", v)
	}

	// BaseMtlsHandler.prepare: int(time.time()) - None raises TypeError.
	if !hasIat {
		return crash("no iat claim: current_cert_age computation raises TypeError")
	}

	// validate_and_return_jwt_token reads the email claim and the groups
	// claim with a default of []. ConsoleMe then uses the email as the user
	// name and iterates the groups to map them to roles; anything but a
	// non-empty string and a list of strings fails there, so the stand-in
	// treats it as a crash.
	email, ok := claims[c.EmailClaim].(string)
	if !ok || email == "" {
		return crash("email claim %q is %v, not a non-empty string", c.EmailClaim, claims[c.EmailClaim])
	}
	groups := []string{}
	if v, ok := claims[c.GroupsClaim]; ok {
		list, ok := v.([]any)
		if !ok {
			return crash("groups claim %q is %v, not a list", c.GroupsClaim, v)
		}
		for _, g := range list {
			s, ok := g.(string)
			if !ok {
				return crash("groups claim %q holds %v, not a string", c.GroupsClaim, g)
			}
			groups = append(groups, s)
		}
	}
	return AuthOutcome{Verdict: TokenValid, Email: email, Groups: groups, IssuedAt: iat, Expires: exp}
}

// pyB64Decode decodes base64url with or without padding, as PyJWT's
// base64url_decode does after re-adding the padding.
func pyB64Decode(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

type pyIntResult int

const (
	pyIntOK pyIntResult = iota
	pyValueError
	pyTypeError
)

// pyInt mimics Python's int() on a value json.loads produced: numbers are
// truncated, numeric strings parsed, booleans are 0 or 1, other strings
// raise ValueError and null, lists and objects raise TypeError.
func pyInt(v any) (int64, pyIntResult) {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, pyIntOK
		}
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			// int(inf) is an OverflowError: uncaught, like a TypeError.
			return 0, pyTypeError
		}
		return int64(f), pyIntOK
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return 0, pyValueError
		}
		return n, pyIntOK
	case bool:
		if x {
			return 1, pyIntOK
		}
		return 0, pyIntOK
	}
	return 0, pyTypeError
}

// JSONInteger reports whether v is a JSON number written as an integer.
func JSONInteger(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok || strings.ContainsAny(string(n), ".eE") {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

// pyTruthy is Python truthiness for a value json.loads produced.
func pyTruthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case json.Number:
		f, err := x.Float64()
		return err != nil || f != 0
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
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
