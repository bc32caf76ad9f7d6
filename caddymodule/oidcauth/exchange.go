package oidcauth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Callback holds the query parameters of the redirect to
// <base>/oidc/callback.
type Callback struct {
	Code             string // code
	State            string // state
	Error            string // error, when the provider refused
	ErrorDescription string // error_description
	Issuer           string // iss (RFC 9207), when the provider sends it
}

// CallbackFromQuery takes the Callback out of the callback's query.
func CallbackFromQuery(q url.Values) Callback {
	return Callback{
		Code:             q.Get("code"),
		State:            q.Get("state"),
		Error:            q.Get("error"),
		ErrorDescription: q.Get("error_description"),
		Issuer:           q.Get("iss"),
	}
}

// Exchange completes the login at base whose callback is cb, for the
// LoginState expected taken back (once) under cb.State, and returns who it
// logs in. In order:
//
//  1. An error from the provider (e.g. access_denied) is refused.
//  2. expected.State must be set and equal cb.State, and cb.Code must be
//     set: a callback for no login started here is refused. The iss
//     parameter (RFC 9207, mix-up defence) must be the issuer when present,
//     and must be present when the provider says it sends it.
//  3. The code is redeemed at the token endpoint with the PKCE verifier
//     and the client's authentication (client secret, or a private_key_jwt
//     assertion). The provider refuses a replayed, expired or foreign code
//     and a wrong verifier: an OAuth error answer (4xx) is refused (with
//     MessageNotAccepted when the client itself is refused).
//  4. The ID token is verified by go-oidc: signature by a key of the
//     provider's JWKS (fetched again on an unknown kid) with an
//     asymmetric algorithm the provider advertises ("none" and HMAC
//     never), iss the issuer, aud naming the client ID, exp not before now
//     minus the clock skew. Then: iat not after now plus the clock skew,
//     azp the client ID when there are several audiences, nonce equal to
//     expected.Nonce, at_hash matching the access token when present.
//  5. The userinfo endpoint is asked when the groups come from it or the
//     ID token has no email; its sub must be the ID token's.
//  6. An email is required, and refused when email_verified is false.
//
// A refused callback gives a *Refusal. ErrNotLoaded (no discovery document
// yet) and failures to reach the provider mean no decision was made: answer
// 503, the browser may start over later.
//
// now is this host's time; the ID token's times are checked against it.
func (p *Provider) Exchange(ctx context.Context, base string, cb Callback, expected LoginState, now time.Time) (*Identity, error) {
	if cb.Error != "" {
		return nil, refuse(fmt.Sprintf("the provider answered error=%q (%s)", cb.Error, cb.ErrorDescription), MessageProviderError)
	}
	if expected.State == "" || subtle.ConstantTimeCompare([]byte(cb.State), []byte(expected.State)) != 1 {
		return nil, refuse("the callback's state answers no login started here", MessageNotStarted)
	}
	if cb.Code == "" {
		return nil, refuse("the callback has no code", MessageNotAccepted)
	}
	d, err := p.current()
	if err != nil {
		return nil, err
	}
	if (cb.Issuer != "" || d.issParam) && cb.Issuer != p.cfg.Issuer {
		return nil, refuse(fmt.Sprintf("the callback names issuer %q, not %q", cb.Issuer, p.cfg.Issuer), MessageNotAccepted)
	}
	ctx = oidc.ClientContext(ctx, p.HTTPClient)
	opts, err := p.clientAuthOptions(d.endpoint.TokenURL, now)
	if err != nil {
		return nil, err
	}
	opts = append(opts, oauth2.VerifierOption(expected.PKCEVerifier))
	token, err := p.oauth2Config(d, base).Exchange(ctx, cb.Code, opts...)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			msg := MessageCodeRejected
			if re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client" {
				msg = MessageNotAccepted // the client's setup, not the user's doing
			}
			return nil, refuse("token endpoint: "+re.Error(), msg)
		}
		return nil, fmt.Errorf("token endpoint: %w", err)
	}
	rawID, _ := token.Extra("id_token").(string)
	if rawID == "" {
		return nil, refuse("the token response has no id_token", MessageNotAccepted)
	}
	idt, err := p.verifyIDToken(ctx, d, rawID, token.AccessToken, expected.Nonce, now)
	if err != nil {
		return nil, err
	}
	return p.identity(ctx, d, idt, rawID, token)
}

// verifyIDToken runs step 4 of Exchange.
func (p *Provider) verifyIDToken(ctx context.Context, d *discovered, raw, accessToken, nonce string, now time.Time) (*oidc.IDToken, error) {
	skew := p.cfg.skew()
	v := oidc.NewVerifier(d.issuer, d.keys, &oidc.Config{
		ClientID:             p.cfg.ClientID,
		SupportedSigningAlgs: d.algs,
		Now:                  func() time.Time { return now.Add(-skew) },
	})
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return nil, refuse(fmt.Sprintf("ID token expired at %s (now %s, clock skew %s)",
				expired.Expiry.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), skew), MessageNotAccepted)
		}
		return nil, refuse("ID token: "+err.Error(), MessageNotAccepted)
	}
	if !idt.IssuedAt.IsZero() && idt.IssuedAt.After(now.Add(skew)) {
		return nil, refuse(fmt.Sprintf("ID token issued in the future (iat %s)", idt.IssuedAt.UTC().Format(time.RFC3339)), MessageNotAccepted)
	}
	var azp struct {
		AuthorizedParty string `json:"azp"`
	}
	if err := idt.Claims(&azp); err != nil {
		return nil, refuse("ID token claims: "+err.Error(), MessageNotAccepted)
	}
	if (len(idt.Audience) > 1 || azp.AuthorizedParty != "") && azp.AuthorizedParty != p.cfg.ClientID {
		return nil, refuse(fmt.Sprintf("ID token authorized party %q is not the client", azp.AuthorizedParty), MessageNotAccepted)
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, refuse("ID token nonce does not match the login's", MessageNotAccepted)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(accessToken); err != nil {
			return nil, refuse("ID token at_hash: "+err.Error(), MessageNotAccepted)
		}
	}
	if !slices.Contains(idt.Audience, p.cfg.ClientID) { // go-oidc checked; kept explicit
		return nil, refuse("ID token audience does not name the client", MessageNotAccepted)
	}
	return idt, nil
}
