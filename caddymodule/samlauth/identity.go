package samlauth

import (
	"strings"

	"github.com/crewjam/saml"
)

// Identity is who a verified SAML response logs in.
type Identity struct {
	// Email is the user's email: the EmailAttribute's first value, or the
	// NameID when no EmailAttribute is configured; surrounding spaces are
	// trimmed. Verify never returns an empty one.
	Email string

	// Groups are the values of the GroupsAttribute, each trimmed, empty
	// values dropped, in the order the IdP sent them. Never nil; empty
	// without a GroupsAttribute.
	Groups []string

	// Issuer is the entity ID of the IdP that issued the assertion.
	Issuer string

	// AssertionID is the ID of the assertion, consumed in the ReplayGuard.
	AssertionID string
}

// identity takes the email and groups out of a verified assertion.
func (p *Provider) identity(a *saml.Assertion) *Identity {
	id := &Identity{Groups: []string{}, Issuer: a.Issuer.Value, AssertionID: a.ID}
	if p.cfg.EmailAttribute == "" {
		if a.Subject != nil && a.Subject.NameID != nil {
			id.Email = strings.TrimSpace(a.Subject.NameID.Value)
		}
	} else if vals := attributeValues(a, p.cfg.EmailAttribute); len(vals) > 0 {
		id.Email = strings.TrimSpace(vals[0])
	}
	if p.cfg.GroupsAttribute != "" {
		for _, g := range attributeValues(a, p.cfg.GroupsAttribute) {
			if g = strings.TrimSpace(g); g != "" {
				id.Groups = append(id.Groups, g)
			}
		}
	}
	return id
}

// attributeValues collects the values of every attribute whose Name or
// FriendlyName is name, across all attribute statements.
func attributeValues(a *saml.Assertion, name string) []string {
	var out []string
	for _, st := range a.AttributeStatements {
		for _, attr := range st.Attributes {
			if attr.Name != name && attr.FriendlyName != name {
				continue
			}
			for _, v := range attr.Values {
				out = append(out, v.Value)
			}
		}
	}
	return out
}
