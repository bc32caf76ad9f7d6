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
	"fmt"
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
	deadline time.Duration // for one ACS answer; attackACSDeadline when zero
}

// newAttackEnv provisions a handler that reads the email from the "email"
// attribute and the groups from "groups"; mutate may change that.
func newAttackEnv(t testing.TB, mutate func(*SAMLConfig)) *attackEnv {
	t.Helper()
	dir := t.TempDir()
	e := &attackEnv{idp: newAttackSigner(t, dir, "idp"), impostor: newAttackSigner(t, dir, "impostor")}
	e.mdFile = e.idp.metadataFile(t, dir)
	e.h, e.logs = newAttackHandler(t, e.mdFile, mutate, nil)
	return e
}

// newAttackHandler provisions one handler (one "instance") trusting the IdP
// metadata in mdFile, with an observed log and the given store (memory when
// nil).
func newAttackHandler(t testing.TB, mdFile string, mutate func(*SAMLConfig), st *StoreConfig) (*Handler, *observer.ObservedLogs) {
	t.Helper()
	certPath, keyPath, _, _ := keyPair(t, t.TempDir(), "sp")
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
	return h, logs
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
	clockSkewMu.Lock()
	defer clockSkewMu.Unlock()
	return time.Now().UTC(), saml.MaxClockSkew, saml.MaxIssueDelay
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
	id, err := e.h.minter.Verify(c.Value, time.Now())
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
		if id, err := e.h.minter.Verify(c.Value, time.Now()); err == nil {
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
		{"encrypted signed assertion", func(r *attackResponse) { r.encryptFor = e.h.sp.cert }},
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

// TestSAMLAttackRefused posts, for each attack, a response that differs from
// the accepted control in that attack alone; every one must be refused.
func TestSAMLAttackRefused(t *testing.T) {
	e := newAttackEnv(t, nil)
	type attack struct {
		name   string
		reason string // what the logged refusal must mention; "" to not check
		edit   func(t testing.TB, l attackLogin, r *attackResponse)
	}
	after := func(r *attackResponse, f func(t testing.TB, root *etree.Element) *etree.Element) {
		r.afterSigning = append(r.afterSigning, f)
	}
	attacks := []attack{
		// Nothing is signed: anyone could have written it.
		{"unsigned response and assertion", "signature", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.signAssertion = false
		}},
		// The signature is intact but was made with the attacker's key, whose
		// certificate travels in KeyInfo.
		{"assertion signed by an unknown key", "signature", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.assertionKey = e.impostor
		}},
		// The same, without KeyInfo: the SP must verify against the metadata key.
		{"assertion signed by an unknown key, no KeyInfo", "signature", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.assertionKey = e.impostor
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				sig := attackChild(t, attackChild(t, root, "Assertion"), "Signature")
				sig.RemoveChild(attackChild(t, sig, "KeyInfo"))
				return root
			})
		}},
		// Only the response is signed, by the attacker's key.
		{"response signed by an unknown key", "signature", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.signAssertion, r.signResponse, r.responseKey = false, true, e.impostor
		}},
		// A bad response signature is not excused by a good assertion signature.
		{"response signed by an unknown key around a signed assertion", "signature", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.signResponse, r.responseKey = true, e.impostor
		}},
		// The signature element is there, but its value is not the IdP's.
		{"corrupted signature value", "signature", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				sv := attackChild(t, attackChild(t, attackChild(t, root, "Assertion"), "Signature"), "SignatureValue")
				b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sv.Text()))
				if err != nil {
					t.Fatal(err)
				}
				b[len(b)/2] ^= 0x01
				sv.SetText(base64.StdEncoding.EncodeToString(b))
				return root
			})
		}},
		// XSW: an unsigned forged assertion placed before the signed one, for
		// an SP that verifies one assertion and uses another. A response with
		// more than one assertion must be refused outright, not searched for
		// the one that verifies.
		{"XSW forged assertion before the signed one", "", func(_ testing.TB, l attackLogin, r *attackResponse) {
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				root.InsertChildAt(attackChild(t, root, "Assertion").Index(), attackForgedAssertion(l, ""))
				return root
			})
		}},
		// XSW: the same forged assertion placed after the signed one.
		{"XSW forged assertion after the signed one", "", func(_ testing.TB, l attackLogin, r *attackResponse) {
			after(r, func(_ testing.TB, root *etree.Element) *etree.Element {
				root.AddChild(attackForgedAssertion(l, ""))
				return root
			})
		}},
		// XSW: the signed assertion hidden in samlp:Extensions, and a forged
		// assertion with the same ID in its place, for an SP that finds the
		// signed element by ID anywhere in the document.
		{"XSW signed assertion moved into Extensions", "signature|assertion", func(_ testing.TB, l attackLogin, r *attackResponse) {
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				signed := attackChild(t, root, "Assertion")
				root.RemoveChild(signed)
				ext := etree.NewElement("samlp:Extensions")
				ext.AddChild(signed)
				root.InsertChildAt(attackChild(t, root, "Issuer").Index()+1, ext)
				root.AddChild(attackForgedAssertion(l, r.assertion.ID))
				return root
			})
		}},
		// XSW: a forged assertion with the signed one's ID carrying the copied
		// signature, the signed assertion tucked into that signature's Object.
		{"XSW signed assertion inside the forged signature's Object", "signature|assertion", func(_ testing.TB, l attackLogin, r *attackResponse) {
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				signed := attackChild(t, root, "Assertion")
				root.RemoveChild(signed)
				forged := attackForgedAssertion(l, r.assertion.ID)
				sig := attackChild(t, signed, "Signature").Copy()
				obj := sig.CreateElement("ds:Object")
				obj.AddChild(signed)
				forged.InsertChildAt(attackChild(t, forged, "Issuer").Index()+1, sig)
				root.AddChild(forged)
				return root
			})
		}},
		// XSW on a signed response: the signed response moved into the
		// Extensions of a new, unsigned response that carries a forged assertion.
		{"XSW signed response wrapped in a forged response", "signature|assertion", func(_ testing.TB, l attackLogin, r *attackResponse) {
			r.signAssertion, r.signResponse = false, true
			after(r, func(_ testing.TB, signed *etree.Element) *etree.Element {
				outer := r.resp
				outer.ID = attackXMLID()
				root := outer.Element()
				ext := etree.NewElement("samlp:Extensions")
				ext.AddChild(signed)
				root.InsertChildAt(root.SelectElement("Issuer").Index()+1, ext)
				root.AddChild(attackForgedAssertion(l, ""))
				return root
			})
		}},
		// A forged assertion added to a signed response breaks its signature.
		{"forged assertion appended to a signed response", "signature|assertion", func(_ testing.TB, l attackLogin, r *attackResponse) {
			r.signAssertion, r.signResponse = false, true
			after(r, func(_ testing.TB, root *etree.Element) *etree.Element {
				root.AddChild(attackForgedAssertion(l, ""))
				return root
			})
		}},
		// An assertion encrypted to the SP proves nothing: the SP's certificate is public.
		{"encrypted unsigned assertion", "signature", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.signAssertion, r.encryptFor = false, e.h.sp.cert
		}},
		// The assertion was issued for another SP.
		{"wrong Audience", "AudienceRestriction", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.assertion.Conditions.AudienceRestrictions[0].Audience.Value = otherSPEntity
		}},
		// The Web SSO profile requires an AudienceRestriction naming the SP;
		// without one the assertion could be meant for anybody.
		{"no AudienceRestriction", "audience", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.assertion.Conditions.AudienceRestrictions = nil
		}},
		// The response was sent to another endpoint.
		{"wrong Destination", "Destination", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.resp.Destination = otherSPACS
		}},
		{"wrong Destination, signed response", "Destination", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.resp.Destination, r.signResponse = otherSPACS, true
		}},
		// A signed response must say where it was sent.
		{"signed response without Destination", "Destination", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.resp.Destination, r.signResponse = "", true
		}},
		// The bearer confirmation names another recipient.
		{"wrong Recipient", "Recipient", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.Recipient = otherSPACS
		}},
		// Conditions expired longer ago than the allowed clock skew.
		{"expired Conditions NotOnOrAfter", "Conditions is expired", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			now, skew, _ := attackClock()
			r.assertion.Conditions.NotOnOrAfter = now.Add(-skew - 2*time.Minute)
		}},
		// The bearer confirmation expired longer ago than the clock skew.
		{"expired SubjectConfirmationData NotOnOrAfter", "SubjectConfirmationData is expired", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			now, skew, _ := attackClock()
			r.assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.NotOnOrAfter = now.Add(-skew - 2*time.Minute)
		}},
		// Conditions not valid yet, beyond the clock skew.
		{"NotBefore in the future", "not yet valid", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			now, skew, _ := attackClock()
			r.assertion.Conditions.NotBefore = now.Add(skew + 2*time.Minute)
		}},
		// An assertion issued too long ago, though still within NotOnOrAfter.
		{"assertion IssueInstant too old", "expired on", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			now, _, delay := attackClock()
			r.assertion.IssueInstant = now.Add(-delay - 2*time.Minute)
		}},
		// A response issued too long ago.
		{"response IssueInstant too old", "IssueInstant expired", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			now, _, delay := attackClock()
			r.resp.IssueInstant = now.Add(-delay - 2*time.Minute)
		}},
		// A response to another AuthnRequest than the one this login sent.
		{"InResponseTo of another request", "InResponseTo", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			other := attackXMLID()
			r.resp.InResponseTo = other
			r.assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = other
		}},
		// The response answers this login, the signed assertion another one.
		{"assertion InResponseTo of another request", "SubjectConfirmation", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = attackXMLID()
		}},
		// An IdP-initiated (unsolicited) response posted with a live
		// RelayState: it answers no AuthnRequest.
		{"IdP-initiated response with a RelayState", "InResponseTo", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.resp.InResponseTo = ""
			r.assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = ""
		}},
		// A response the IdP made for another SP (its login, its endpoint,
		// its audience), relayed here by that SP or a thief.
		{"response for another SP", "", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			other := attackXMLID()
			r.resp.InResponseTo, r.resp.Destination = other, otherSPACS
			scd := r.assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData
			scd.InResponseTo, scd.Recipient = other, otherSPACS
			r.assertion.Conditions.AudienceRestrictions[0].Audience.Value = otherSPEntity
		}},
		// The assertion claims another issuer (signed with the trusted key, so
		// only the issuer check can refuse it).
		{"assertion Issuer of another IdP", "issuer is not", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.assertion.Issuer.Value = otherIdPEntity
		}},
		{"response Issuer of another IdP", "Issuer does not match", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.resp.Issuer.Value = otherIdPEntity
		}},
		// Another IdP altogether: its own entity ID and its own key.
		{"response and assertion of another IdP", "", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.resp.Issuer.Value, r.assertion.Issuer.Value = otherIdPEntity, otherIdPEntity
			r.assertionKey, r.responseKey, r.signResponse = e.impostor, e.impostor, true
		}},
		// The email attribute changed after the IdP signed.
		{"email attribute changed after signing", "signature", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				attackAttrValue(t, root, "email").SetText(attackAttacker)
				return root
			})
		}},
		// A group added after the IdP signed.
		{"group added after signing", "signature", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				v := attackAttrValue(t, root, "groups")
				extra := v.Copy()
				extra.SetText("consoleme-admins")
				v.Parent().AddChild(extra)
				return root
			})
		}},
		// The NameID changed after the IdP signed.
		{"NameID changed after signing", "signature", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				attackChild(t, attackChild(t, attackChild(t, root, "Assertion"), "Subject"), "NameID").SetText(attackAttacker)
				return root
			})
		}},
		// The IdP says the login failed; a (signed) assertion must not
		// override that.
		{"status Responder/AuthnFailed", "status:Responder", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.signResponse = true
			r.resp.Status.StatusCode = saml.StatusCode{Value: saml.StatusResponder,
				StatusCode: &saml.StatusCode{Value: saml.StatusAuthnFailed}}
		}},
		// A signed assertion whose required parts are missing must be
		// refused, not crash the handler.
		{"signed assertion without Conditions", "", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.assertion.Conditions = nil
		}},
		{"signed assertion without Subject", "", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.assertion.Subject = nil
		}},
		{"signed assertion without SubjectConfirmationData", "", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData = nil
		}},
		// Without a bearer SubjectConfirmation nothing ties the assertion to
		// this login, this ACS or a short lifetime (the Web SSO profile
		// requires one); an unsigned response around it can claim any
		// InResponseTo.
		{"signed assertion without SubjectConfirmation", "", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.assertion.Subject.SubjectConfirmations = nil
		}},
		// A valid response cut short is not XML.
		{"truncated response", "", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.truncateXMLTo = 600
		}},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			l := e.login(t)
			r := e.response(l)
			a.edit(t, l, r)
			e.expectRefused(t, e.post(t, l.relay, r.xml(t)), a.reason)
		})
	}

	// An IdP-initiated response with no RelayState: no login was started.
	t.Run("IdP-initiated response without RelayState", func(t *testing.T) {
		l := e.login(t)
		r := e.response(l)
		r.resp.InResponseTo = ""
		r.assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = ""
		e.expectRefused(t, e.post(t, "", r.xml(t)), "RelayState")
	})
}

