package samlauth

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// ErrNoSLO is returned by Logout when the IdP metadata has no
// SingleLogoutService of the HTTP-Redirect or HTTP-POST binding: the local
// logout is all there is.
var ErrNoSLO = errors.New("the identity provider has no single-logout endpoint of a binding this SP sends")

// Logout makes a LogoutRequest for the user whose NameID is nameID (the
// email the login produced) and returns how to send the browser to the
// IdP's single-logout endpoint with it, once the local session is cleared:
// by its HTTP-Redirect endpoint, else by its HTTP-POST one (a form the
// browser submits). The request is signed with sp_key whenever
// AuthnRequests are (see "Signed requests"). The IdP sends the browser
// back to <base>/saml/slo. relayState may be empty. It returns
// ErrNoMetadata while no IdP metadata is loaded and ErrNoSLO when the IdP
// has no such endpoint.
func (p *Provider) Logout(base, nameID, relayState string) (*Redirect, error) {
	return p.logout(base, nameID, relayState, saml.HTTPRedirectBinding, saml.HTTPPostBinding)
}

// logout makes the LogoutRequest for the first of bindings the IdP has a
// single-logout endpoint of.
func (p *Provider) logout(base, nameID, relayState string, bindings ...string) (*Redirect, error) {
	sp, err := p.forBase(base)
	if err != nil {
		return nil, err
	}
	var binding, loc string
	for _, b := range bindings {
		if loc = sp.GetSLOBindingLocation(b); loc != "" {
			binding = b
			break
		}
	}
	if loc == "" {
		return nil, ErrNoSLO
	}
	req, err := sp.MakeLogoutRequest(loc, nameID)
	if err != nil {
		return nil, fmt.Errorf("making the LogoutRequest: %w", err)
	}
	// Its answer is accepted by this ID (see "LogoutRequest IDs").
	req.ID = p.newLogoutID(saml.TimeNow())
	r, err := p.sendRequest(sp.IDPMetadata, binding, loc, req.ID, req, func(sig *etree.Element) { req.Signature = sig }, relayState)
	if err != nil {
		return nil, fmt.Errorf("the LogoutRequest: %w", err)
	}
	return r, nil
}

// ValidateLogoutResponse checks the LogoutResponse the IdP sent to
// <base>/saml/slo in r, in the SAMLResponse query parameter (HTTP-Redirect
// binding) or form field (HTTP-POST binding; bound r.Body before calling):
// signed by the IdP (in the query by HTTP-Redirect, as the bindings
// specify, or inside the XML), in answer to a LogoutRequest this SP made
// less than LogoutRoundTrip ago (InResponseTo), Destination
// <base>/saml/slo, issued recently by the IdP of the metadata, with a
// success status. The query is read strictly (see parseRedirectQuery), and
// the message checked is the one whose signature was verified. A nil
// error means the IdP confirmed the logout. The caller clears the local
// session either way; the error is for the log. It returns ErrNoMetadata
// while no IdP metadata is loaded; a panic of the library is an error.
func (p *Provider) ValidateLogoutResponse(r *http.Request, base string) (err error) {
	sp, err := p.forBase(base)
	if err != nil {
		return err
	}
	defer func() {
		if rec := recover(); rec != nil {
			err = fmt.Errorf("logout response refused: the SAML library failed on it: %v", rec)
		}
	}()
	q, err := parseRedirectQuery(r.URL.RawQuery)
	if err != nil {
		return fmt.Errorf("logout response refused: %w", err)
	}
	var raw []byte
	switch {
	case q.has("SAMLResponse") && (q.has("Signature") || q.has("SigAlg")):
		// Signed in the query (HTTP-Redirect), which the library cannot check.
		raw, err = p.verifyRedirectLogoutResponse(sp, q)
	case q.has("SAMLResponse"):
		// HTTP-Redirect, signed inside the XML.
		data := q.get("SAMLResponse")
		if err = sp.ValidateLogoutResponseRedirect(data); err == nil {
			raw, err = inflateLogoutResponse(data)
		}
	default:
		if err := r.ParseForm(); err != nil {
			return fmt.Errorf("logout response refused: unable to parse form: %w", err)
		}
		v := r.PostForm["SAMLResponse"]
		if len(v) != 1 {
			return fmt.Errorf("logout response refused: %d SAMLResponse fields, want one", len(v))
		}
		if err = sp.ValidateLogoutResponseForm(v[0]); err == nil {
			raw, err = base64.StdEncoding.DecodeString(v[0])
		}
	}
	if err != nil {
		var ire *saml.InvalidResponseError
		if errors.As(err, &ire) && ire.PrivateErr != nil {
			err = ire.PrivateErr
		}
		return fmt.Errorf("logout response refused: %w", err)
	}
	var resp saml.LogoutResponse
	if err := xml.Unmarshal(raw, &resp); err != nil {
		return fmt.Errorf("logout response refused: invalid XML: %w", err)
	}
	return p.checkLogoutResponse(sp, &resp)
}
