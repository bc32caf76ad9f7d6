package consolemeauth

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth"
)

// The parties of the attack tests, as the handler of newAttackEnv sees them.
const (
	attackIdPEntity   = "https://idp.example.com/metadata"
	attackSPEntity    = "https://consoleme.example.com/saml/metadata"
	attackACS         = "https://consoleme.example.com/saml/acs"
	otherSPEntity     = "https://other-sp.example.com/saml/metadata"
	otherSPACS        = "https://other-sp.example.com/saml/acs"
	otherIdPEntity    = "https://evil-idp.example.com/metadata"
	attackBrowserIP   = "192.0.2.10"
	attackVictim      = "alice@example.com"
	attackAttacker    = "mallory@example.com"
	attackACSDeadline = 30 * time.Second
	// hostileXMLDeadline bounds the answer to a parser attack; a correct
	// refusal takes milliseconds even under the race detector.
	hostileXMLDeadline = 5 * time.Second
)

// attackSigner is the signing key of an IdP: the one the handler trusts, or an
// impostor whose key is in no metadata the handler has.
type attackSigner struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

func newAttackSigner(t testing.TB, dir, name string) *attackSigner {
	t.Helper()
	_, _, key, cert := keyPair(t, dir, name)
	return &attackSigner{key: key, cert: cert}
}

// sign returns a copy of el with an enveloped RSA-SHA256 signature (carrying
// the signer's certificate in KeyInfo) right after the Issuer, as IdPs do.
func (s *attackSigner) sign(t testing.TB, el *etree.Element) *etree.Element {
	t.Helper()
	ctx, err := dsig.NewSigningContext(s.key, [][]byte{s.cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		t.Fatal(err)
	}
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		t.Fatal(err)
	}
	// SignEnveloped appends the signature without making it a proper child;
	// take it off and put a detached copy where it belongs.
	last := len(signed.Child) - 1
	sig := signed.Child[last].(*etree.Element).Copy()
	signed.Child = signed.Child[:last]
	if iss := signed.SelectElement("Issuer"); iss != nil {
		signed.InsertChildAt(iss.Index()+1, sig)
	} else {
		signed.InsertChildAt(0, sig)
	}
	return signed
}

