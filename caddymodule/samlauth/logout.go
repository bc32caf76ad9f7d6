package samlauth

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/crewjam/saml"
)

// ErrNoSLO is returned by LogoutRedirect when the IdP metadata has no
// SingleLogoutService with the HTTP-Redirect binding: the local logout is
// all there is.
var ErrNoSLO = errors.New("the identity provider has no HTTP-Redirect single-logout endpoint")

// LogoutRedirect makes an (unsigned) LogoutRequest for the user whose
// NameID is nameID (the email the login produced) and returns the IdP's
// HTTP-Redirect single-logout URL carrying it, to answer GET /logout with
// a redirect once the local session is cleared. The IdP sends the browser
// back to <base>/saml/slo. relayState may be empty. It returns
// ErrNoMetadata while no IdP metadata is loaded and ErrNoSLO when the IdP
// has no such endpoint.
func (p *Provider) LogoutRedirect(base, nameID, relayState string) (*url.URL, error) {
	sp, err := p.forBase(base)
	if err != nil {
		return nil, err
	}
	if sp.GetSLOBindingLocation(saml.HTTPRedirectBinding) == "" {
		return nil, ErrNoSLO
	}
	u, err := sp.MakeRedirectLogoutRequest(nameID, relayState)
	if err != nil {
		return nil, fmt.Errorf("making the LogoutRequest: %w", err)
	}
	return u, nil
}

// ValidateLogoutResponse checks the LogoutResponse the IdP sent to
// <base>/saml/slo in r, in the SAMLResponse query parameter (HTTP-Redirect
// binding) or form field (HTTP-POST binding; bound r.Body before calling):
// signed by the IdP, Destination <base>/saml/slo, issued recently by the
// IdP of the metadata, with a success status. A nil error means the IdP
// confirmed the logout. The caller clears the local session either way;
// the error is for the log. It returns ErrNoMetadata while no IdP metadata
// is loaded; a panic of the library is an error.
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
	if err := sp.ValidateLogoutResponseRequest(r); err != nil {
		var ire *saml.InvalidResponseError
		if errors.As(err, &ire) && ire.PrivateErr != nil {
			return fmt.Errorf("logout response refused: %w", ire.PrivateErr)
		}
		return fmt.Errorf("logout response refused: %w", err)
	}
	return nil
}
