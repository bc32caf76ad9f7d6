package oidcauth

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/internal/refresh"
)

// signingAlgs are the ID token signature algorithms accepted, whatever the
// provider advertises: asymmetric ones only. "none" and the HMAC family
// (whose key would be the client secret) are never accepted.
var signingAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.EdDSA,
}

// Run keeps the provider's discovery document and keys fresh until ctx
// ends. It fetches both at once; after a failure it logs a warning, keeps
// the last good copy and tries again after RetryFirst, doubling the wait
// after each further failure up to RetryMax; after a success it fetches
// again every DiscoveryRefresh. Call it once per Provider, in its own
// goroutine; it returns when ctx is done.
func (p *Provider) Run(ctx context.Context) {
	refresh.Keep(ctx, p.load, p.cfg.refresh(), p.RetryFirst, p.RetryMax, func(err error, retryIn time.Duration) {
		p.logger.Warn("fetching the OpenID provider's discovery document and keys; keeping the last good copy",
			zap.String("issuer", p.cfg.Issuer), zap.Error(err), zap.Duration("retry_in", retryIn))
	})
}

// discoveryExtra are the fields of the discovery document go-oidc does not
// keep.
type discoveryExtra struct {
	JWKSURL     string   `json:"jwks_uri"`
	EndSession  string   `json:"end_session_endpoint"`
	Algs        []string `json:"id_token_signing_alg_values_supported"`
	AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	IssParam    bool     `json:"authorization_response_iss_parameter_supported"`
}

// load fetches the discovery document (go-oidc checks that it names the
// configured issuer) and the JWKS once and, when both are usable, makes
// them the current view. The key cache is kept across fetches while the
// jwks_uri stays the same.
func (p *Provider) load(ctx context.Context) error {
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, p.HTTPClient), p.cfg.Issuer)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	var extra discoveryExtra
	if err := op.Claims(&extra); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	ep := op.Endpoint()
	if ep.AuthURL == "" || ep.TokenURL == "" || extra.JWKSURL == "" {
		return fmt.Errorf("discovery: authorization_endpoint, token_endpoint and jwks_uri are required")
	}
	d := &discovered{
		op:         op,
		issuer:     p.cfg.Issuer,
		endpoint:   ep,
		userinfo:   op.UserInfoEndpoint(),
		endSession: extra.EndSession,
		issParam:   extra.IssParam,
	}
	d.endpoint.AuthStyle = p.authStyle(extra.AuthMethods)
	for _, a := range extra.Algs {
		if slices.Contains(signingAlgs, a) {
			d.algs = append(d.algs, a)
		}
	}
	if len(d.algs) == 0 {
		d.algs = []string{oidc.RS256} // the default of OpenID Connect Discovery
	}
	old := p.state.Load()
	if old != nil && old.keys.url == extra.JWKSURL {
		d.keys = old.keys
	} else {
		d.keys = newKeyCache(extra.JWKSURL, p.HTTPClient)
	}
	if err := d.keys.refresh(ctx); err != nil {
		return fmt.Errorf("jwks_uri: %w", err)
	}
	p.state.Store(d)
	if old == nil {
		p.logger.Info("OpenID provider loaded", zap.String("issuer", p.cfg.Issuer),
			zap.String("jwks_uri", extra.JWKSURL), zap.Bool("end_session", d.endSession != ""))
	}
	return nil
}

// authStyle picks how the client secret is sent: in the Authorization
// header (client_secret_basic, the default of OpenID Connect Discovery)
// unless the provider lists only client_secret_post. With private_key_jwt
// the client ID and assertion go in the form.
func (p *Provider) authStyle(methods []string) oauth2.AuthStyle {
	if p.key != nil {
		return oauth2.AuthStyleInParams
	}
	if len(methods) > 0 && !slices.Contains(methods, "client_secret_basic") && slices.Contains(methods, "client_secret_post") {
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleInHeader
}
