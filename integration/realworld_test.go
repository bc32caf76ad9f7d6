package integration

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
)

// The tests in this file check the module against software no one here
// wrote: SimpleSAMLphp as the IdP and Chromium as the browser. The IdP runs
// on http://localhost:<port> and Caddy on https://127.0.0.1:<port> with
// `tls internal`, so the browser sees two sites, and the IdP's form POST to
// the ACS is cross-site, as it is in production. That is where SameSite
// cookie rules bite, which a Go cookie jar never shows.

// realWorld is one deployment: SimpleSAMLphp, Caddy with the module over
// https, and the real ConsoleMe (behind a recording proxy) behind Caddy.
type realWorld struct {
	*env
	SSP *simpleSAMLphp
	// SP is the module as the IdP knows it, converted from the module's
	// own /saml/metadata.
	SP       sspSP
	HTTPPort int

	client *testbed.Client
}

// realWorldSetup changes a deployment from its defaults: SimpleSAMLphp
// with alice and dave, the module reading email and groups from the
// attributes of those names.
type realWorldSetup struct {
	IdP    sspConfig
	Module func(*moduleConfig)
	// SPs makes the IdP's saml20-sp-remote entries once the deployment
	// runs, from rw.SP; by default the IdP trusts exactly the module.
	SPs func(rw *realWorld) []sspSP
	// ConsoleMe is the real ConsoleMe (behind its recording proxy) to
	// share between deployments; by default each gets its own proxy in
	// front of the shared ConsoleMe.
	ConsoleMe *realUpstream
}

// newRealWorld starts a deployment; everything stops when the test ends.
func newRealWorld(t testing.TB, s realWorldSetup) *realWorld {
	t.Helper()
	if len(s.IdP.Users) == 0 {
		s.IdP.Users = []idpUser{userAlice, userDave}
	}
	ssp := startSimpleSAMLphp(t, s.IdP)

	cm := s.ConsoleMe
	if cm == nil {
		cm = sharedRealConsoleMe(t)
	}
	secret := cm.Secret()
	certPath, keyPath := sharedKeyPair(t, "module-sp").writeFiles(t, t.TempDir())
	p := freePorts(t, 2)
	httpsPort, httpPort := p[0], p[1]
	base := fmt.Sprintf("https://127.0.0.1:%d", httpsPort)
	cfg := moduleConfig{
		Module: testbed.Module{JWTSecret: secret, PublicURL: base},
		SAML: testbed.SAML{IdPMetadataURL: ssp.MetadataURL, SPCert: certPath, SPKey: keyPath,
			EmailAttribute: "email", GroupsAttribute: "groups"},
	}
	if s.Module != nil {
		s.Module(&cfg)
	}
	caddy := startCaddy(t, httpsCaddyfile(httpsPort, httpPort, cfg, cm.Addr()))

	// The CLI side trusts Caddy's internal CA no more than a fresh machine
	// does; certificate checks are not what these tests are about.
	client := testbed.NewClient(testbed.ClientOptions{InsecureTLS: true})
	t.Cleanup(client.Close)
	rw := &realWorld{
		env:      &env{Secret: secret, Base: base, Config: cfg, Real: cm, Caddy: caddy},
		SSP:      ssp,
		HTTPPort: httpPort,
		client:   client,
	}
	rw.waitReady(t, httpsPort)

	// Register the module at the IdP from its own metadata, as an IdP
	// administrator would.
	r := rw.cli(t, http.MethodGet, base+"/saml/metadata", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /saml/metadata: %s", r)
	}
	rw.SP = spFromMetadata(t, r.Body)
	wantEntity := cfg.EntityID
	if wantEntity == "" {
		wantEntity = base + "/saml/metadata"
	}
	if rw.SP.EntityID != wantEntity || !reflect.DeepEqual(rw.SP.ACS, []string{base + "/saml/acs"}) {
		t.Fatalf("SP metadata names entity %q and ACS %v, want %q and [%s/saml/acs]", rw.SP.EntityID, rw.SP.ACS, wantEntity, base)
	}
	if rw.SP.SigningCert == "" && rw.SP.EncryptionCert == "" {
		t.Fatalf("SP metadata carries no certificate:\n%s", r.Body)
	}
	sps := []sspSP{rw.SP}
	if s.SPs != nil {
		sps = s.SPs(rw)
	}
	ssp.trustSPs(t, sps...)
	return rw
}

