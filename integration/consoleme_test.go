package integration

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// consoleMe is a stand-in for an unchanged ConsoleMe behind the module. It
// accepts the consoleme_auth cookie exactly as ConsoleMe does (CM
// consoleme/lib/jwt.py validate_and_return_jwt_token on PyJWT 2.4.0, and
// BaseMtlsHandler.prepare; PROTOCOL.md section 7) and serves the two API
// calls Weep makes after logging in, with ConsoleMe's JSON shapes (PROTOCOL.md
// section 8). Its answers reveal the email and groups it read from the
// token, so a test can see what ConsoleMe would see.
//
// Under /echo/ it describes every request it receives, so tests can prove
// that the module passes requests through untouched. Every request is
// recorded (Requests) so tests can also prove that the module's own routes
// never leak to ConsoleMe.
type consoleMe struct {
	Secret      string
	CookieName  string
	EmailClaim  string
	GroupsClaim string
	// Now is the clock used for exp/nbf/iat checks; time.Now by default.
	Now func() time.Time

	srv *httptest.Server

	mu       sync.Mutex
	requests []upstreamRequest
}

// upstreamRequest is what the stand-in recorded about one request.
type upstreamRequest struct {
	Method     string
	RequestURI string
	Path       string
	// Set by the recorder in front of the real ConsoleMe.
	Header http.Header
	Body   []byte
	// Set by the stand-in for requests to the cookie-protected API.
	Auth *authOutcome
}

// authOutcome is the stand-in's verdict on one consoleme_auth cookie.
type authOutcome struct {
	Verdict  tokenVerdict
	Reason   string // why it was rejected or crashed
	Email    string
	Groups   []string
	IssuedAt int64
	Expires  int64
}

type tokenVerdict int

const (
	// tokenValid: validate_and_return_jwt_token returned the identity.
	tokenValid tokenVerdict = iota
	// tokenRejected: it returned False (expired, bad signature, malformed);
	// ConsoleMe answers 403 invalid_jwt.
	tokenRejected
	// tokenCrash: an exception ConsoleMe does not catch; Tornado answers 500.
	tokenCrash
)

func (v tokenVerdict) String() string {
	switch v {
	case tokenValid:
		return "valid"
	case tokenRejected:
		return "rejected (403 invalid_jwt)"
	case tokenCrash:
		return "crash (500)"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// newConsoleMe starts the stand-in on 127.0.0.1 with ConsoleMe's default
// cookie and claim names; it is closed when the test ends.
func newConsoleMe(t testing.TB, secret string) *consoleMe {
	t.Helper()
	c := &consoleMe{
		Secret:      secret,
		CookieName:  "consoleme_auth",
		EmailClaim:  "email",
		GroupsClaim: "groups",
		Now:         time.Now,
	}
	c.srv = httptest.NewServer(c)
	t.Cleanup(c.srv.Close)
	return c
}

// URL is the stand-in's base URL, http://127.0.0.1:<port>.
func (c *consoleMe) URL() string { return c.srv.URL }

// Addr is host:port, as reverse_proxy wants it.
func (c *consoleMe) Addr() string { return strings.TrimPrefix(c.srv.URL, "http://") }

// Requests returns a copy of everything received so far.
func (c *consoleMe) Requests() []upstreamRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]upstreamRequest(nil), c.requests...)
}

func (c *consoleMe) record(r upstreamRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, r)
}

