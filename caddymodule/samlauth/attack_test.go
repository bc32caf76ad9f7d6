package samlauth

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// TestAttackControl proves that the responses the attack tests start from
// are accepted, so that each refusal below is due to its one change; the
// identity is the email and groups the IdP signed.
func TestAttackControl(t *testing.T) {
	e := newAttackEnv(t, nil)
	_, skew, delay := attackClock()
	for _, tc := range append(samltest.Accepted(e.p.cert, skew, delay),
		samltest.Variant{Name: "groups padded with spaces and an empty one", Edit: func(r *samltest.Response) {
			attrs := r.Assertion.AttributeStatements[0].Attributes
			attrs[1].Values = []saml.AttributeValue{{Type: "xs:string", Value: "  engineering "}, {Type: "xs:string", Value: " "}}
		}},
	) {
		t.Run(tc.Name, func(t *testing.T) {
			l := e.login(t)
			r := e.response(l)
			tc.Edit(r)
			id, err := e.verify(t, l, r.XML(t))
			expectLogin(t, id, err, samltest.Victim)
			if err == nil && id.AssertionID != r.Assertion.ID {
				t.Errorf("assertion ID %q, want %q", id.AssertionID, r.Assertion.ID)
			}
		})
	}
}

// attack is one way of tampering with the control response.
type attack struct {
	name   string
	reason string // what the refusal's Reason must mention; "" to not check
	edit   func(t testing.TB, l attackLogin, r *samltest.Response)
}

// after adds a change made to the XML after the IdP signed it.
func after(r *samltest.Response, f func(t testing.TB, root *etree.Element) *etree.Element) {
	r.AfterSigning = append(r.AfterSigning, f)
}

// TestAttackRefused verifies, for each attack, a response that differs from
// the accepted control in that attack alone; every one must be refused for
// its reason.
func TestAttackRefused(t *testing.T) {
	e := newAttackEnv(t, nil)
	attacks := append(signatureAttacks(e), wrappingAttacks()...)
	attacks = append(attacks, bindingAttacks(e)...)
	attacks = append(attacks, contentAttacks()...)
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			l := e.login(t)
			r := e.response(l)
			a.edit(t, l, r)
			id, err := e.verify(t, l, r.XML(t))
			expectRefused(t, id, err, a.reason)
		})
	}

	// An IdP-initiated response: no login was started, so there is no
	// request ID to answer (the glue has no RelayState to look up).
	t.Run("IdP-initiated response without a login", func(t *testing.T) {
		l := e.login(t)
		r := e.response(l)
		r.Response.InResponseTo = ""
		r.Assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = ""
		id, err := e.verify(t, attackLogin{}, r.XML(t))
		expectRefused(t, id, err, "RelayState")
	})
}

// signatureAttacks are responses not signed, or not signed by the IdP's
// key, or changed after signing.
func signatureAttacks(e *attackEnv) []attack {
	return []attack{
		// Nothing is signed: anyone could have written it.
		{"unsigned response and assertion", "signature", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.SignAssertion = false
		}},
		// The signature is intact but was made with the attacker's key, whose
		// certificate travels in KeyInfo.
		{"assertion signed by an unknown key", "signature", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.AssertionSigner = e.impostor
		}},
		// The same, without KeyInfo: the SP must verify against the metadata key.
		{"assertion signed by an unknown key, no KeyInfo", "signature", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.AssertionSigner = e.impostor
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				sig := samltest.Child(t, samltest.Child(t, root, "Assertion"), "Signature")
				sig.RemoveChild(samltest.Child(t, sig, "KeyInfo"))
				return root
			})
		}},
		// Only the response is signed, by the attacker's key.
		{"response signed by an unknown key", "signature", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.SignAssertion, r.SignResponse, r.ResponseSigner = false, true, e.impostor
		}},
		// A bad response signature is not excused by a good assertion signature.
		{"response signed by an unknown key around a signed assertion", "signature", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.SignResponse, r.ResponseSigner = true, e.impostor
		}},
		// The signature element is there, but its value is not the IdP's.
		{"corrupted signature value", "signature", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				sv := samltest.Child(t, samltest.Child(t, samltest.Child(t, root, "Assertion"), "Signature"), "SignatureValue")
				b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sv.Text()))
				if err != nil {
					t.Fatal(err)
				}
				b[len(b)/2] ^= 0x01
				sv.SetText(base64.StdEncoding.EncodeToString(b))
				return root
			})
		}},
		// An assertion encrypted to the SP proves nothing: the SP's certificate is public.
		{"encrypted unsigned assertion", "signature", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.SignAssertion, r.EncryptFor = false, e.p.cert
		}},
		// The email attribute changed after the IdP signed.
		{"email attribute changed after signing", "signature", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				samltest.AttrValue(t, root, "email").SetText(samltest.Attacker)
				return root
			})
		}},
		// A group added after the IdP signed.
		{"group added after signing", "signature", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				v := samltest.AttrValue(t, root, "groups")
				extra := v.Copy()
				extra.SetText("consoleme-admins")
				v.Parent().AddChild(extra)
				return root
			})
		}},
		// The NameID changed after the IdP signed.
		{"NameID changed after signing", "signature", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				samltest.Child(t, samltest.Child(t, samltest.Child(t, root, "Assertion"), "Subject"), "NameID").SetText(samltest.Attacker)
				return root
			})
		}},
		// Another IdP altogether: its own entity ID and its own key.
		{"response and assertion of another IdP", "", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Response.Issuer.Value, r.Assertion.Issuer.Value = samltest.OtherIdPEntityID, samltest.OtherIdPEntityID
			r.AssertionSigner, r.ResponseSigner, r.SignResponse = e.impostor, e.impostor, true
		}},
	}
}