// httpsCaddyfile serves one site on https://127.0.0.1:<httpsPort> with a
// certificate from Caddy's internal CA, which is not installed into any
// trust store; http_port is where Caddy redirects plain http to https.
func httpsCaddyfile(httpsPort, httpPort int, cfg moduleConfig, upstream string) testbed.Caddyfile {
	return testbed.Caddyfile{
		Global: testbed.Global{SkipInstallTrust: true, HTTPPort: httpPort, HTTPSPort: httpsPort},
		Sites: []testbed.Site{{
			Address:   fmt.Sprintf("https://127.0.0.1:%d", httpsPort),
			TLS:       &testbed.TLS{Internal: true},
			Auth:      cfg.module(),
			Upstreams: []string{upstream},
		}},
	}
}

// waitReady waits until Caddy answers over https and the module has loaded
// the IdP's metadata, which it fetches in the background.
func (rw *realWorld) waitReady(t testing.TB, httpsPort int) {
	t.Helper()
	err := testbed.WaitFor(30*time.Second, 100*time.Millisecond, func() error {
		if _, err := rw.client.Do(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/saml/metadata", httpsPort), nil, ""); err != nil {
			return err
		}
		if !strings.Contains(rw.Caddy.Output(), "IdP metadata loaded") {
			return errors.New("the IdP metadata is not loaded yet")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Caddy did not serve https with the IdP metadata loaded: %v", err)
	}
}

// cli makes one request as the CLI does: no cookies, no redirects.
func (rw *realWorld) cli(t testing.TB, method, rawURL string, header http.Header) reply {
	t.Helper()
	return rw.cliBody(t, method, rawURL, header, "")
}

// cliBody is cli with a request body.
func (rw *realWorld) cliBody(t testing.TB, method, rawURL string, header http.Header, body string) reply {
	t.Helper()
	return send(t, rw.client, method, rawURL, header, body)
}

// generate asks for a challenge as Weep does.
func (rw *realWorld) generate(t testing.TB, user string) challenge {
	t.Helper()
	r := rw.cli(t, http.MethodGet, rw.Base+"/noauth/v1/challenge_generator/"+url.PathEscape(user), nil)
	if r.Status != http.StatusOK {
		t.Fatalf("generator: want 200, got %s", r)
	}
	m := r.object(t)
	cu, _ := m["challenge_url"].(string)
	pu, _ := m["polling_url"].(string)
	token := strings.TrimPrefix(cu, rw.Base+"/challenge_validator/")
	if token == cu || !isUUID4(token) || pu != rw.Base+"/noauth/v1/challenge_poller/"+token {
		t.Fatalf("generator answer %s does not point at %s", r.Body, rw.Base)
	}
	return challenge{User: user, Token: token, ChallengeURL: cu, PollingURL: pu}
}

// poll polls once; the answer must be HTTP 200 JSON with a status.
func (rw *realWorld) poll(t testing.TB, c challenge) map[string]any {
	t.Helper()
	r := rw.cli(t, http.MethodGet, c.PollingURL, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("poll: want 200, got %s", r)
	}
	m := r.object(t)
	if _, ok := m["status"].(string); !ok {
		t.Fatalf("poll: no status in %s", r.Body)
	}
	return m
}

func (rw *realWorld) expectPending(t testing.TB, c challenge) {
	t.Helper()
	if m := rw.poll(t, c); !reflect.DeepEqual(m, map[string]any{"status": "pending"}) {
		t.Errorf("poll: got %v, want exactly {status: pending}", m)
	}
}

// collect polls for the success the approval made and checks the token.
func (rw *realWorld) collect(t testing.TB, c challenge, user idpUser, approvedAfter time.Time) successReply {
	t.Helper()
	m := rw.poll(t, c)
	if m["status"] != "success" {
		t.Fatalf("poll after approval: got %v, want success", m)
	}
	s := rw.checkSuccess(t, m, user, approvedAfter)
	if again := rw.poll(t, c); again["status"] == "success" {
		t.Errorf("a second poll got success again: %v", again)
	}
	return s
}

// upstreamAccepts sends the token to the real ConsoleMe through Caddy as
// Weep and ConsoleMe's UI do, and checks that ConsoleMe accepts it as user:
// exactly the roles its group mapping gives user, and a profile naming user.
func (rw *realWorld) upstreamAccepts(t testing.TB, token string, user idpUser) {
	t.Helper()
	expectConsoleMeIdentity(t, rw.send, rw.Base, rw.Real, cookieHeader(rw.cookieName(), token), user)
}

// send is cli as a sendFunc.
func (rw *realWorld) send(t testing.TB, method, rawURL string, header http.Header) reply {
	t.Helper()
	return rw.cli(t, method, rawURL, header)
}

// signInAtIdP opens the challenge in a browser without a session, expects
// the module to send it to SimpleSAMLphp's login form, and logs in there.
// What the browser does next (the IdP's auto-submitted POST to the ACS)
// is left to the caller to wait for.
func (rw *realWorld) signInAtIdP(tb *tab, user idpUser, startURL string) {
	tb.t.Helper()
	tb.Navigate(startURL)
	tb.WaitVisible("#username")
	if got := hostOf(tb.Location()); got != hostOf(rw.SSP.URL) {
		tb.fail("the login form is at %s, want the IdP at %s", got, hostOf(rw.SSP.URL))
	}
	tb.Snapshot("idp-login-form")
	tb.Type("#username", user.Name)
	tb.Type("#password", user.Password)
	tb.Click("#submit_button")
}

// login walks a fresh browser through the whole SAML login that opening
// the challenge starts, and checks that it ends on the approval page with
// the session cookie set by the ACS. It returns the SAML response the IdP
// sent through the browser.
func (rw *realWorld) login(tb *tab, user idpUser, c challenge) samlResponseShape {
	tb.t.Helper()
	t := tb.t
	before := time.Now()
	rw.signInAtIdP(tb, user, c.ChallengeURL)
	tb.WaitFor("the approval page after the ACS", func(loc, _ string) bool {
		return loc == c.ChallengeURL || strings.HasPrefix(loc, rw.Base+"/saml/acs")
	})
	acs := rw.acsPost(tb)
	if acs.resp.Status != http.StatusSeeOther && acs.resp.Status != http.StatusFound {
		tb.fail("the ACS answered %d, want a redirect back to the challenge; Caddy logged:\n%s",
			acs.resp.Status, logLines(rw.Caddy.Output(), "SAML login"))
	}
	tb.WaitVisible("#approve")
	if loc := acs.resp.Location; loc != c.ChallengeURL && loc != strings.TrimPrefix(c.ChallengeURL, rw.Base) {
		t.Errorf("the ACS redirects to %q, want the challenge %s", loc, c.ChallengeURL)
	}

	ck := tb.Cookie(rw.Base, rw.cookieName())
	if ck == nil {
		tb.fail("the browser holds no %s cookie for %s after the ACS", rw.cookieName(), rw.Base)
	}
	if !ck.HTTPOnly || !ck.Secure || ck.SameSite != network.CookieSameSiteLax || ck.Path != "/" {
		t.Errorf("session cookie: HttpOnly=%v Secure=%v SameSite=%q Path=%q, want HttpOnly, Secure, Lax, /",
			ck.HTTPOnly, ck.Secure, ck.SameSite, ck.Path)
	}
	if life := time.Until(time.Unix(int64(ck.Expires), 0)); life < 59*time.Minute || life > 61*time.Minute {
		t.Errorf("session cookie expires in %v, want jwt_expiration (1h)", life)
	}
	rw.checkJWT(t, ck.Value, user, before)
	return acs.saml
}

// approve checks the approval page the browser shows and clicks #approve.
func (rw *realWorld) approve(tb *tab, user idpUser, c challenge) time.Time {
	tb.t.Helper()
	tb.WaitVisible("#approve")
	if loc := tb.Location(); loc != c.ChallengeURL {
		tb.fail("the approval page is at %s, want %s", loc, c.ChallengeURL)
	}
	text := tb.Text()
	for _, want := range []string{user.Email, "127.0.0.1"} {
		if !strings.Contains(text, want) {
			tb.t.Errorf("the approval page does not show %q:\n%s", want, text)
		}
	}
	tb.Snapshot("approval-page")
	approvedAfter := time.Now()
	answered := len(tb.Documents())
	tb.Click("#approve")
	tb.WaitFor("the answer to the approval", func(string, string) bool { return len(tb.Documents()) > answered })
	if d := tb.WaitDocument(http.MethodPost, c.ChallengeURL); d.Status != http.StatusOK {
		tb.WaitFor("the refusal page", func(loc, text string) bool { return loc == c.ChallengeURL && text != "" })
		tb.fail("approving: the module answered %d; Caddy logged:\n%s", d.Status, logLines(rw.Caddy.Output(), "challenge refused"))
	}
	tb.WaitText(approvedText)
	tb.Snapshot("approved")
	return approvedAfter
}

// acsExchange is the browser's POST to the ACS and the answer.
type acsExchange struct {
	req  docRequest
	resp docResponse
	saml samlResponseShape
}

// acsPost finds the browser's last POST to the module's ACS and decodes the
// SAML response it carried. The answer is recorded a moment after the page
// changes, so it is waited for.
func (rw *realWorld) acsPost(tb *tab) acsExchange {
	tb.t.Helper()
	acsURL := rw.Base + "/saml/acs"
	isACS := func(u string) bool { return u == acsURL || strings.HasPrefix(u, acsURL+"?") }
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ex acsExchange
		found := false
		for _, r := range tb.Requests() {
			if r.Method == http.MethodPost && isACS(r.URL) {
				ex.req, found = r, true
			}
		}
		for _, d := range tb.Documents() {
			if d.Method == http.MethodPost && isACS(d.URL) {
				ex.resp = d
			}
		}
		if found && ex.resp.Status != 0 {
			form, err := url.ParseQuery(string(ex.req.Body))
			if err != nil || form.Get("SAMLResponse") == "" {
				tb.fail("the POST to the ACS carries no SAMLResponse: %q", ex.req.Body)
			}
			ex.saml = decodeSAMLResponse(tb.t, form.Get("SAMLResponse"))
			return ex
		}
		if time.Now().After(deadline) {
			tb.fail("the browser made no POST to %s that was answered", acsURL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// expectRefused logs in at the IdP from startURL and expects the module's
// ACS to refuse the IdP's answer: a 403 page, no session cookie, the
// challenge still pending, and a log line that names why.
func (rw *realWorld) expectRefused(tb *tab, user idpUser, c challenge, startURL, reason string) samlResponseShape {
	tb.t.Helper()
	t := tb.t
	rw.signInAtIdP(tb, user, startURL)
	tb.WaitFor("the ACS's answer", func(loc, _ string) bool {
		return strings.HasPrefix(loc, rw.Base+"/saml/acs") || loc == c.ChallengeURL
	})
	acs := rw.acsPost(tb)
	tb.Snapshot("acs-answer")
	if acs.resp.Status != http.StatusForbidden {
		tb.fail("the ACS answered %d, want 403", acs.resp.Status)
	}
	if text := tb.Text(); !strings.Contains(text, "Sign-in failed") || strings.Contains(text, approvedText) {
		t.Errorf("the refusal page says:\n%s", text)
	}
	if ck := tb.Cookie(rw.Base, rw.cookieName()); ck != nil {
		t.Errorf("the browser got a %s cookie from a refused login", rw.cookieName())
	}
	rw.expectPending(t, c)
	if lines := logLines(rw.Caddy.Output(), "SAML login refused"); !strings.Contains(lines, reason) {
		t.Errorf("Caddy's log has no `SAML login refused` line naming %q:\n%s", reason, lines)
	}
	return acs.saml
}

// samlResponseShape is what the tests check about a SAML response the IdP
// sent: where the signatures are, and what the assertion says. Elements
// are matched by local name; paths below the assertion are not namespaced.
type samlResponseShape struct {
	Destination        string        `xml:"Destination,attr"`
	InResponseTo       string        `xml:"InResponseTo,attr"`
	Signature          *xmlSignature `xml:"Signature"`
	EncryptedAssertion *struct{}     `xml:"EncryptedAssertion"`
	Assertion          *struct {
		Signature *xmlSignature `xml:"Signature"`
		NameID    struct {
			Format string `xml:"Format,attr"`
			Value  string `xml:",chardata"`
		} `xml:"Subject>NameID"`
		Audiences  []string `xml:"Conditions>AudienceRestriction>Audience"`
		Attributes []struct {
			Name   string   `xml:"Name,attr"`
			Values []string `xml:"AttributeValue"`
		} `xml:"AttributeStatement>Attribute"`
	} `xml:"Assertion"`
}

type xmlSignature struct {
	Certificate string `xml:"KeyInfo>X509Data>X509Certificate"`
}

func decodeSAMLResponse(t testing.TB, b64 string) samlResponseShape {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("SAMLResponse is not base64: %v", err)
	}
	var s samlResponseShape
	if err := xml.Unmarshal(raw, &s); err != nil {
		t.Fatalf("SAMLResponse is not XML: %v\n%s", err, raw)
	}
	return s
}

func (s samlResponseShape) attribute(name string) []string {
	if s.Assertion == nil {
		return nil
	}
	for _, a := range s.Assertion.Attributes {
		if a.Name == name {
			return a.Values
		}
	}
	return nil
}

// TestRealWorldLogin walks the CLI challenge login with SimpleSAMLphp and
// Chromium: generator, challenge page, IdP login form, cross-site POST to
// the ACS, approval, poll, and ConsoleMe accepting the token. Then a second
// challenge in the same browser, which must not need the IdP again.
func TestRealWorldLogin(t *testing.T) {
	t.Parallel()
	skipIfShort(t)
	browser := startChromium(t)
	rw := newRealWorld(t, realWorldSetup{})
	tb := browser.newTab(t)

	var firstLoginDone bool
	t.Run("first-login", func(t *testing.T) {
		tb.t = t
		c := rw.generate(t, userAlice.Email)
		rw.expectPending(t, c)

		resp := rw.login(tb, userAlice, c)
		if resp.Signature == nil && (resp.Assertion == nil || resp.Assertion.Signature == nil) {
			t.Errorf("SimpleSAMLphp's response carries no signature at all")
		}
		if got := resp.attribute("groups"); !reflect.DeepEqual(got, userAlice.Groups) {
			t.Errorf("the IdP sent groups %v, want the multi-valued %v", got, userAlice.Groups)
		}
		// The IdP's answer reached the ACS from the IdP's page: a
		// cross-site POST.
		if reqs := tb.Requests(); !postedFrom(reqs, rw.Base+"/saml/acs", hostOf(rw.SSP.URL)) {
			t.Errorf("the POST to the ACS did not come from the IdP's page:\n%s", tb.NavigationLog())
		}
		rw.expectPending(t, c)

		approvedAfter := rw.approve(tb, userAlice, c)
		s := rw.collect(t, c, userAlice, approvedAfter)
		rw.upstreamAccepts(t, s.EncodedJWT, userAlice)
		// The browser's own cookie works at ConsoleMe too.
		rw.upstreamAccepts(t, tb.Cookie(rw.Base, rw.cookieName()).Value, userAlice)
		rw.expectNoLeaks(t)
		firstLoginDone = !t.Failed()
	})

	t.Run("second-challenge-same-browser", func(t *testing.T) {
		if !firstLoginDone {
			t.Skip("needs the browser session of first-login")
		}
		tb.t = t
		c := rw.generate(t, userAlice.Email)
		seen := len(tb.Requests())
		tb.Navigate(c.ChallengeURL)
		approvedAfter := rw.approve(tb, userAlice, c)
		for _, r := range tb.Requests()[seen:] {
			if hostOf(r.URL) != hostOf(rw.Base) {
				t.Errorf("with a session cookie the browser still went to %s %s", r.Method, r.URL)
			}
		}
		s := rw.collect(t, c, userAlice, approvedAfter)
		rw.upstreamAccepts(t, s.EncodedJWT, userAlice)
	})

	t.Run("user-without-groups", func(t *testing.T) {
		tb := browser.newTab(t)
		c := rw.generate(t, userDave.Email)
		resp := rw.login(tb, userDave, c)
		if got := resp.attribute("groups"); len(got) != 0 {
			t.Fatalf("the IdP sent groups %v for a user without any", got)
		}
		approvedAfter := rw.approve(tb, userDave, c)
		s := rw.collect(t, c, userDave, approvedAfter)
		rw.upstreamAccepts(t, s.EncodedJWT, userDave)
	})
}

// skipIfShort skips before any browser or IdP is started.
func skipIfShort(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with SimpleSAMLphp and Chromium, skipped with -short")
	}
}

// postedFrom reports whether the browser POSTed to target right after a
// page of fromHost.
func postedFrom(reqs []docRequest, target, fromHost string) bool {
	for i, r := range reqs {
		if r.Method == http.MethodPost && r.URL == target && i > 0 && hostOf(reqs[i-1].URL) == fromHost {
			return true
		}
	}
	return false
}

// TestRealWorldInterop runs the login against SimpleSAMLphp configured the
// ways real IdPs differ: which element is signed, key rotation, encrypted
// assertions, the email as NameID, and several audiences. It also checks
// that answers the module must not accept are refused in the browser.
func TestRealWorldInterop(t *testing.T) {
	t.Parallel()
	skipIfShort(t)
	browser := startChromium(t)
	// One recording proxy serves every deployment below.
	cm := sharedRealConsoleMe(t)
	newRealWorld := func(t *testing.T, s realWorldSetup) *realWorld {
		t.Helper()
		s.ConsoleMe = cm
		return newRealWorld(t, s)
	}

	// succeed runs the whole login and returns the SAML response that was
	// accepted.
	succeed := func(t *testing.T, s realWorldSetup) (*realWorld, samlResponseShape) {
		t.Helper()
		rw := newRealWorld(t, s)
		tb := browser.newTab(t)
		c := rw.generate(t, userAlice.Email)
		resp := rw.login(tb, userAlice, c)
		approvedAfter := rw.approve(tb, userAlice, c)
		sr := rw.collect(t, c, userAlice, approvedAfter)
		rw.upstreamAccepts(t, sr.EncodedJWT, userAlice)
		return rw, resp
	}
	withSPOptions := func(opts map[string]any) func(*realWorld) []sspSP {
		return func(rw *realWorld) []sspSP {
			sp := rw.SP
			sp.Options = opts
			return []sspSP{sp}
		}
	}

	t.Run("signing-key-rotation", func(t *testing.T) {
		// The IdP publishes two signing certificates and signs with the
		// second one listed.
		rw, resp := succeed(t, realWorldSetup{IdP: sspConfig{RotationCert: true}})
		certs := idpSigningCerts(t, rw.SSP.Metadata(t))
		want := []string{certBase64(*rw.SSP.NextCert), certBase64(rw.SSP.SigningCert)}
		if !reflect.DeepEqual(certs, want) {
			t.Errorf("IdP metadata signing certificates are not [next, current]: %d certificates", len(certs))
		}
		if sig := anySignature(resp); sig == nil || compact(sig.Certificate) != want[1] {
			t.Errorf("the response was not signed with the second certificate listed")
		}
	})

	t.Run("signed-response-only", func(t *testing.T) {
		_, resp := succeed(t, realWorldSetup{SPs: withSPOptions(map[string]any{
			"saml20.sign.response": true, "saml20.sign.assertion": false,
		})})
		if resp.Signature == nil || resp.Assertion == nil || resp.Assertion.Signature != nil {
			t.Errorf("want only the Response signed: response signed %v, assertion signed %v",
				resp.Signature != nil, resp.Assertion != nil && resp.Assertion.Signature != nil)
		}
	})

	t.Run("signed-assertion-only", func(t *testing.T) {
		_, resp := succeed(t, realWorldSetup{SPs: withSPOptions(map[string]any{
			"saml20.sign.response": false, "saml20.sign.assertion": true,
		})})
		if resp.Signature != nil || resp.Assertion == nil || resp.Assertion.Signature == nil {
			t.Errorf("want only the Assertion signed: response signed %v, assertion signed %v",
				resp.Signature != nil, resp.Assertion != nil && resp.Assertion.Signature != nil)
		}
	})

	t.Run("encrypted-assertion", func(t *testing.T) {
		// Encrypted to the encryption certificate of the module's
		// metadata.
		_, resp := succeed(t, realWorldSetup{SPs: withSPOptions(map[string]any{"assertion.encryption": true})})
		if resp.EncryptedAssertion == nil || resp.Assertion != nil {
			t.Errorf("want an EncryptedAssertion and no plain Assertion")
		}
	})

	t.Run("email-as-nameid", func(t *testing.T) {
		// The module reads the email from the NameID (no email_attribute);
		// SimpleSAMLphp makes an emailAddress NameID from the email
		// attribute.
		_, resp := succeed(t, realWorldSetup{
			Module: func(m *moduleConfig) { m.EmailAttribute = "" },
			SPs: withSPOptions(map[string]any{
				"NameIDFormat":               nameIDFormatEmail,
				"simplesaml.nameidattribute": "email",
			}),
		})
		if resp.Assertion == nil || resp.Assertion.NameID.Format != nameIDFormatEmail || resp.Assertion.NameID.Value != userAlice.Email {
			t.Errorf("want an emailAddress NameID %s from the IdP", userAlice.Email)
		}
	})

	t.Run("several-audiences", func(t *testing.T) {
		// SAML core 2.5.1.4: an AudienceRestriction with several Audience
		// elements addresses each of them, so the module is one of the
		// intended audiences and must accept.
		_, resp := succeed(t, realWorldSetup{SPs: withSPOptions(map[string]any{
			"audience": []string{"urn:example:consoleme-alias"},
		})})
		if resp.Assertion == nil || len(resp.Assertion.Audiences) != 2 {
			t.Errorf("want an assertion with two audiences")
		}
	})

	// SimpleSAMLphp has no clock to set back, but its assertion.lifetime
	// may be negative: NotOnOrAfter then lies that far in the past, as if
	// the IdP's clock were behind ours. Five minutes is beyond the
	// default allowance of 3m and within a configured 10m.
	expiredFiveMinutesAgo := withSPOptions(map[string]any{"assertion.lifetime": -300})

	t.Run("clock-skew-allowance", func(t *testing.T) {
		succeed(t, realWorldSetup{SPs: expiredFiveMinutesAgo, Module: func(m *moduleConfig) { m.ClockSkew = "10m" }})
	})

	t.Run("beyond-clock-skew-refused", func(t *testing.T) {
		rw := newRealWorld(t, realWorldSetup{SPs: expiredFiveMinutesAgo})
		tb := browser.newTab(t)
		c := rw.generate(t, userAlice.Email)
		rw.expectRefused(tb, userAlice, c, c.ChallengeURL, "expired")
	})

	t.Run("unsigned-response-refused", func(t *testing.T) {
		rw := newRealWorld(t, realWorldSetup{SPs: withSPOptions(map[string]any{
			"saml20.sign.response": false, "saml20.sign.assertion": false,
		})})
		tb := browser.newTab(t)
		c := rw.generate(t, userAlice.Email)
		resp := rw.expectRefused(tb, userAlice, c, c.ChallengeURL, "signature")
		if anySignature(resp) != nil {
			t.Errorf("the IdP signed although told not to; the test proves nothing")
		}
	})

	t.Run("wrong-destination-refused", func(t *testing.T) {
		// The IdP posts to an ACS URL that is not the module's (here the
		// same path with a query, so that it still reaches the module).
		// SimpleSAMLphp ignores the ACS URL the request asks for when its
		// metadata does not list it, as many IdPs do, so the response's
		// Destination and Recipient name the IdP's URL.
		rw := newRealWorld(t, realWorldSetup{SPs: func(rw *realWorld) []sspSP {
			sp := rw.SP
			sp.ACS = []string{sp.ACS[0] + "?tenant=other"}
			return []sspSP{sp}
		}})
		tb := browser.newTab(t)
		c := rw.generate(t, userAlice.Email)
		resp := rw.expectRefused(tb, userAlice, c, c.ChallengeURL, "Destination")
		if resp.Destination != rw.Base+"/saml/acs?tenant=other" {
			t.Errorf("the IdP sent Destination %q; the test proves nothing", resp.Destination)
		}
	})

	t.Run("wrong-audience-refused", func(t *testing.T) {
		// An IdP set up for another application answers with that
		// application's entity ID as the Audience. SimpleSAMLphp looks
		// the SP up by the AuthnRequest's Issuer and always names it as
		// the Audience, so the test presents the module's request under
		// the other application's name; everything else (InResponseTo,
		// RelayState, ACS) stays the module's.
		const other = "https://other-app.example/saml/metadata"
		rw := newRealWorld(t, realWorldSetup{SPs: func(rw *realWorld) []sspSP {
			o := rw.SP
			o.EntityID = other
			return []sspSP{rw.SP, o}
		}})
		tb := browser.newTab(t)
		c := rw.generate(t, userAlice.Email)
		start := rw.cli(t, http.MethodGet, c.ChallengeURL, nil)
		loc, err := url.Parse(start.Header.Get("Location"))
		if start.Status != http.StatusFound || err != nil || loc.Query().Get("SAMLRequest") == "" {
			t.Fatalf("the challenge page did not redirect to the IdP with a SAMLRequest: %s", start)
		}
		q := loc.Query()
		q.Set("SAMLRequest", reissueAuthnRequest(t, q.Get("SAMLRequest"), rw.SP.EntityID, other))
		loc.RawQuery = q.Encode()
		resp := rw.expectRefused(tb, userAlice, c, loc.String(), "AudienceRestriction")
		if resp.Assertion == nil || !reflect.DeepEqual(resp.Assertion.Audiences, []string{other}) {
			t.Errorf("the IdP did not send the other application's audience; the test proves nothing")
		}
	})
}

// idpSigningCerts lists the signing certificates of IdP metadata in order.
func idpSigningCerts(t testing.TB, metadata []byte) []string {
	t.Helper()
	var md struct {
		Keys []struct {
			Use  string `xml:"use,attr"`
			Cert string `xml:"KeyInfo>X509Data>X509Certificate"`
		} `xml:"IDPSSODescriptor>KeyDescriptor"`
	}
	if err := xml.Unmarshal(metadata, &md); err != nil {
		t.Fatalf("IdP metadata: %v", err)
	}
	var certs []string
	for _, k := range md.Keys {
		if k.Use == "" || k.Use == "signing" {
			certs = append(certs, compact(k.Cert))
		}
	}
	return certs
}

func anySignature(s samlResponseShape) *xmlSignature {
	if s.Signature != nil {
		return s.Signature
	}
	if s.Assertion != nil {
		return s.Assertion.Signature
	}
	return nil
}

// logLines returns the lines of a log that contain s.
func logLines(log, s string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func compact(s string) string { return strings.Join(strings.Fields(s), "") }

// reissueAuthnRequest rewrites the Issuer of an HTTP-Redirect-encoded
// (deflated, base64) AuthnRequest.
func reissueAuthnRequest(t testing.TB, encoded, from, to string) string {
	t.Helper()
	deflated, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
	if err != nil {
		t.Fatalf("inflating the AuthnRequest: %v", err)
	}
	doc := string(raw)
	if !strings.Contains(doc, ">"+from+"</") {
		t.Fatalf("the AuthnRequest has no Issuer %s:\n%s", from, doc)
	}
	doc = strings.Replace(doc, ">"+from+"</", ">"+to+"</", 1)
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	w.Write([]byte(doc))
	w.Close()
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}
