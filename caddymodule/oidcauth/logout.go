package oidcauth

import "net/url"

// LogoutURL is the provider's end_session_endpoint (OpenID Connect
// RP-Initiated Logout) with client_id and, when not empty,
// post_logout_redirect_uri (which must be registered at the provider) and
// id_token_hint (the Identity.IDToken of the login, when the caller kept
// it; without it the provider may ask the user to confirm). Answer the
// logout with a redirect to it once the local session is cleared. It
// returns false when no discovery document is loaded or the provider offers
// no end_session_endpoint: the local logout is all there is.
func (p *Provider) LogoutURL(postLogoutRedirect, idTokenHint string) (string, bool) {
	d := p.state.Load()
	if d == nil || d.endSession == "" {
		return "", false
	}
	u, err := url.Parse(d.endSession)
	if err != nil {
		return "", false
	}
	q := u.Query()
	q.Set("client_id", p.cfg.ClientID)
	if postLogoutRedirect != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirect)
	}
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	u.RawQuery = q.Encode()
	return u.String(), true
}