// wrappingAttacks are XML signature wrapping (XSW): a forged assertion
// beside, around or instead of the signed one.
func wrappingAttacks() []attack {
	return []attack{
		// An unsigned forged assertion placed before the signed one, for an
		// SP that verifies one assertion and uses another. A response with
		// more than one assertion must be refused outright, not searched for
		// the one that verifies.
		{"XSW forged assertion before the signed one", "", func(_ testing.TB, l attackLogin, r *samltest.Response) {
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				root.InsertChildAt(samltest.Child(t, root, "Assertion").Index(), samltest.ForgedAssertion(l.requestID, ""))
				return root
			})
		}},
		// The same forged assertion placed after the signed one.
		{"XSW forged assertion after the signed one", "", func(_ testing.TB, l attackLogin, r *samltest.Response) {
			after(r, func(_ testing.TB, root *etree.Element) *etree.Element {
				root.AddChild(samltest.ForgedAssertion(l.requestID, ""))
				return root
			})
		}},
		// The signed assertion hidden in samlp:Extensions, and a forged
		// assertion with the same ID in its place, for an SP that finds the
		// signed element by ID anywhere in the document.
		{"XSW signed assertion moved into Extensions", "signature|assertion", func(_ testing.TB, l attackLogin, r *samltest.Response) {
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				signed := samltest.Child(t, root, "Assertion")
				root.RemoveChild(signed)
				ext := etree.NewElement("samlp:Extensions")
				ext.AddChild(signed)
				root.InsertChildAt(samltest.Child(t, root, "Issuer").Index()+1, ext)
				root.AddChild(samltest.ForgedAssertion(l.requestID, r.Assertion.ID))
				return root
			})
		}},
		// A forged assertion with the signed one's ID carrying the copied
		// signature, the signed assertion tucked into that signature's Object.
		{"XSW signed assertion inside the forged signature's Object", "signature|assertion", func(_ testing.TB, l attackLogin, r *samltest.Response) {
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				signed := samltest.Child(t, root, "Assertion")
				root.RemoveChild(signed)
				forged := samltest.ForgedAssertion(l.requestID, r.Assertion.ID)
				sig := samltest.Child(t, signed, "Signature").Copy()
				obj := sig.CreateElement("ds:Object")
				obj.AddChild(signed)
				forged.InsertChildAt(samltest.Child(t, forged, "Issuer").Index()+1, sig)
				root.AddChild(forged)
				return root
			})
		}},
		// The signed response moved into the Extensions of a new, unsigned
		// response that carries a forged assertion.
		{"XSW signed response wrapped in a forged response", "signature|assertion", func(_ testing.TB, l attackLogin, r *samltest.Response) {
			r.SignAssertion, r.SignResponse = false, true
			after(r, func(_ testing.TB, signed *etree.Element) *etree.Element {
				outer := r.Response
				outer.ID = samltest.NewID()
				root := outer.Element()
				ext := etree.NewElement("samlp:Extensions")
				ext.AddChild(signed)
				root.InsertChildAt(root.SelectElement("Issuer").Index()+1, ext)
				root.AddChild(samltest.ForgedAssertion(l.requestID, ""))
				return root
			})
		}},
		// A forged assertion added to a signed response breaks its signature.
		{"forged assertion appended to a signed response", "signature|assertion", func(_ testing.TB, l attackLogin, r *samltest.Response) {
			r.SignAssertion, r.SignResponse = false, true
			after(r, func(_ testing.TB, root *etree.Element) *etree.Element {
				root.AddChild(samltest.ForgedAssertion(l.requestID, ""))
				return root
			})
		}},
	}
}