// TestSAMLAttackCommentInjection covers the XML comment truncation attack:
// the IdP signs "alice@example.com.evil.com" (an account the attacker may
// register), and the attacker inserts a comment after "alice@example.com".
// Canonicalization drops comments, so the signature still verifies; the SP
// must not read the value as "alice@example.com".
func TestSAMLAttackCommentInjection(t *testing.T) {
	const signed = attackVictim + ".evil.com"
	for _, tc := range []struct {
		name     string
		cfg      func(*SAMLConfig)
		location func(t testing.TB, root *etree.Element) *etree.Element
	}{
		{"email attribute", nil, func(t testing.TB, root *etree.Element) *etree.Element {
			return attackAttrValue(t, root, "email")
		}},
		{"NameID", func(c *SAMLConfig) { c.EmailAttribute = "" }, func(t testing.TB, root *etree.Element) *etree.Element {
			return attackChild(t, attackChild(t, attackChild(t, root, "Assertion"), "Subject"), "NameID")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newAttackEnv(t, tc.cfg)
			l := e.login(t)
			r := e.response(l)
			r.assertion = attackAssertion(l, signed, "engineering")
			r.afterSigning = append(r.afterSigning, func(t testing.TB, root *etree.Element) *etree.Element {
				el := tc.location(t, root)
				el.SetText(attackVictim)
				el.CreateComment("")
				el.CreateText(".evil.com")
				return root
			})
			rec := e.post(t, l.relay, r.xml(t))
			c := e.sessionCookie(rec)
			if c == nil {
				e.expectRefused(t, rec, "")
				return
			}
			id, err := e.h.minter.Verify(c.Value, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if id.Email != signed {
				t.Fatalf("logged in as %q; the IdP signed %q", id.Email, signed)
			}
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
		b.h, b.logs = newAttackHandler(t, e.mdFile, nil, nil)
		b.h.store = e.h.store
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
		e.h, e.logs = newAttackHandler(t, md, nil, st)
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

// TestSAMLAttackHostileXML covers payloads aimed at the XML parser: DTDs
// with entity expansion or external entities, deep nesting, oversized and
// malformed input. Each must be refused within hostileXMLDeadline, without a
// panic.
func TestSAMLAttackHostileXML(t *testing.T) {
	e := newAttackEnv(t, nil)
	e.deadline = hostileXMLDeadline
	const ns = `xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"`

	var laughs strings.Builder
	laughs.WriteString(`<?xml version="1.0"?>` + "\n<!DOCTYPE samlp:Response [\n<!ENTITY lol0 \"lol\">\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&laughs, "<!ENTITY lol%d \"%s\">\n", i, strings.Repeat(fmt.Sprintf("&lol%d;", i-1), 10))
	}
	laughs.WriteString("]>\n<samlp:Response " + ns + ` ID="_x" Version="2.0" IssueInstant="2024-01-01T00:00:00Z">` +
		`<saml:Issuer>&lol9;</saml:Issuer></samlp:Response>`)

	for _, tc := range []struct {
		name   string
		body   func(t testing.TB, l attackLogin) []byte
		reason string
	}{
		// Billion laughs: nested entities that expand to 10^9 copies.
		{"billion laughs", func(testing.TB, attackLogin) []byte { return []byte(laughs.String()) }, ""},
		// XXE: an external entity that would read a local file.
		{"external entity", func(testing.TB, attackLogin) []byte {
			return []byte(`<?xml version="1.0"?><!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>` +
				"<samlp:Response " + ns + ` ID="_x" Version="2.0"><saml:Issuer>&xxe;</saml:Issuer></samlp:Response>`)
		}, ""},
		// A correct, signed response behind a DOCTYPE: a SAML message has no
		// use for a DTD, and accepting one invites parser differentials.
		{"DOCTYPE before a valid response", func(t testing.TB, l attackLogin) []byte {
			r := e.response(l)
			r.prependToXML = `<?xml version="1.0"?>` + "\n" + `<!DOCTYPE samlp:Response [<!ENTITY x "y">]>` + "\n"
			return r.xml(t)
		}, ""},
		// Not XML at all.
		{"invalid XML", func(testing.TB, attackLogin) []byte { return []byte("<samlp:Response><<>>") }, ""},
		{"binary garbage", func(testing.TB, attackLogin) []byte { return []byte{0xff, 0xfe, 0x00, 0x01, '<', 0x80} }, ""},
		// Well-formed XML, but another SAML message than a Response.
		{"AuthnRequest instead of a Response", func(t testing.TB, l attackLogin) []byte {
			return []byte(`<samlp:AuthnRequest ` + ns + ` ID="_x" Version="2.0" IssueInstant="2024-01-01T00:00:00Z"/>`)
		}, ""},
		// Deep nesting within the body limit, against parsers whose cost
		// grows with depth squared (namespace lookups walking up the tree).
		{"deeply nested XML", func(t testing.TB, l attackLogin) []byte {
			const depth = 60000
			b := []byte("<samlp:Response " + ns + ">" + strings.Repeat("<a>", depth) + strings.Repeat("</a>", depth) + "</samlp:Response>")
			form := url.Values{"RelayState": {l.relay}, "SAMLResponse": {base64.StdEncoding.EncodeToString(b)}}
			if n := len(form.Encode()); n > maxACSBody {
				t.Fatalf("the nested payload (%d bytes) must fit the ACS body limit", n)
			}
			return b
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := e.login(t)
			e.expectRefused(t, e.post(t, l.relay, tc.body(t, l)), tc.reason)
		})
	}

	// A POST larger than the ACS reads, with a live RelayState.
	t.Run("oversized SAMLResponse", func(t *testing.T) {
		l := e.login(t)
		big := url.Values{"RelayState": {l.relay}, "SAMLResponse": {strings.Repeat("PHg+", maxACSBody/4+1)}}
		e.expectRefused(t, e.postForm(t, big.Encode()), "")
	})
	// SAMLResponse that is not base64.
	t.Run("invalid base64", func(t *testing.T) {
		l := e.login(t)
		e.expectRefused(t, e.postForm(t, url.Values{"RelayState": {l.relay}, "SAMLResponse": {"<samlp:Response/>"}}.Encode()), "base64")
	})
}