// metadataFile writes IdP metadata naming s as the signing key.
func (s *attackSigner) metadataFile(t testing.TB, dir string) string {
	t.Helper()
	md, _ := url.Parse(attackIdPEntity)
	sso, _ := url.Parse("https://idp.example.com/sso")
	idp := saml.IdentityProvider{Key: s.key, Certificate: s.cert, MetadataURL: *md, SSOURL: *sso}
	b, err := xml.Marshal(idp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "idp-metadata.xml")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// attackEnv is a SAML handler whose IdP key the test holds, an impostor key,
// and the handler's log, where every refusal must name its reason.
type attackEnv struct {
	h        *Handler
	idp      *attackSigner
	impostor *attackSigner
	logs     *observer.ObservedLogs
	mdFile   string
	spCert   *x509.Certificate // the SP's certificate, to encrypt to
	deadline time.Duration     // for one ACS answer; attackACSDeadline when zero
}

// newAttackEnv provisions a handler that reads the email from the "email"
// attribute and the groups from "groups"; mutate may change that.
func newAttackEnv(t testing.TB, mutate func(*SAMLConfig)) *attackEnv {
	t.Helper()
	dir := t.TempDir()
	e := &attackEnv{idp: newAttackSigner(t, dir, "idp"), impostor: newAttackSigner(t, dir, "impostor")}
	e.mdFile = e.idp.metadataFile(t, dir)
	e.h, e.logs, e.spCert = newAttackHandler(t, e.mdFile, mutate, nil)
	return e
}

// newAttackHandler provisions one handler (one "instance") trusting the IdP
// metadata in mdFile, with an observed log and the given store (memory when
// nil).
func newAttackHandler(t testing.TB, mdFile string, mutate func(*SAMLConfig), st *StoreConfig) (*Handler, *observer.ObservedLogs, *x509.Certificate) {
	t.Helper()
	certPath, keyPath, _, spCert := keyPair(t, t.TempDir(), "sp")
	h := newTestHandler(t, func(h *Handler) {
		h.SAML = &SAMLConfig{IDPMetadataFile: mdFile, SPCert: certPath, SPKey: keyPath,
			EmailAttribute: "email", GroupsAttribute: "groups"}
		if mutate != nil {
			mutate(h.SAML)
		}
		h.Store = st
		// Every subtest starts its own login from the same address.
		h.GeneratorRateLimit = &RateLimit{Events: 1 << 20, Window: caddy.Duration(time.Minute)}
	})
	core, logs := observer.New(zapcore.DebugLevel)
	h.logger = zap.New(core)
	return h, logs, spCert
}

// attackLogin is an SP-initiated login in progress: the challenge it returns
// to, the one-time RelayState and the ID of the AuthnRequest.
type attackLogin struct {
	token, relay, requestID string
}

// login makes a challenge and opens its link without a session, which sends
// the browser to the IdP; the AuthnRequest is decoded from the redirect.
func (e *attackEnv) login(t testing.TB) attackLogin {
	t.Helper()
	tok := generate(t, e.h, attackVictim, attackBrowserIP)
	rec, _ := serve(t, e.h, request("GET", "/challenge_validator/"+tok, attackBrowserIP, nil))
	if rec.Code != http.StatusFound {
		t.Fatalf("validator without a session: %d %s", rec.Code, rec.Body)
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	deflated, err := base64.StdEncoding.DecodeString(q.Get("SAMLRequest"))
	if err != nil {
		t.Fatalf("SAMLRequest: %v", err)
	}
	raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
	if err != nil {
		t.Fatalf("inflating SAMLRequest: %v", err)
	}
	var req saml.AuthnRequest
	if err := xml.Unmarshal(raw, &req); err != nil {
		t.Fatalf("AuthnRequest: %v", err)
	}
	if req.ID == "" || q.Get("RelayState") == "" {
		t.Fatalf("no request ID or RelayState in %s", loc)
	}
	return attackLogin{token: tok, relay: q.Get("RelayState"), requestID: req.ID}
}

// attackResponse is what the IdP answers to a login, before it is signed; each
// attack changes it, or its signed XML, in one way.
type attackResponse struct {
	resp      saml.Response
	assertion saml.Assertion

	signAssertion bool
	signResponse  bool
	assertionKey  *attackSigner     // signs the assertion
	responseKey   *attackSigner     // signs the response
	encryptFor    *x509.Certificate // when set, the signed assertion is encrypted to it
	afterSigning  []func(t testing.TB, root *etree.Element) *etree.Element
	prependToXML  string // raw text put before the root element
	truncateXMLTo int    // when > 0, the serialized XML is cut to this length
}

func attackXMLID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "_" + hex.EncodeToString(b)
}

// attackClock returns now and the library's current tolerances, which other
// tests may have widened (they are process-wide).
func attackClock() (now time.Time, skew, issueDelay time.Duration) {
	skew, issueDelay = samlauth.Tolerances()
	return time.Now().UTC(), skew, issueDelay
}

// attackAssertion is the assertion the IdP makes for email answering l.
func attackAssertion(l attackLogin, email string, groups ...string) saml.Assertion {
	now, _, _ := attackClock()
	vals := func(vs ...string) []saml.AttributeValue {
		out := make([]saml.AttributeValue, 0, len(vs))
		for _, v := range vs {
			out = append(out, saml.AttributeValue{Type: "xs:string", Value: v})
		}
		return out
	}
	basic := "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
	return saml.Assertion{
		ID:           attackXMLID(),
		IssueInstant: now,
		Version:      "2.0",
		Issuer:       saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: attackIdPEntity},
		Subject: &saml.Subject{
			NameID: &saml.NameID{Format: string(saml.EmailAddressNameIDFormat), Value: email},
			SubjectConfirmations: []saml.SubjectConfirmation{{
				Method: "urn:oasis:names:tc:SAML:2.0:cm:bearer",
				SubjectConfirmationData: &saml.SubjectConfirmationData{
					InResponseTo: l.requestID,
					NotOnOrAfter: now.Add(5 * time.Minute),
					Recipient:    attackACS,
				},
			}},
		},
		Conditions: &saml.Conditions{
			NotBefore:            now.Add(-30 * time.Second),
			NotOnOrAfter:         now.Add(5 * time.Minute),
			AudienceRestrictions: []saml.AudienceRestriction{{Audience: saml.Audience{Value: attackSPEntity}}},
		},
		AuthnStatements: []saml.AuthnStatement{{
			AuthnInstant: now,
			SessionIndex: attackXMLID(),
			AuthnContext: saml.AuthnContext{AuthnContextClassRef: &saml.AuthnContextClassRef{
				Value: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"}},
		}},
		AttributeStatements: []saml.AttributeStatement{{Attributes: []saml.Attribute{
			{Name: "email", NameFormat: basic, Values: vals(email)},
			{Name: "groups", NameFormat: basic, Values: vals(groups...)},
		}}},
	}
}

// response is the correct answer of the trusted IdP to l: alice, with her
// assertion signed and the response itself unsigned (the common setup).
func (e *attackEnv) response(l attackLogin) *attackResponse {
	now, _, _ := attackClock()
	return &attackResponse{
		resp: saml.Response{
			ID:           attackXMLID(),
			InResponseTo: l.requestID,
			Version:      "2.0",
			IssueInstant: now,
			Destination:  attackACS,
			Issuer:       &saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: attackIdPEntity},
			Status:       saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusSuccess}},
		},
		assertion:     attackAssertion(l, attackVictim, "engineering"),
		signAssertion: true,
		assertionKey:  e.idp,
		responseKey:   e.idp,
	}
}

