package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Texts of the contract.
const (
	approvedText = "You've successfully authenticated to ConsoleMe and may now close this page."
	otherIP      = "203.0.113.7" // TEST-NET-3: "another client" via X-Forwarded-For
)

// env is one complete deployment: ConsoleMe (the real one behind its
// recording proxy, or the stand-in), the SAML IdP with alice and dave, and
// Caddy running the module in front of ConsoleMe.
type env struct {
	Secret    string
	Base      string // Caddy's base URL, http://127.0.0.1:<port>
	Config    moduleConfig
	ConsoleMe *consoleMe    // the stand-in, when the deployment has it
	Real      *realUpstream // the real ConsoleMe, when the deployment has it
	IdP       *testIdP
	Caddy     *caddyProc
}

// newEnv starts a deployment in front of the stand-in ConsoleMe, for tests
// of the module's own routes, which never reach ConsoleMe. The module gets
// only the required settings plus the SAML attribute names samlidp uses;
// opts change that config before Caddy starts.
func newEnv(t testing.TB, opts ...func(*moduleConfig)) *env {
	t.Helper()
	// Skip (under -short) or fail (broken build) before starting anything.
	caddyBinary(t)
	secret := "integration-" + uuid.NewString()
	return newEnvWith(t, newConsoleMe(t, secret), nil, opts...)
}

// newRealEnv is newEnv in front of the real ConsoleMe: tests that use it
// ask ConsoleMe itself whether it accepts what the module minted.
func newRealEnv(t testing.TB, real *realUpstream, opts ...func(*moduleConfig)) *env {
	t.Helper()
	caddyBinary(t)
	return newEnvWith(t, nil, real, opts...)
}

