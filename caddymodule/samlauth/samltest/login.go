package samltest

import (
	"crypto/x509"
	"slices"
	"testing"
	"time"

	"github.com/beevik/etree"
)

// The users of the attack tests.
const (
	// Victim is the user who logs in; the attacks try to log in as
	// someone else in her place, or to reuse what she was sent.
	Victim = "alice@example.com"
	// Attacker is the user an attack would like the SP to log in.
	Attacker = "mallory@example.com"
)

// Variant is a named change to a correct [Response] after which an SP
// must still accept it.
type Variant struct {
	Name string
	Edit func(r *Response)
}

// Accepted lists the variants of a correct response that every SP must
// accept: the assertion signed (the response as [IdP.Response] makes it);
// the response signed around an unsigned assertion; both signed; the
// signed assertion encrypted to spCert, the SP's certificate; and every
// time moved by half the SP's tolerances, skew for NotBefore and
// NotOnOrAfter and issueDelay for IssueInstant. An attack test checks
// these first, so that each refusal it then sees is due to the attack's
// own change.
func Accepted(spCert *x509.Certificate, skew, issueDelay time.Duration) []Variant {
	return []Variant{
		{"signed assertion", func(*Response) {}},
		{"signed response, unsigned assertion", func(r *Response) { r.SignAssertion, r.SignResponse = false, true }},
		{"signed response and assertion", func(r *Response) { r.SignResponse = true }},
		{"encrypted signed assertion", func(r *Response) { r.EncryptFor = spCert }},
		{"within the clock skew", func(r *Response) {
			now := time.Now().UTC()
			r.Assertion.Conditions.NotOnOrAfter = now.Add(-skew / 2)
			r.Assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.NotOnOrAfter = now.Add(-skew / 2)
			r.Assertion.Conditions.NotBefore = now.Add(skew / 2)
			r.Assertion.IssueInstant = now.Add(-issueDelay / 2)
			r.Response.IssueInstant = now.Add(-issueDelay / 2)
		}},
	}
}

// ForgedAssertion is the unsigned assertion an attacker would like an SP
// to believe: [Attacker], in the groups "engineering" and
// "consoleme-admins", answering the victim's AuthnRequest requestID and
// otherwise correct. Unless id is empty it replaces the assertion's fresh
// ID, to collide with the ID of a signed assertion.
func ForgedAssertion(requestID, id string) *etree.Element {
	a := Assertion(requestID, Attacker, "engineering", "consoleme-admins")
	if id != "" {
		a.ID = id
	}
	return a.Element()
}

// ExpectUser checks that an SP that accepted a response made for the user
// email in groups logged in exactly that user: gotEmail and gotGroups are
// what the SP's identity or session says.
func ExpectUser(t testing.TB, gotEmail string, gotGroups []string, email string, groups ...string) {
	t.Helper()
	if gotEmail != email {
		t.Errorf("logged in %q, want %q", gotEmail, email)
	}
	if !slices.Equal(gotGroups, groups) {
		t.Errorf("groups %q, want %q", gotGroups, groups)
	}
}
