package samlauth

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// TestIdentity: the email comes from the email attribute (Name or
// FriendlyName) or the NameID, trimmed; the groups from every value of the
// groups attribute across statements, trimmed, empty ones dropped.
func TestIdentity(t *testing.T) {
	a := &saml.Assertion{
		ID:      "_a",
		Issuer:  saml.Issuer{Value: samltest.IdPEntityID},
		Subject: &saml.Subject{NameID: &saml.NameID{Value: " nameid@example.com "}},
		AttributeStatements: []saml.AttributeStatement{
			{Attributes: []saml.Attribute{
				{Name: "urn:oid:0.9.2342.19200300.100.1.3", FriendlyName: "mail", Values: []saml.AttributeValue{{Value: " mail@example.com "}, {Value: "second@example.com"}}},
				{Name: "groups", Values: []saml.AttributeValue{{Value: " a "}, {Value: ""}, {Value: "  "}}},
			}},
			{Attributes: []saml.Attribute{{Name: "groups", Values: []saml.AttributeValue{{Value: "b"}}}}},
		},
	}
	for _, tc := range []struct {
		email, groups string
		wantEmail     string
		wantGroups    []string
	}{
		{"", "", "nameid@example.com", []string{}},
		{"mail", "groups", "mail@example.com", []string{"a", "b"}},
		{"urn:oid:0.9.2342.19200300.100.1.3", "missing", "mail@example.com", []string{}},
		{"missing", "", "", []string{}},
	} {
		p := &Provider{cfg: Config{EmailAttribute: tc.email, GroupsAttribute: tc.groups}}
		id := p.identity(a)
		if id.Email != tc.wantEmail || !slices.Equal(id.Groups, tc.wantGroups) || id.Groups == nil ||
			id.Issuer != samltest.IdPEntityID || id.AssertionID != "_a" {
			t.Errorf("email_attribute %q groups_attribute %q: %+v", tc.email, tc.groups, id)
		}
	}
	noSubject := &saml.Assertion{Issuer: saml.Issuer{Value: samltest.IdPEntityID}}
	if id := (&Provider{}).identity(noSubject); id.Email != "" {
		t.Errorf("email %q from an assertion without a subject", id.Email)
	}
}

// recordingGuard is a ReplayGuard that notes what it was asked.
type recordingGuard struct {
	key          string
	expires, now time.Time
}

func (g *recordingGuard) MarkOnce(_ context.Context, key string, expires, now time.Time) (bool, error) {
	g.key, g.expires, g.now = key, expires, now
	return true, nil
}

// TestVerifyReplayWindow: the assertion ID is kept until the assertion's
// NotOnOrAfter plus the clock skew, and the guard gets Verify's now.
func TestVerifyReplayWindow(t *testing.T) {
	e := newAttackEnv(t, nil)
	g := &recordingGuard{}
	e.guard = g
	l := e.login(t)
	r := e.response(l)
	now := time.Now()
	id, err := e.p.Verify(t.Context(), r.XML(t), samltest.SPBaseURL, l.requestID, g, now)
	expectLogin(t, id, err, samltest.Victim)
	// The XML carries milliseconds.
	skew, _ := Tolerances()
	want := r.Assertion.Conditions.NotOnOrAfter.Add(skew)
	if g.key != "assertion:"+r.Assertion.ID || g.expires.Sub(want).Abs() >= time.Millisecond || !g.now.Equal(now) {
		t.Errorf("MarkOnce(%q, %v, %v), want (assertion:%s, %v, %v)", g.key, g.expires, g.now, r.Assertion.ID, want, now)
	}
}