// newEnvWith starts the IdP and Caddy in front of either the stand-in cm or
// the real ConsoleMe.
func newEnvWith(t testing.TB, cm *consoleMe, real *realUpstream, opts ...func(*moduleConfig)) *env {
	t.Helper()
	secret, upstream := "", ""
	if real != nil {
		secret, upstream = real.Secret(), real.Addr()
	} else {
		secret, upstream = cm.Secret, cm.Addr()
	}
	idp := startIdP(t, userAlice, userDave)
	certPath, keyPath := sharedKeyPair(t, "module-sp").writeFiles(t, t.TempDir())
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	cfg := moduleConfig{
		Module: testbed.Module{JWTSecret: secret, PublicURL: base},
		SAML: testbed.SAML{IdPMetadataURL: idp.MetadataURL, SPCert: certPath, SPKey: keyPath,
			EmailAttribute: samlAttrMail, GroupsAttribute: samlAttrAffiliation},
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cm != nil && cfg.CookieName != "" {
		cm.CookieName = cfg.CookieName
	}
	if cm != nil && cfg.EmailClaim != "" {
		cm.EmailClaim = cfg.EmailClaim
	}
	if cm != nil && cfg.GroupsClaim != "" {
		cm.GroupsClaim = cfg.GroupsClaim
	}

	caddy := startCaddy(t, siteCaddyfile(port, cfg, upstream))
	if cfg.IdPMetadataURL != "" {
		waitIdPMetadata(t, caddy)
	}
	idp.registerSPFromURL(t, "consoleme", base+"/saml/metadata")
	return &env{Secret: secret, Base: base, Config: cfg, ConsoleMe: cm, Real: real, IdP: idp, Caddy: caddy}
}

// waitIdPMetadata waits until Caddy has loaded the IdP's metadata, which
// the module fetches in the background; a login before that gets "sign-in
// unavailable".
func waitIdPMetadata(t testing.TB, caddy *caddyProc) {
	t.Helper()
	if err := testbed.WaitFor(20*time.Second, 20*time.Millisecond, func() error {
		if !strings.Contains(caddy.Output(), "IdP metadata loaded") {
			return errors.New("Caddy has not logged \"IdP metadata loaded\"")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// cookieName is the session cookie's name in this deployment.
func (e *env) cookieName() string {
	if e.Config.CookieName != "" {
		return e.Config.CookieName
	}
	return "consoleme_auth"
}

// reply is a fully read response to a non-browser request.
type reply testbed.Reply

func (r reply) String() string { return fmt.Sprintf("%d %v %s", r.Status, r.Header, r.Body) }

// object decodes the body as one JSON object, numbers kept as json.Number,
// and fails the test if it is anything else.
func (r reply) object(t testing.TB) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		t.Fatalf("want one JSON object, got %s (%v)", r, err)
	}
	if dec.More() {
		t.Fatalf("trailing data after the JSON object: %s", r)
	}
	return m
}

// call makes one request without cookies or redirects, as a CLI would.
func call(t testing.TB, method, rawURL string, header http.Header, body string) reply {
	t.Helper()
	return send(t, plainClient, method, rawURL, header, body)
}

// plainClient is the test bed's client for plain http.
var plainClient = testbed.NewClient(testbed.ClientOptions{})

// send makes one request with c and fails the test if it gets no answer.
func send(t testing.TB, c *testbed.Client, method, rawURL string, header http.Header, body string) reply {
	t.Helper()
	r, err := c.Do(method, rawURL, header, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	return reply(r)
}

// fromOtherIP is the header set that makes Caddy see otherIP as the client.
func fromOtherIP() http.Header { return http.Header{"X-Forwarded-For": {otherIP}} }

// challenge is a generated challenge.
type challenge struct {
	User         string
	Token        string
	ChallengeURL string
	PollingURL   string
}

// generate asks for a challenge for user (put into the path as is) and
// checks the answer against the contract.
func (e *env) generate(t testing.TB, user string, header http.Header) challenge {
	t.Helper()
	return e.generateAt(t, "/noauth/v1/challenge_generator/", user, header)
}

func (e *env) generateAt(t testing.TB, route, user string, header http.Header) challenge {
	t.Helper()
	r := call(t, http.MethodGet, e.Base+route+user, header, "")
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("generator for %q: want 200 JSON, got %s", user, r)
	}
	m := r.object(t)
	if len(m) != 2 {
		t.Errorf("generator reply has keys %v, want exactly challenge_url and polling_url", keys(m))
	}
	cu, _ := m["challenge_url"].(string)
	pu, _ := m["polling_url"].(string)
	token := strings.TrimPrefix(cu, e.Base+"/challenge_validator/")
	if token == cu || !isUUID4(token) {
		t.Fatalf("challenge_url %q is not %s/challenge_validator/<uuid4>", cu, e.Base)
	}
	if pu != e.Base+"/noauth/v1/challenge_poller/"+token {
		t.Fatalf("polling_url %q, want %s/noauth/v1/challenge_poller/%s", pu, e.Base, token)
	}
	return challenge{User: user, Token: token, ChallengeURL: cu, PollingURL: pu}
}

// isUUID4 reports whether s is a hyphenated, lower-case version 4 UUID, as
// Python's str(uuid.uuid4()) writes it.
func isUUID4(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && len(s) == 36 && u.Version() == 4 && u.String() == s
}

func keys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

// poll polls a challenge once and returns the decoded reply, which must be
// HTTP 200 JSON with a string status (everything Weep can parse).
func (e *env) poll(t testing.TB, pollingURL string, header http.Header) map[string]any {
	t.Helper()
	r := call(t, http.MethodGet, pollingURL, header, "")
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("poll %s: want HTTP 200 JSON, got %s", pollingURL, r)
	}
	m := r.object(t)
	if _, ok := m["status"].(string); !ok {
		t.Fatalf("poll %s: no string status in %s", pollingURL, r.Body)
	}
	return m
}

// expectPoll checks that a poll answers exactly {"status": status}, which is
// the shape of every answer but success.
func (e *env) expectPoll(t testing.TB, pollingURL string, header http.Header, status string) {
	t.Helper()
	m := e.poll(t, pollingURL, header)
	if want := map[string]any{"status": status}; !reflect.DeepEqual(m, want) {
		t.Errorf("poll %s: got %v, want exactly %v", pollingURL, m, want)
	}
}

// pollSuccess polls once, expects the success answer and checks its shape
// and the token against the contract. It returns the reply.
func (e *env) pollSuccess(t testing.TB, pollingURL string, header http.Header, user idpUser) successReply {
	t.Helper()
	before := time.Now()
	m := e.poll(t, pollingURL, header)
	if m["status"] != "success" {
		t.Fatalf("poll %s: want success, got %v", pollingURL, m)
	}
	return e.checkSuccess(t, m, user, before)
}

// successReply is the poller's success answer.
type successReply struct {
	CookieName string
	Expiration int64
	EncodedJWT string
	User       string
}

func (e *env) checkSuccess(t testing.TB, m map[string]any, user idpUser, before time.Time) successReply {
	t.Helper()
	want := []string{"cookie_name", "encoded_jwt", "expiration", "status", "user"}
	if got := keys(m); !reflect.DeepEqual(got, want) {
		t.Errorf("success reply keys %v, want %v", got, want)
	}
	var s successReply
	s.CookieName, _ = m["cookie_name"].(string)
	s.EncodedJWT, _ = m["encoded_jwt"].(string)
	s.User, _ = m["user"].(string)
	exp, isInt := jsonInteger(m["expiration"])
	if !isInt {
		t.Errorf("expiration %v is not a JSON integer", m["expiration"])
	}
	s.Expiration = exp
	if s.CookieName != e.cookieName() {
		t.Errorf("cookie_name %q, want %q", s.CookieName, e.cookieName())
	}
	if s.User != user.Email {
		t.Errorf("user %q, want %q", s.User, user.Email)
	}
	claims := e.checkJWT(t, s.EncodedJWT, user, before)
	if claims.Exp != s.Expiration {
		t.Errorf("expiration %d differs from the JWT's exp %d", s.Expiration, claims.Exp)
	}
	return s
}

// mintedClaims are the checked claims of a token the module minted.
type mintedClaims struct {
	Nbf, Iat, Exp int64
	Email         string
	Groups        []string
}

// checkJWT verifies a token the module minted at or after notBefore against
// the contract: HS256 over the secret with the header ConsoleMe writes,
// integer nbf/iat/exp with nbf at least 5 s before minting and exp
// jwt_expiration after it,
// the email and the groups (a list, never null) under the configured claim
// names, and no aud.
func (e *env) checkJWT(t testing.TB, token string, user idpUser, notBefore time.Time) mintedClaims {
	t.Helper()
	var c mintedClaims
	parsed, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return []byte(e.Secret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithLeeway(0))
	if err != nil || !parsed.Valid {
		t.Errorf("token %q does not verify with HS256 and the secret: %v", token, err)
		return c
	}
	parts := strings.Split(token, ".")
	rawHeader, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var header map[string]any
	_ = json.Unmarshal(rawHeader, &header)
	if want := map[string]any{"typ": "JWT", "alg": "HS256"}; !reflect.DeepEqual(header, want) {
		t.Errorf("JWT header %s, want {\"typ\":\"JWT\",\"alg\":\"HS256\"}", rawHeader)
	}
	rawPayload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	dec := json.NewDecoder(bytes.NewReader(rawPayload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		t.Fatalf("JWT payload %s: %v", rawPayload, err)
	}
	for _, name := range []string{"nbf", "iat", "exp"} {
		v, isInt := jsonInteger(claims[name])
		if !isInt {
			t.Errorf("claim %s is %v, want a JSON integer (payload %s)", name, claims[name], rawPayload)
		}
		switch name {
		case "nbf":
			c.Nbf = v
		case "iat":
			c.Iat = v
		case "exp":
			c.Exp = v
		}
	}
	if _, ok := claims["aud"]; ok {
		t.Errorf("JWT has an aud claim, which ConsoleMe answers with a 500: %s", rawPayload)
	}
	// nbf and iat lie 5 s before the minting time, so that a ConsoleMe
	// whose clock is up to 5 s behind accepts the token.
	now := time.Now().Unix()
	if c.Iat < notBefore.Unix()-6 || c.Iat > now-4 {
		t.Errorf("iat %d is not 5 s before the minting time (between %d and %d)", c.Iat, notBefore.Unix(), now)
	}
	if d := c.Iat - c.Nbf; d < -1 || d > 1 {
		t.Errorf("nbf %d is %d s before iat %d, want both 5 s before the minting time", c.Nbf, d, c.Iat)
	}
	lifetime := time.Hour
	if e.Config.JWTExpiration != "" {
		lifetime, _ = time.ParseDuration(e.Config.JWTExpiration)
	}
	if life := int64(lifetime.Seconds()); c.Exp < notBefore.Unix()+life-1 || c.Exp > now+life+1 {
		t.Errorf("exp %d is not jwt_expiration %v after the minting time (between %d and %d)", c.Exp, lifetime, notBefore.Unix(), now)
	}

	emailClaim, groupsClaim := "email", "groups"
	if e.Config.EmailClaim != "" {
		emailClaim = e.Config.EmailClaim
	}
	if e.Config.GroupsClaim != "" {
		groupsClaim = e.Config.GroupsClaim
	}
	c.Email, _ = claims[emailClaim].(string)
	if c.Email != user.Email {
		t.Errorf("claim %s = %v, want %q", emailClaim, claims[emailClaim], user.Email)
	}
	list, ok := claims[groupsClaim].([]any)
	if !ok {
		t.Errorf("claim %s = %v, want a JSON list (payload %s)", groupsClaim, claims[groupsClaim], rawPayload)
	}
	c.Groups = []string{}
	for _, g := range list {
		s, ok := g.(string)
		if !ok {
			t.Errorf("group %v is not a string", g)
		}
		c.Groups = append(c.Groups, s)
	}
	wantGroups := user.Groups
	if wantGroups == nil {
		wantGroups = []string{}
	}
	if !reflect.DeepEqual(sortedCopy(c.Groups), sortedCopy(wantGroups)) {
		t.Errorf("claim %s = %v, want %v", groupsClaim, c.Groups, wantGroups)
	}
	return c
}

// login runs the SAML login that a fresh visit of challengeURL starts and
// checks the module's ACS answer: a same-origin redirect back to the
// challenge URL that sets the session cookie (HttpOnly, SameSite=Lax,
// Path=/, not Secure over http, lifetime jwt_expiration).
func (e *env) login(t testing.TB, b *browser, user idpUser, challengeURL string) samlLoginHops {
	t.Helper()
	before := time.Now()
	hops := samlLogin(t, b, e.IdP, user, challengeURL)
	acs := hops.ACS
	if !isRedirect(acs.Status) {
		t.Fatalf("ACS: want a 302/303 redirect back to the challenge, got\n%s", acs)
	}
	if loc := acs.Location(); !sameOrigin(loc, e.Base) || loc.String() != challengeURL {
		t.Fatalf("ACS redirects to %v, want the challenge URL %s", loc, challengeURL)
	}
	ck := acs.Cookie(e.cookieName())
	if ck == nil {
		t.Fatalf("ACS sets no %s cookie; Set-Cookie: %q", e.cookieName(), acs.Header.Values("Set-Cookie"))
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure {
		t.Errorf("session cookie attributes: %q, want HttpOnly; SameSite=Lax; Path=/ and no Secure over http", ck.Raw)
	}
	lifetime := time.Hour
	if e.Config.JWTExpiration != "" {
		lifetime, _ = time.ParseDuration(e.Config.JWTExpiration)
	}
	switch {
	case ck.MaxAge > 0:
		if d := time.Duration(ck.MaxAge) * time.Second; d < lifetime-5*time.Second || d > lifetime {
			t.Errorf("session cookie Max-Age %d, want about %v", ck.MaxAge, lifetime)
		}
	case !ck.Expires.IsZero():
		if d := time.Until(ck.Expires); d < lifetime-10*time.Second || d > lifetime+5*time.Second {
			t.Errorf("session cookie Expires %v, want about %v from now", ck.Expires, lifetime)
		}
	default:
		t.Errorf("session cookie %q has no lifetime, want jwt_expiration (%v)", ck.Raw, lifetime)
	}
	e.checkJWT(t, ck.Value, user, before)
	if got := b.CookieValue(e.Base, e.cookieName()); got != ck.Value {
		t.Errorf("browser does not send the session cookie back")
	}
	return hops
}

// loggedInBrowser returns a browser that holds a session cookie for user,
// obtained by logging in through a throwaway challenge that is never viewed.
func (e *env) loggedInBrowser(t testing.TB, user idpUser) *browser {
	t.Helper()
	b := newBrowser(t)
	c := e.generate(t, user.Email, nil)
	e.login(t, b, user, c.ChallengeURL)
	return b
}

// openApproval loads a challenge page that must be the approval page: 200
// HTML naming the user and the client IP, with exactly one POST form that
// has a submit button id="approve".
func (e *env) openApproval(t testing.TB, b *browser, challengeURL string, user, clientIP string) (*page, htmlForm) {
	t.Helper()
	p := b.Get(challengeURL)
	if p.Status != http.StatusOK || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("approval page: want 200 HTML, got\n%s", p)
	}
	text := p.Text()
	for _, want := range []string{user, clientIP} {
		if !strings.Contains(text, want) {
			t.Errorf("approval page does not show %q: %s", want, text)
		}
	}
	forms := p.Forms()
	if len(forms) != 1 {
		t.Fatalf("approval page has %d forms, want one:\n%s", len(forms), p)
	}
	f := forms[0]
	if f.Method != "post" {
		t.Errorf("approval form method %q, want POST", f.Method)
	}
	if btn := f.Control("approve"); btn == nil || !btn.IsSubmit() {
		t.Fatalf("approval form has no submit button id=\"approve\":\n%s", p)
	}
	return p, f
}

// approve submits the approval form and expects the success page.
func (e *env) approve(t testing.TB, b *browser, p *page, f htmlForm) *page {
	t.Helper()
	res := b.Submit(p, f, "approve")
	if res.Status != http.StatusOK || !strings.Contains(res.Text(), approvedText) {
		t.Fatalf("approving: want 200 with %q, got\n%s", approvedText, res)
	}
	return res
}

// expectErrorPage checks a validator answer that must refuse: the status,
// an HTML page, and nothing to approve with.
func expectErrorPage(t testing.TB, p *page, status int) {
	t.Helper()
	if p.Status != status {
		t.Errorf("want status %d, got\n%s", status, p)
	}
	if !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
		t.Errorf("want an HTML page, got Content-Type %q", p.Header.Get("Content-Type"))
	}
	for _, f := range p.Forms() {
		if f.Control("approve") != nil {
			t.Errorf("an error page offers an approve button:\n%s", p)
		}
	}
	if strings.Contains(p.Text(), approvedText) {
		t.Errorf("an error page claims success:\n%s", p)
	}
}

// moduleRoutePrefixes are paths only the module may answer.
var moduleRoutePrefixes = []string{
	"/noauth/v1/challenge_generator", "/noauth/v1/challenge:generator",
	"/noauth/v1/challenge_poller", "/noauth/v1/challenge:poller",
	"/challenge_validator", "/challenge:validator",
	"/api/v2/challenge_validator", "/api/v2/challenge:validator",
	"/saml/metadata", "/saml/acs",
}

// upstreamRequests is what reached ConsoleMe, real or stand-in.
func (e *env) upstreamRequests() []upstreamRequest {
	if e.Real != nil {
		return e.Real.Requests()
	}
	return e.ConsoleMe.Requests()
}

// expectNoLeaks fails if any of the module's routes reached ConsoleMe.
func (e *env) expectNoLeaks(t testing.TB) {
	t.Helper()
	for _, r := range e.upstreamRequests() {
		for _, p := range moduleRoutePrefixes {
			if r.Path == p || strings.HasPrefix(r.Path, p+"/") {
				t.Errorf("the module's route %s %s reached ConsoleMe", r.Method, r.RequestURI)
			}
		}
	}
}

// upstreamIdentity calls ConsoleMe through Caddy with the cookie, as Weep
// does, and checks that ConsoleMe accepts it and sees user's email and
// groups: the real ConsoleMe's roles and profile when the deployment has it,
// else the stand-in's get_roles and get_credentials.
func (e *env) upstreamIdentity(t testing.TB, cookieValue string, user idpUser) {
	t.Helper()
	if e.Real != nil {
		expectConsoleMeIdentity(t, plainSend, e.Base, e.Real, cookieHeader(e.cookieName(), cookieValue), user)
		return
	}
	h := http.Header{
		"Content-Type": {"application/json"},
		"Cookie":       {e.cookieName() + "=" + cookieValue},
		"User-Agent":   {"weep/integration Go-http-client/1.1"},
	}
	r := call(t, http.MethodGet, e.Base+"/api/v2/get_roles?all=true", h, "")
	if r.Status != http.StatusOK {
		t.Fatalf("get_roles with the minted cookie: %s", r)
	}
	roles := decodeRoles(t, r.Body)
	if got, want := roleNames(roles), sortedCopy(user.Groups); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("ConsoleMe saw groups %v, want %v", got, want)
	}
	for _, role := range roles {
		if owner := role.Apps.AppDetails[0].Owner; owner != user.Email {
			t.Errorf("ConsoleMe saw email %q, want %q", owner, user.Email)
		}
	}
	reqs := e.ConsoleMe.Requests()
	if last := reqs[len(reqs)-1]; last.Auth == nil || last.Auth.Email != user.Email {
		t.Errorf("ConsoleMe's last request %+v, want it authenticated as %s", last, user.Email)
	}
	if len(user.Groups) == 0 {
		return
	}
	body := fmt.Sprintf(`{"requested_role":"%s","no_ip_restrictions":false}`, rolesFor(user.Groups[:1])[0])
	r = call(t, http.MethodPost, e.Base+"/api/v1/get_credentials", h, body)
	if r.Status != http.StatusOK {
		t.Fatalf("get_credentials with the minted cookie: %s", r)
	}
	sess := decodeCredentials(t, r.Body)
	if sess.Email != user.Email || !reflect.DeepEqual(sortedCopy(sess.Groups), sortedCopy(user.Groups)) {
		t.Errorf("ConsoleMe issued credentials to %+v, want %s with %v", sess, user.Email, user.Groups)
	}
}

// forgeToken signs ConsoleMe-shaped claims for user with secret, changed
// by mod; HS256 unless alg says otherwise.
func forgeToken(t testing.TB, alg, secret string, user idpUser, mod func(map[string]any)) string {
	t.Helper()
	claims := consoleMeClaims(user.Email, user.Groups, time.Now())
	if mod != nil {
		mod(claims)
	}
	return signedToken(t, alg, secret, claims)
}

// redirectsToIdP checks that the module answered a validator visit by
// sending the browser to the IdP.
func (e *env) redirectsToIdP(t testing.TB, p *page) {
	t.Helper()
	loc := p.Location()
	if !isRedirect(p.Status) || loc == nil || loc.Scheme+"://"+loc.Host+loc.Path != e.IdP.SSOURL {
		t.Errorf("want a redirect to the IdP (%s), got\n%s", e.IdP.SSOURL, p)
	}
}

// pathEscapeAll percent-encodes every byte, for generator inputs that must
// reach the module exactly.
func pathEscapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}
