package samlauth

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// TestAttackControl proves that the responses the attack tests start from
// are accepted, so that each refusal below is due to its one change; the
// identity is the email and groups the IdP signed.
func TestAttackControl(t *testing.T) {
	e := newAttackEnv(t, nil)
	for _, tc := range []struct {
		name string
		edit func(*attackResponse)
	}{
		{"signed assertion", func(*attackResponse) {}},
		{"signed response, unsigned assertion", func(r *attackResponse) { r.signAssertion, r.signResponse = false, true }},
		{"signed response and assertion", func(r *attackResponse) { r.signResponse = true }},
		{"encrypted signed assertion", func(r *attackResponse) { r.encryptFor = e.p.cert }},
		{"within the clock skew", func(r *attackResponse) {
			now, skew, delay := attackClock()
			r.assertion.Conditions.NotOnOrAfter = now.Add(-skew / 2)
			r.assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.NotOnOrAfter = now.Add(-skew / 2)
			r.assertion.Conditions.NotBefore = now.Add(skew / 2)
			r.assertion.IssueInstant = now.Add(-delay / 2)
			r.resp.IssueInstant = now.Add(-delay / 2)
		}},
		{"groups padded with spaces and an empty one", func(r *attackResponse) {
			attrs := r.assertion.AttributeStatements[0].Attributes
			attrs[1].Values = []saml.AttributeValue{{Type: "xs:string", Value: "  engineering "}, {Type: "xs:string", Value: " "}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := e.login(t)
			r := e.response(l)
			tc.edit(r)
			id, err := e.verify(t, l, r.xml(t))
			expectLogin(t, id, err, attackVictim)
			if err == nil && id.AssertionID != r.assertion.ID {
				t.Errorf("assertion ID %q, want %q", id.AssertionID, r.assertion.ID)
			}
		})
	}
}

// attack is one way of tampering with the control response.
type attack struct {
	name   string
	reason string // what the refusal's Reason must mention; "" to not check
	edit   func(t testing.TB, l attackLogin, r *attackResponse)
}

// after adds a change made to the XML after the IdP signed it.
func after(r *attackResponse, f func(t testing.TB, root *etree.Element) *etree.Element) {
	r.afterSigning = append(r.afterSigning, f)
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
			id, err := e.verify(t, l, r.xml(t))
			expectRefused(t, id, err, a.reason)
		})
	}

	// An IdP-initiated response: no login was started, so there is no
	// request ID to answer (the glue has no RelayState to look up).
	t.Run("IdP-initiated response without a login", func(t *testing.T) {
		l := e.login(t)
		r := e.response(l)
		r.resp.InResponseTo = ""
		r.assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = ""
		id, err := e.verify(t, attackLogin{}, r.xml(t))
		expectRefused(t, id, err, "RelayState")
	})
}

// signatureAttacks are responses not signed, or not signed by the IdP's
// key, or changed after signing.
func signatureAttacks(e *attackEnv) []attack {
	return []attack{
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
		// An assertion encrypted to the SP proves nothing: the SP's certificate is public.
		{"encrypted unsigned assertion", "signature", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.signAssertion, r.encryptFor = false, e.p.cert
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
		// Another IdP altogether: its own entity ID and its own key.
		{"response and assertion of another IdP", "", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.resp.Issuer.Value, r.assertion.Issuer.Value = otherIdPEntity, otherIdPEntity
			r.assertionKey, r.responseKey, r.signResponse = e.impostor, e.impostor, true
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
		{"XSW forged assertion before the signed one", "", func(_ testing.TB, l attackLogin, r *attackResponse) {
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				root.InsertChildAt(attackChild(t, root, "Assertion").Index(), attackForgedAssertion(l, ""))
				return root
			})
		}},
		// The same forged assertion placed after the signed one.
		{"XSW forged assertion after the signed one", "", func(_ testing.TB, l attackLogin, r *attackResponse) {
			after(r, func(_ testing.TB, root *etree.Element) *etree.Element {
				root.AddChild(attackForgedAssertion(l, ""))
				return root
			})
		}},
		// The signed assertion hidden in samlp:Extensions, and a forged
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
		// A forged assertion with the signed one's ID carrying the copied
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
		// The signed response moved into the Extensions of a new, unsigned
		// response that carries a forged assertion.
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
	}
}

// bindingAttacks are signed responses meant for another SP, endpoint,
// login or time.
func bindingAttacks(e *attackEnv) []attack {
	return []attack{
		// The assertion was issued for another SP.
		{"wrong Audience", "AudienceRestriction", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.assertion.Conditions.AudienceRestrictions[0].Audience.Value = otherSPEntity
		}},
		// The same, encrypted: only the library's view of the audience exists.
		{"wrong Audience, encrypted assertion", "AudienceRestriction", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.assertion.Conditions.AudienceRestrictions[0].Audience.Value = otherSPEntity
			r.encryptFor = e.p.cert
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
		// An IdP-initiated (unsolicited) response verified for a live login:
		// it answers no AuthnRequest.
		{"IdP-initiated response for a live login", "InResponseTo", func(_ testing.TB, _ attackLogin, r *attackResponse) {
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
		// The assertion claims another issuer (signed with the trusted key,
		// so only the issuer check can refuse it).
		{"assertion Issuer of another IdP", "issuer is not", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.assertion.Issuer.Value = otherIdPEntity
		}},
		{"response Issuer of another IdP", "Issuer does not match", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.resp.Issuer.Value = otherIdPEntity
		}},
	}
}

// contentAttacks are signed responses that lack what a login needs.
func contentAttacks() []attack {
	return []attack{
		// The IdP says the login failed; a (signed) assertion must not
		// override that.
		{"status Responder/AuthnFailed", "status:Responder", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.signResponse = true
			r.resp.Status.StatusCode = saml.StatusCode{Value: saml.StatusResponder,
				StatusCode: &saml.StatusCode{Value: saml.StatusAuthnFailed}}
		}},
		// A signed assertion whose required parts are missing must be
		// refused, not crash the verifier.
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
		// A bearer confirmation is required; holder-of-key is not the Web
		// SSO profile's.
		{"signed assertion with a holder-of-key confirmation", "bearer", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.assertion.Subject.SubjectConfirmations[0].Method = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
		}},
		// A signed assertion without the email attribute logs nobody in.
		{"signed assertion without an email", "no email", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.assertion.AttributeStatements[0].Attributes[0].Values = nil
		}},
		// A valid response cut short is not XML.
		{"truncated response", "", func(_ testing.TB, _ attackLogin, r *attackResponse) {
			r.truncateXMLTo = 600
		}},
	}
}
