package samltest

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
)

// Response is an IdP's answer to a login before it is signed and
// serialized. [IdP.Response] fills it in correctly; a test changes the
// fields for the one thing it is about and posts [Response.XML].
type Response struct {
	// Response is the samlp:Response; its own Assertion fields are
	// ignored.
	Response saml.Response
	// Assertion is the one assertion the response carries.
	Assertion saml.Assertion

	SignAssertion   bool              // sign the assertion (before encrypting it)
	SignResponse    bool              // sign the response (after adding the assertion)
	AssertionSigner *IdP              // signs the assertion
	ResponseSigner  *IdP              // signs the response
	EncryptFor      *x509.Certificate // when set, the assertion is encrypted to it with [Encrypt]

	// AfterSigning are applied in turn to the signed response; each
	// returns the (possibly new) root.
	AfterSigning []func(t testing.TB, root *etree.Element) *etree.Element
	// PrependXML is raw text put before the serialized root element.
	PrependXML string
	// TruncateXMLTo, when > 0, cuts the serialized response to that many
	// bytes.
	TruncateXMLTo int
}

// Response is the correct answer of p to the AuthnRequest requestID (""
// for an IdP-initiated response) from the SP at [SPEntityID]: a successful
// response to [ACSURL] carrying the [Assertion] for email and groups,
// with the assertion signed by p and the response itself unsigned, the
// most common setup.
func (p *IdP) Response(requestID, email string, groups ...string) *Response {
	return &Response{
		Response: saml.Response{
			ID:           NewID(),
			InResponseTo: requestID,
			Version:      "2.0",
			IssueInstant: time.Now().UTC(),
			Destination:  ACSURL,
			Issuer:       &saml.Issuer{Format: entityFormat, Value: IdPEntityID},
			Status:       saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusSuccess}},
		},
		Assertion:       Assertion(requestID, email, groups...),
		SignAssertion:   true,
		AssertionSigner: p,
		ResponseSigner:  p,
	}
}

// entityFormat is the NameID format of an Issuer naming an entity.
const entityFormat = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"

// Assertion is the assertion an IdP makes for the user email, a member of
// groups, answering the AuthnRequest requestID ("" when IdP-initiated),
// before it is signed: issued now by
// [IdPEntityID]; its NameID is email (in the emailAddress format); a
// bearer confirmation for [ACSURL] and a Conditions audience of
// [SPEntityID], both valid for five minutes (Conditions since 30 seconds
// ago); a password AuthnStatement with a fresh SessionIndex; and the
// attributes "email" and "groups" in the basic name format. Its ID is
// fresh, from [NewID].
func Assertion(requestID, email string, groups ...string) saml.Assertion {
	now := time.Now().UTC()
	vals := func(vs ...string) []saml.AttributeValue {
		out := make([]saml.AttributeValue, 0, len(vs))
		for _, v := range vs {
			out = append(out, saml.AttributeValue{Type: "xs:string", Value: v})
		}
		return out
	}
	basic := "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
	return saml.Assertion{
		ID:           NewID(),
		IssueInstant: now,
		Version:      "2.0",
		Issuer:       saml.Issuer{Format: entityFormat, Value: IdPEntityID},
		Subject: &saml.Subject{
			NameID: &saml.NameID{Format: string(saml.EmailAddressNameIDFormat), Value: email},
			SubjectConfirmations: []saml.SubjectConfirmation{{
				Method: "urn:oasis:names:tc:SAML:2.0:cm:bearer",
				SubjectConfirmationData: &saml.SubjectConfirmationData{
					InResponseTo: requestID,
					NotOnOrAfter: now.Add(5 * time.Minute),
					Recipient:    ACSURL,
				},
			}},
		},
		Conditions: &saml.Conditions{
			NotBefore:            now.Add(-30 * time.Second),
			NotOnOrAfter:         now.Add(5 * time.Minute),
			AudienceRestrictions: []saml.AudienceRestriction{{Audience: saml.Audience{Value: SPEntityID}}},
		},
		AuthnStatements: []saml.AuthnStatement{{
			AuthnInstant: now,
			SessionIndex: NewID(),
			AuthnContext: saml.AuthnContext{AuthnContextClassRef: &saml.AuthnContextClassRef{
				Value: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"}},
		}},
		AttributeStatements: []saml.AttributeStatement{{Attributes: []saml.Attribute{
			{Name: "email", NameFormat: basic, Values: vals(email)},
			{Name: "groups", NameFormat: basic, Values: vals(groups...)},
		}}},
	}
}

// Element builds the response as it goes over the wire: the assertion,
// signed and then encrypted as the fields say, in the response, which is
// then signed and handed to AfterSigning.
func (r *Response) Element(t testing.TB) *etree.Element {
	t.Helper()
	a := r.Assertion.Element()
	if r.SignAssertion {
		a = r.AssertionSigner.Sign(t, a)
	}
	if r.EncryptFor != nil {
		a = Encrypt(t, a, r.EncryptFor)
	}
	root := r.Response.Element()
	root.AddChild(a)
	if r.SignResponse {
		root = r.ResponseSigner.Sign(t, root)
	}
	for _, f := range r.AfterSigning {
		root = f(t, root)
	}
	return root
}

// XML is [Response.Element] serialized, with PrependXML and TruncateXMLTo
// applied: the bytes to base64-encode into a SAMLResponse.
func (r *Response) XML(t testing.TB) []byte {
	t.Helper()
	b := XMLBytes(t, r.Element(t))
	if r.PrependXML != "" {
		b = append([]byte(r.PrependXML), b...)
	}
	if r.TruncateXMLTo > 0 && r.TruncateXMLTo < len(b) {
		b = b[:r.TruncateXMLTo]
	}
	return b
}

// Encrypt wraps the (signed) assertion a in a saml:EncryptedAssertion for
// the holder of cert's key, the way crewjam/saml's IdP does: AES-128-CBC
// for the data and RSA-OAEP with SHA-1 for the key.
func Encrypt(t testing.TB, a *etree.Element, cert *x509.Certificate) *etree.Element {
	t.Helper()
	enc := xmlenc.OAEP()
	enc.BlockCipher = xmlenc.AES128CBC
	enc.DigestMethod = &xmlenc.SHA1
	data, err := enc.Encrypt(cert, XMLBytes(t, a), nil)
	if err != nil {
		t.Fatal(err)
	}
	data.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
	ea := etree.NewElement("saml:EncryptedAssertion")
	ea.CreateAttr("xmlns:saml", "urn:oasis:names:tc:SAML:2.0:assertion")
	ea.AddChild(data)
	return ea
}

// XMLBytes serializes el as a document of its own.
func XMLBytes(t testing.TB, el *etree.Element) []byte {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// NewID is a fresh random XML ID ("_" and 32 hex digits), for messages
// and assertions.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "_" + hex.EncodeToString(b)
}
