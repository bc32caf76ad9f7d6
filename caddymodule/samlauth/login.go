package samlauth

import (
	"fmt"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// Redirect is how to send a browser to the IdP with an AuthnRequest or a
// LogoutRequest.
type Redirect struct {
	// RequestID is the request's ID. For an AuthnRequest, store it under
	// the relay state (usable once, for a few minutes) and pass it to Verify
	// when the response arrives with that relay state.
	RequestID string

	// IDPEntityID is the entity ID of the IdP the request goes to.
	IDPEntityID string

	// Binding is saml.HTTPRedirectBinding or saml.HTTPPostBinding.
	Binding string

	// URL is where the browser goes. With the HTTP-Redirect binding it is
	// the complete URL to answer with a redirect (302); with the HTTP-POST
	// binding it is the action of a form the browser must submit by POST.
	URL string

	// Form holds the fields of that form (SAMLRequest and RelayState) with
	// the HTTP-POST binding; it is nil with the HTTP-Redirect binding.
	Form map[string]string
}

// AuthnRequest makes a fresh AuthnRequest for a login at base that will
// come back with relayState. It asks the IdP to answer by HTTP-POST to
// <base>/saml/acs with the configured NameID format, and prefers the IdP's
// HTTP-Redirect SSO endpoint over its HTTP-POST one. The relay state is the
// caller's: a random, unguessable value (at most 80 bytes per the SAML
// bindings) under which it keeps the returned RequestID. The request is
// signed when the IdP wants it or Config.SignAuthnRequests is set (see
// signsRequests). It returns ErrNoMetadata while no IdP metadata is loaded.
func (p *Provider) AuthnRequest(base, relayState string) (*Redirect, error) {
	sp, err := p.forBase(base)
	if err != nil {
		return nil, err
	}
	binding, loc := saml.HTTPRedirectBinding, sp.GetSSOBindingLocation(saml.HTTPRedirectBinding)
	if loc == "" {
		binding, loc = saml.HTTPPostBinding, sp.GetSSOBindingLocation(saml.HTTPPostBinding)
	}
	req, err := sp.MakeAuthenticationRequest(loc, binding, saml.HTTPPostBinding)
	if err != nil {
		return nil, fmt.Errorf("making the AuthnRequest: %w", err)
	}
	r, err := p.sendRequest(sp.IDPMetadata, binding, loc, req.ID, req, func(sig *etree.Element) { req.Signature = sig }, relayState)
	if err != nil {
		return nil, fmt.Errorf("the AuthnRequest: %w", err)
	}
	return r, nil
}
