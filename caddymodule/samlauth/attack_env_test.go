package samlauth

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
)

// The users of the attack tests, and how long one Verify may take.
const (
	attackVictim   = "alice@example.com"
	attackAttacker = "mallory@example.com"
	attackDeadline = 30 * time.Second
	// hostileXMLDeadline bounds the answer to a parser attack; a correct
	// refusal takes milliseconds even under the race detector.
	hostileXMLDeadline = 5 * time.Second
)

// attackEnv is a Provider whose IdP key the test holds, an impostor key, and
// the replay guard Verify consumes assertion IDs in.
type attackEnv struct {
	p        *Provider
	idp      *testSigner
	impostor *testSigner
	guard    ReplayGuard
	mdFile   string
	deadline time.Duration // for one Verify; attackDeadline when zero
}

// newAttackEnv makes a Provider that reads the email from the "email"
// attribute and the groups from "groups"; mutate may change that.
func newAttackEnv(t testing.TB, mutate func(*Config)) *attackEnv {
	t.Helper()
	dir := t.TempDir()
	e := &attackEnv{idp: newTestSigner(t, dir, "idp"), impostor: newTestSigner(t, dir, "impostor"), guard: newMemGuard()}
	e.mdFile = e.idp.metadataFile(t, dir)
	e.p = newAttackProvider(t, e.mdFile, mutate)
	return e
}

// newAttackProvider makes one Provider (one "instance") trusting the IdP
// metadata in mdFile, with its own SP key pair.
func newAttackProvider(t testing.TB, mdFile string, mutate func(*Config)) *Provider {
	t.Helper()
	cfg := spConfig(t, mdFile)
	if mutate != nil {
		mutate(&cfg)
	}
	return mustNew(t, cfg)
}

// attackLogin is an SP-initiated login in progress: the ID of its
// AuthnRequest (which the glue keeps under the relay state).
type attackLogin struct {
	requestID string
}

// login starts a login and checks that the AuthnRequest in the redirect
// carries the ID AuthnRequest returned.
func (e *attackEnv) login(t testing.TB) attackLogin {
	t.Helper()
	r, err := e.p.AuthnRequest(testBase, "relay-"+attackXMLID())
	if err != nil {
		t.Fatalf("AuthnRequest: %v", err)
	}
	req := decodeRedirectRequest(t, r.URL)
	if req.ID == "" || req.ID != r.RequestID {
		t.Fatalf("AuthnRequest ID %q, Redirect.RequestID %q", req.ID, r.RequestID)
	}
	return attackLogin{requestID: r.RequestID}
}

// decodeRedirectRequest inflates the AuthnRequest of an HTTP-Redirect URL.
func decodeRedirectRequest(t testing.TB, location string) *saml.AuthnRequest {
	t.Helper()
	var req saml.AuthnRequest
	decodeRedirect(t, location, "SAMLRequest", &req)
	return &req
}

// decodeRedirect inflates the SAML message in the query parameter param of
// an HTTP-Redirect URL into v.
func decodeRedirect(t testing.TB, location, param string, v any) {
	t.Helper()
	loc, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	deflated, err := base64.StdEncoding.DecodeString(loc.Query().Get(param))
	if err != nil {
		t.Fatalf("%s: %v", param, err)
	}
	raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
	if err != nil {
		t.Fatalf("inflating %s: %v", param, err)
	}
	if err := xml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", param, err)
	}
}

// attackResponse is what the IdP answers to a login, before it is signed;
// each attack changes it, or its signed XML, in one way.
type attackResponse struct {
	resp      saml.Response
	assertion saml.Assertion

	signAssertion bool
	signResponse  bool
	assertionKey  *testSigner       // signs the assertion
	responseKey   *testSigner       // signs the response
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
	skew, issueDelay = Tolerances()
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
		Issuer:       saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: testIdPEntity},
		Subject: &saml.Subject{
			NameID: &saml.NameID{Format: string(saml.EmailAddressNameIDFormat), Value: email},
			SubjectConfirmations: []saml.SubjectConfirmation{{
				Method: bearerMethod,
				SubjectConfirmationData: &saml.SubjectConfirmationData{
					InResponseTo: l.requestID,
					NotOnOrAfter: now.Add(5 * time.Minute),
					Recipient:    testACS,
				},
			}},
		},
		Conditions: &saml.Conditions{
			NotBefore:            now.Add(-30 * time.Second),
			NotOnOrAfter:         now.Add(5 * time.Minute),
			AudienceRestrictions: []saml.AudienceRestriction{{Audience: saml.Audience{Value: testSPEntity}}},
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
			Destination:  testACS,
			Issuer:       &saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: testIdPEntity},
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

// attackEncrypt wraps a (signed) assertion in an EncryptedAssertion for the
// holder of cert, the way crewjam/saml's IdP does.
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

// verify hands raw to Verify for l, turning a panic or an answer slower
// than e.deadline into a test failure.
func (e *attackEnv) verify(t testing.TB, l attackLogin, raw []byte) (*Identity, error) {
	t.Helper()
	type result struct {
		id    *Identity
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		var res result
		defer func() {
			res.panic = recover()
			done <- res
		}()
		res.id, res.err = e.p.Verify(t.Context(), raw, testBase, l.requestID, e.guard, time.Now())
	}()
	deadline := e.deadline
	if deadline == 0 {
		deadline = attackDeadline
	}
	select {
	case res := <-done:
		if res.panic != nil {
			t.Fatalf("Verify panicked: %v", res.panic)
		}
		return res.id, res.err
	case <-time.After(deadline):
		t.Fatalf("Verify did not answer within %s", deadline)
		return nil, nil
	}
}

// expectLogin checks that Verify accepted the response for email, in the
// groups the IdP sent ([engineering]), issued by the trusted IdP.
func expectLogin(t testing.TB, id *Identity, err error, email string) {
	t.Helper()
	if err != nil {
		t.Fatalf("a correct response was refused: %v", err)
	}
	if id.Email != email {
		t.Errorf("identity for %q, want %q", id.Email, email)
	}
	if len(id.Groups) != 1 || id.Groups[0] != "engineering" {
		t.Errorf("groups %q, want [engineering]", id.Groups)
	}
	if id.Issuer != testIdPEntity || id.AssertionID == "" {
		t.Errorf("issuer %q, assertion ID %q", id.Issuer, id.AssertionID)
	}
}

// expectRefused checks that Verify refused with a *Refusal whose Message is
// set and, when reason is not empty, whose Reason contains it or one of its
// "|"-separated alternatives (so that the refusal has the cause the attack
// is about).
func expectRefused(t testing.TB, id *Identity, err error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("ACCEPTED: identity %+v", id)
	}
	if id != nil {
		t.Errorf("an identity came with the refusal: %+v", id)
	}
	var ref *Refusal
	if !errors.As(err, &ref) {
		t.Fatalf("error %v (%T), want a *Refusal", err, err)
	}
	if ref.Message == "" {
		t.Error("the refusal has no message for the user")
	}
	if reason == "" {
		return
	}
	for _, want := range strings.Split(reason, "|") {
		if strings.Contains(strings.ToLower(ref.Reason), strings.ToLower(want)) {
			return
		}
	}
	t.Errorf("refused, but not for %q; reason: %q", reason, ref.Reason)
}

// attackForgedAssertion is the unsigned assertion an attacker would like
// the SP to believe: mallory, answering the victim's login, otherwise
// correct.
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