// element builds the response as it goes over the wire.
func (r *attackResponse) element(t testing.TB) *etree.Element {
	t.Helper()
	a := r.assertion.Element()
	if r.signAssertion {
		a = r.assertionKey.sign(t, a)
	}
	if r.encryptFor != nil {
		a = attackEncrypt(t, a, r.encryptFor)
	}
	root := r.resp.Element()
	root.AddChild(a)
	if r.signResponse {
		root = r.responseKey.sign(t, root)
	}
	for _, f := range r.afterSigning {
		root = f(t, root)
	}
	return root
}

func (r *attackResponse) xml(t testing.TB) []byte {
	t.Helper()
	b := attackXMLBytes(t, r.element(t))
	if r.prependToXML != "" {
		b = append([]byte(r.prependToXML), b...)
	}
	if r.truncateXMLTo > 0 && r.truncateXMLTo < len(b) {
		b = b[:r.truncateXMLTo]
	}
	return b
}

func attackXMLBytes(t testing.TB, el *etree.Element) []byte {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// attackEncrypt wraps a (signed) assertion in an EncryptedAssertion for
// the holder of cert, the way crewjam/saml's IdP does.
func attackEncrypt(t testing.TB, a *etree.Element, cert *x509.Certificate) *etree.Element {
	t.Helper()
	enc := xmlenc.OAEP()
	enc.BlockCipher = xmlenc.AES128CBC
	enc.DigestMethod = &xmlenc.SHA1
	data, err := enc.Encrypt(cert, attackXMLBytes(t, a), nil)
	if err != nil {
		t.Fatal(err)
	}
	data.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
	ea := etree.NewElement("saml:EncryptedAssertion")
	ea.CreateAttr("xmlns:saml", "urn:oasis:names:tc:SAML:2.0:assertion")
	ea.AddChild(data)
	return ea
}

// attackACSResult is one answer of the ACS.
type attackACSResult struct {
	rec    *httptest.ResponseRecorder
	passed bool
	err    error
	panic  any
}

// post sends a SAMLResponse (and the RelayState, unless empty) to the ACS.
func (e *attackEnv) post(t testing.TB, relay string, samlXML []byte) *httptest.ResponseRecorder {
	t.Helper()
	form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(samlXML)}}
	if relay != "" {
		form.Set("RelayState", relay)
	}
	return e.postForm(t, form.Encode())
}

