package oidcauth

import (
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Login is a login just started: where to send the browser, and what to
// remember until it comes back.
type Login struct {
	// URL is the provider's authorization endpoint with the request: answer
	// with a redirect (302 or 303) to it.
	URL string

	// State is the state parameter of the request, 32 random bytes
	// base64url-encoded. It comes back unchanged as the state of the
	// callback: use it as the key under which the LoginState is kept, like
	// the SAML RelayState, usable once and for a few minutes.
	State string

	// Nonce is the nonce parameter; the ID token must carry it.
	Nonce string

	// PKCEVerifier is the PKCE code verifier whose S256 challenge the
	// request carries; the token request must present it.
	PKCEVerifier string
}

// LoginState is what the callback is checked against: the values of the
// Login it answers. Keep it server-side under Login.State (no cookie has
// to survive the provider's redirect) and take it back, once, when the
// callback arrives.
type LoginState struct {
	State        string
	Nonce        string
	PKCEVerifier string
}

// Expect is the LoginState to keep for l.
func (l *Login) Expect() LoginState {
	return LoginState{State: l.State, Nonce: l.Nonce, PKCEVerifier: l.PKCEVerifier}
}

// AuthCodeURL starts a login at base (the scheme, host and optional path
// prefix the browser uses, no trailing slash): it draws a fresh state,
// nonce and PKCE verifier and builds the authorization request of the
// code flow, asking for the configured scopes with the S256 PKCE challenge
// and the redirect URI <base>/oidc/callback. It returns ErrNotLoaded while
// the discovery document is not loaded.
func (p *Provider) AuthCodeURL(base string) (*Login, error) {
	d, err := p.current()
	if err != nil {
		return nil, err
	}
	l := &Login{PKCEVerifier: oauth2.GenerateVerifier()}
	if l.State, err = randomString(); err != nil {
		return nil, err
	}
	if l.Nonce, err = randomString(); err != nil {
		return nil, err
	}
	l.URL = p.oauth2Config(d, base).AuthCodeURL(l.State,
		oauth2.S256ChallengeOption(l.PKCEVerifier), oidc.Nonce(l.Nonce))
	return l, nil
}