func (c *consoleMe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := upstreamRequest{Method: r.Method, RequestURI: r.RequestURI, Path: r.URL.Path}
	switch {
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
func (c *consoleMe) serveAPI(w http.ResponseWriter, r *http.Request, rec upstreamRequest, method string,
	next func(http.ResponseWriter, *http.Request, *authOutcome)) {
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
	out := c.checkToken(cookie)
	rec.Auth = &out
	c.record(rec)
	switch out.Verdict {
	case tokenRejected:
		writeJSON(w, http.StatusForbidden, "application/json; charset=UTF-8", map[string]any{
			"code":       "invalid_jwt",
			"message":    "JWT is invalid or has expired.",
			"request_id": uuid.NewString(),
		})
		return
	case tokenCrash:
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

// rolesFor maps each group to one role, so the role list reveals the groups
// the stand-in read from the token.
func rolesFor(groups []string) []string {
	arns := make([]string, 0, len(groups))
	for _, g := range groups {
		arns = append(arns, "arn:aws:iam::"+standInAccount+":role/"+g)
	}
	return arns
}

// serveGetRoles answers GET /api/v2/get_roles?all=true with the shape of
// GetRolesMTLSHandler.get. The requester's email is the owner of every app.
func (c *consoleMe) serveGetRoles(w http.ResponseWriter, r *http.Request, id *authOutcome) {
	roles := []map[string]any{}
	for _, arn := range rolesFor(id.Groups) {
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

// standInSession is what the stand-in packs into the SessionToken of the
// credentials it hands out, so a test can read who asked for them.
type standInSession struct {
	Email  string   `json:"email"`
	Groups []string `json:"groups"`
	Role   string   `json:"role"`
}

// serveGetCredentials answers POST /api/v1/get_credentials with the shape of
// GetCredentialsHandler.post: a role the groups allow gets credentials whose
// Expiration is an integer, as in the default AWS plugin.
func (c *consoleMe) serveGetCredentials(w http.ResponseWriter, r *http.Request, id *authOutcome) {
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
	for _, arn := range rolesFor(id.Groups) {
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
	sess, _ := json.Marshal(standInSession{Email: id.Email, Groups: id.Groups, Role: match})
	writeJSON(w, http.StatusOK, "application/json; charset=UTF-8", map[string]any{
		"Credentials": map[string]any{
			"AccessKeyId":     "ASIASTANDIN" + strings.ToUpper(uuid.NewString()[:8]),
			"SecretAccessKey": uuid.NewString(),
			"SessionToken":    base64.RawURLEncoding.EncodeToString(sess),
			"Expiration":      c.Now().Add(time.Hour).Unix(),
		},
	})
}

// echoReply is the stand-in's description of a request under /echo/.
type echoReply struct {
	Method     string              `json:"method"`
	RequestURI string              `json:"request_uri"`
	Path       string              `json:"path"`
	RawQuery   string              `json:"raw_query"`
	Host       string              `json:"host"`
	Header     map[string][]string `json:"header"`
	Cookies    []echoCookie        `json:"cookies"`
	Body       string              `json:"body"`
}

type echoCookie struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (c *consoleMe) serveEcho(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	reply := echoReply{
		Method:     r.Method,
		RequestURI: r.RequestURI,
		Path:       r.URL.Path,
		RawQuery:   r.URL.RawQuery,
		Host:       r.Host,
		Header:     r.Header,
		Cookies:    []echoCookie{},
		Body:       string(body),
	}
	for _, ck := range r.Cookies() {
		reply.Cookies = append(reply.Cookies, echoCookie{Name: ck.Name, Value: ck.Value})
	}
	writeJSON(w, http.StatusOK, "application/json", reply)
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// checkToken reproduces ConsoleMe's acceptance of a cookie:
// jwt.decode(cookie, jwt_secret, algorithms="HS256") in PyJWT 2.4.0 with
// its defaults (leeway 0, no required claims, no audience given), then
// validate_and_return_jwt_token and BaseMtlsHandler.prepare. Exceptions that
// ConsoleMe catches (ExpiredSignatureError, InvalidSignatureError,
// DecodeError) reject the token; any other exception is a crash (HTTP 500).
func (c *consoleMe) checkToken(token string) authOutcome {
	reject := func(format string, a ...any) authOutcome {
		return authOutcome{Verdict: tokenRejected, Reason: fmt.Sprintf(format, a...)}
	}
	crash := func(format string, a ...any) authOutcome {
		return authOutcome{Verdict: tokenCrash, Reason: fmt.Sprintf(format, a...)}
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
	iat, isInt := jsonInteger(iatV)
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
	return authOutcome{Verdict: tokenValid, Email: email, Groups: groups, IssuedAt: iat, Expires: exp}
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

// jsonInteger reports whether v is a JSON number written as an integer.
func jsonInteger(v any) (int64, bool) {
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

// sortedCopy returns a sorted copy, for order-insensitive comparisons.
func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}