// postForm posts a raw form body to the ACS, turning a panic or an answer
// that takes longer than e.deadline into a test failure.
func (e *attackEnv) postForm(t testing.TB, body string) *httptest.ResponseRecorder {
	t.Helper()
	e.logs.TakeAll()
	r := request("POST", "/saml/acs", attackBrowserIP, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	done := make(chan attackACSResult, 1)
	go func() {
		var res attackACSResult
		defer func() {
			if p := recover(); p != nil {
				res.panic = p
			}
			done <- res
		}()
		res.rec = httptest.NewRecorder()
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
			res.passed = true
			w.WriteHeader(299)
			return nil
		})
		res.err = e.h.ServeHTTP(res.rec, r, next)
	}()
	deadline := e.deadline
	if deadline == 0 {
		deadline = attackACSDeadline
	}
	select {
	case res := <-done:
		switch {
		case res.panic != nil:
			t.Fatalf("the ACS panicked: %v", res.panic)
		case res.err != nil:
			t.Fatalf("the ACS returned an error instead of an answer: %v", res.err)
		case res.passed:
			t.Fatal("the ACS passed the request on to the next handler")
		}
		return res.rec
	case <-time.After(deadline):
		t.Fatalf("the ACS did not answer within %s", deadline)
		return nil
	}
}

// sessionCookie returns the consoleme_auth cookie an answer sets, if any.
func (e *attackEnv) sessionCookie(rec *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range rec.Result().Cookies() {
		if c.Name == e.h.CookieName {
			return c
		}
	}
	return nil
}

// expectLogin checks that the ACS logged email in: a 303 back to the
// challenge and a session cookie whose JWT the minter accepts for email.
func (e *attackEnv) expectLogin(t testing.TB, rec *httptest.ResponseRecorder, l attackLogin, email string) {
	t.Helper()
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("a correct response was refused: %d; logged reasons: %q", rec.Code, e.loggedReasons())
	}
	if loc := rec.Header().Get("Location"); loc != "/challenge_validator/"+l.token {
		t.Errorf("Location %q, want the challenge", loc)
	}
	c := e.sessionCookie(rec)
	if c == nil {
		t.Fatalf("no %s cookie; headers %v", e.h.CookieName, rec.Header())
	}
	id, err := e.h.sessions.codec.Verify(c.Value, time.Now())
	if err != nil {
		t.Fatalf("the session JWT does not verify: %v", err)
	}
	if id.Email != email {
		t.Errorf("session for %q, want %q", id.Email, email)
	}
	if len(id.Groups) != 1 || id.Groups[0] != "engineering" {
		t.Errorf("groups %q, want [engineering]", id.Groups)
	}
}