// bindingAttacks are signed responses meant for another SP, endpoint,
// login or time.
func bindingAttacks(e *attackEnv) []attack {
	return []attack{
		// The assertion was issued for another SP.
		{"wrong Audience", "AudienceRestriction", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Assertion.Conditions.AudienceRestrictions[0].Audience.Value = samltest.OtherSPEntityID
		}},
		// The same, encrypted: only the library's view of the audience exists.
		{"wrong Audience, encrypted assertion", "AudienceRestriction", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Assertion.Conditions.AudienceRestrictions[0].Audience.Value = samltest.OtherSPEntityID
			r.EncryptFor = e.p.cert
		}},
		// The Web SSO profile requires an AudienceRestriction naming the SP;
		// without one the assertion could be meant for anybody.
		{"no AudienceRestriction", "audience", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Assertion.Conditions.AudienceRestrictions = nil
		}},
		// The response was sent to another endpoint.
		{"wrong Destination", "Destination", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Response.Destination = samltest.OtherACSURL
		}},
		{"wrong Destination, signed response", "Destination", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Response.Destination, r.SignResponse = samltest.OtherACSURL, true
		}},
		// A signed response must say where it was sent.
		{"signed response without Destination", "Destination", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Response.Destination, r.SignResponse = "", true
		}},
		// The bearer confirmation names another recipient.
		{"wrong Recipient", "Recipient", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.Recipient = samltest.OtherACSURL
		}},
		// Conditions expired longer ago than the allowed clock skew.
		{"expired Conditions NotOnOrAfter", "Conditions is expired", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			now, skew, _ := attackClock()
			r.Assertion.Conditions.NotOnOrAfter = now.Add(-skew - 2*time.Minute)
		}},
		// The bearer confirmation expired longer ago than the clock skew.
		{"expired SubjectConfirmationData NotOnOrAfter", "SubjectConfirmationData is expired", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			now, skew, _ := attackClock()
			r.Assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.NotOnOrAfter = now.Add(-skew - 2*time.Minute)
		}},
		// Conditions not valid yet, beyond the clock skew.
		{"NotBefore in the future", "not yet valid", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			now, skew, _ := attackClock()
			r.Assertion.Conditions.NotBefore = now.Add(skew + 2*time.Minute)
		}},
		// An assertion issued too long ago, though still within NotOnOrAfter.
		{"assertion IssueInstant too old", "expired on", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			now, _, delay := attackClock()
			r.Assertion.IssueInstant = now.Add(-delay - 2*time.Minute)
		}},
		// A response issued too long ago.
		{"response IssueInstant too old", "IssueInstant expired", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			now, _, delay := attackClock()
			r.Response.IssueInstant = now.Add(-delay - 2*time.Minute)
		}},
		// A response to another AuthnRequest than the one this login sent.
		{"InResponseTo of another request", "InResponseTo", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			other := samltest.NewID()
			r.Response.InResponseTo = other
			r.Assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = other
		}},
		// The response answers this login, the signed assertion another one.
		{"assertion InResponseTo of another request", "SubjectConfirmation", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = samltest.NewID()
		}},
		// An IdP-initiated (unsolicited) response verified for a live login:
		// it answers no AuthnRequest.
		{"IdP-initiated response for a live login", "InResponseTo", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Response.InResponseTo = ""
			r.Assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = ""
		}},
		// A response the IdP made for another SP (its login, its endpoint,
		// its audience), relayed here by that SP or a thief.
		{"response for another SP", "", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			other := samltest.NewID()
			r.Response.InResponseTo, r.Response.Destination = other, samltest.OtherACSURL
			scd := r.Assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData
			scd.InResponseTo, scd.Recipient = other, samltest.OtherACSURL
			r.Assertion.Conditions.AudienceRestrictions[0].Audience.Value = samltest.OtherSPEntityID
		}},
		// The assertion claims another issuer (signed with the trusted key,
		// so only the issuer check can refuse it).
		{"assertion Issuer of another IdP", "issuer is not", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Assertion.Issuer.Value = samltest.OtherIdPEntityID
		}},
		{"response Issuer of another IdP", "Issuer does not match", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Response.Issuer.Value = samltest.OtherIdPEntityID
		}},
	}
}

// contentAttacks are signed responses that lack what a login needs.
func contentAttacks() []attack {
	return []attack{
		// The IdP says the login failed; a (signed) assertion must not
		// override that.
		{"status Responder/AuthnFailed", "status:Responder", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.SignResponse = true
			r.Response.Status.StatusCode = saml.StatusCode{Value: saml.StatusResponder,
				StatusCode: &saml.StatusCode{Value: saml.StatusAuthnFailed}}
		}},
		// A signed assertion whose required parts are missing must be
		// refused, not crash the verifier.
		{"signed assertion without Conditions", "", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Assertion.Conditions = nil
		}},
		{"signed assertion without Subject", "", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Assertion.Subject = nil
		}},
		{"signed assertion without SubjectConfirmationData", "", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData = nil
		}},
		// Without a bearer SubjectConfirmation nothing ties the assertion to
		// this login, this ACS or a short lifetime (the Web SSO profile
		// requires one); an unsigned response around it can claim any
		// InResponseTo.
		{"signed assertion without SubjectConfirmation", "", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Assertion.Subject.SubjectConfirmations = nil
		}},
		// A bearer confirmation is required; holder-of-key is not the Web
		// SSO profile's.
		{"signed assertion with a holder-of-key confirmation", "bearer", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Assertion.Subject.SubjectConfirmations[0].Method = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
		}},
		// A signed assertion without the email attribute logs nobody in.
		{"signed assertion without an email", "no email", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.Assertion.AttributeStatements[0].Attributes[0].Values = nil
		}},
		// A valid response cut short is not XML.
		{"truncated response", "", func(_ testing.TB, _ attackLogin, r *samltest.Response) {
			r.TruncateXMLTo = 600
		}},
	}
}