// expectRefused checks that the ACS refused: a 4xx page, no session cookie,
// and, when reason is not empty, a logged refusal whose reason contains it
// or one of its "|"-separated alternatives (so that the refusal has the
// cause the attack is about).
func (e *attackEnv) expectRefused(t testing.TB, rec *httptest.ResponseRecorder, reason string) {
	t.Helper()
	if c := e.sessionCookie(rec); c != nil {
		who := "an unreadable token"
		if id, err := e.h.sessions.codec.Verify(c.Value, time.Now()); err == nil {
			who = id.Email
		}
		t.Fatalf("ACCEPTED: status %d, session cookie for %s", rec.Code, who)
	}
	if rec.Code < 400 || rec.Code > 499 {
		t.Fatalf("status %d, want a 4xx refusal: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") && !strings.HasPrefix(ct, "application/json") {
		t.Errorf("refusal Content-Type %q", ct)
	}
	if reason == "" {
		return
	}
	reasons := e.loggedReasons()
	for _, r := range reasons {
		for _, want := range strings.Split(reason, "|") {
			if strings.Contains(strings.ToLower(r), strings.ToLower(want)) {
				return
			}
		}
	}
	t.Errorf("refused, but not for %q; logged reasons: %q", reason, reasons)
}

// loggedReasons lists the "reason" fields logged since the last post.
func (e *attackEnv) loggedReasons() []string {
	var out []string
	for _, entry := range e.logs.All() {
		for _, f := range entry.Context {
			if f.Key == "reason" {
				out = append(out, f.String)
			}
		}
	}
	return out
}

// attackForgedAssertion is the unsigned assertion an attacker would like the
// SP to believe: mallory, answering the victim's login, otherwise correct.
func attackForgedAssertion(l attackLogin, id string) *etree.Element {
	a := attackAssertion(l, attackAttacker, "engineering", "consoleme-admins")
	if id != "" {
		a.ID = id
	}
	return a.Element()
}

// attackChild returns the first child element of el named tag (any prefix).
func attackChild(t testing.TB, el *etree.Element, tag string) *etree.Element {
	t.Helper()
	c := el.SelectElement(tag)
	if c == nil {
		t.Fatalf("no %s in %s", tag, el.Tag)
	}
	return c
}

// attackAttrValue returns the first AttributeValue of the named attribute.
func attackAttrValue(t testing.TB, root *etree.Element, name string) *etree.Element {
	t.Helper()
	for _, attr := range root.FindElements(".//Attribute") {
		if attr.SelectAttrValue("Name", "") == name {
			return attackChild(t, attr, "AttributeValue")
		}
	}
	t.Fatalf("no attribute %s", name)
	return nil
}

// TestSAMLAttackControl proves that the responses the attack tests start
// from are accepted, so that each refusal below is due to its one change.
func TestSAMLAttackControl(t *testing.T) {
	e := newAttackEnv(t, nil)
	for _, tc := range []struct {
		name string
		edit func(*attackResponse)
	}{
		{"signed assertion", func(*attackResponse) {}},
		{"signed response, unsigned assertion", func(r *attackResponse) { r.signAssertion, r.signResponse = false, true }},
		{"signed response and assertion", func(r *attackResponse) { r.signResponse = true }},
		{"encrypted signed assertion", func(r *attackResponse) { r.encryptFor = e.spCert }},
		{"within the clock skew", func(r *attackResponse) {
			now, skew, delay := attackClock()
			r.assertion.Conditions.NotOnOrAfter = now.Add(-skew / 2)
			r.assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.NotOnOrAfter = now.Add(-skew / 2)
			r.assertion.Conditions.NotBefore = now.Add(skew / 2)
			r.assertion.IssueInstant = now.Add(-delay / 2)
			r.resp.IssueInstant = now.Add(-delay / 2)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := e.login(t)
			r := e.response(l)
			tc.edit(r)
			e.expectLogin(t, e.post(t, l.relay, r.xml(t)), l, attackVictim)
		})
	}
}

// TestSAMLAttackReplay covers replays: of the whole POST, of an old
// assertion in a new login, of an assertion ID the IdP signed again, and
// across two instances sharing one store.
func TestSAMLAttackReplay(t *testing.T) {
	e := newAttackEnv(t, nil)

	l1 := e.login(t)
	first := e.response(l1)
	firstXML := first.xml(t)
	e.expectLogin(t, e.post(t, l1.relay, firstXML), l1, attackVictim)

	// The very same POST again: its RelayState was used up.
	t.Run("same response twice", func(t *testing.T) {
		e.expectRefused(t, e.post(t, l1.relay, firstXML), "RelayState")
	})

	// The captured response with the RelayState of a new login: it answers
	// the old AuthnRequest.
	t.Run("old response in a new login", func(t *testing.T) {
		l2 := e.login(t)
		e.expectRefused(t, e.post(t, l2.relay, firstXML), "InResponseTo")
	})

	// The IdP signs the same assertion ID again for a new login (a buggy or
	// compromised IdP, or a replay cache test): the ID is accepted only once.
	t.Run("same assertion ID for a new login", func(t *testing.T) {
		l3 := e.login(t)
		r := e.response(l3)
		r.assertion.ID = first.assertion.ID
		e.expectRefused(t, e.post(t, l3.relay, r.xml(t)), "replayed")
	})

	// Two instances share one store: a login started on one completes on the
	// other, and neither accepts what the other consumed.
	t.Run("across instances sharing a store", func(t *testing.T) {
		b := &attackEnv{idp: e.idp, impostor: e.impostor, mdFile: e.mdFile}
		b.h, b.logs, b.spCert = newAttackHandler(t, e.mdFile, nil, nil)
		b.h.states = e.h.states
		attackReplayAcrossInstances(t, e, b)
		b.expectRefused(t, b.post(t, l1.relay, firstXML), "RelayState")
	})
}

// TestSAMLAttackReplayRedis runs the cross-instance replays with two
// handlers provisioned with the Redis store on one redis-server.
func TestSAMLAttackReplayRedis(t *testing.T) {
	redisURL := startAttackRedis(t)
	dir := t.TempDir()
	idp := newAttackSigner(t, dir, "idp")
	md := idp.metadataFile(t, dir)
	st := &StoreConfig{Type: "redis", URL: redisURL, KeyPrefix: "attack" + attackXMLID() + ":"}
	instance := func() *attackEnv {
		e := &attackEnv{idp: idp, mdFile: md}
		e.h, e.logs, e.spCert = newAttackHandler(t, md, nil, st)
		return e
	}
	attackReplayAcrossInstances(t, instance(), instance())
}

// attackReplayAcrossInstances checks two instances a and b that share a
// store: a login started at a completes at b, and an assertion ID consumed at
// one is refused at the other (re-signed by the IdP for a new login there).
func attackReplayAcrossInstances(t *testing.T, a, b *attackEnv) {
	t.Helper()
	la := a.login(t)
	ra := a.response(la)
	raXML := ra.xml(t)
	b.expectLogin(t, b.post(t, la.relay, raXML), la, attackVictim)

	// The same POST at the other instance: the RelayState is used up.
	a.expectRefused(t, a.post(t, la.relay, raXML), "RelayState")

	lb := b.login(t)
	rb := b.response(lb)
	rb.assertion.ID = ra.assertion.ID
	a.expectRefused(t, a.post(t, lb.relay, rb.xml(t)), "replayed")

	lc := a.login(t)
	rc := a.response(lc)
	rc.assertion.ID = ra.assertion.ID
	b.expectRefused(t, b.post(t, lc.relay, rc.xml(t)), "replayed")
}

// startAttackRedis starts a redis-server of this test on a unix socket (no
// TCP port) and returns its URL. Without the binary the test is skipped,
// unless CI is "true".
func startAttackRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not found: %v", err)
		}
		t.Skipf("redis-server not found: %v", err)
	}
	// A short directory: unix socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "cmredis")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(bin, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no", "--dir", dir)
	logFile, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			n, _ := c.Read(buf)
			c.Close()
			if strings.HasPrefix(string(buf[:n]), "+PONG") {
				return "unix://" + sock
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logFile.Name())
			t.Fatalf("redis-server did not answer PING within 10s: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
