package main

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/oidcauth/oidctest"
	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// demoClientSecret is the demo client's secret at the demo OpenID
// provider; both live only as long as the demo.
const demoClientSecret = "consoleme-demo-client-secret"

// startOIDCProvider starts a real OpenID provider (the certified
// oidc-provider package on Node.js, from oidctest) that knows the demo
// user (any password) and one client, ConsoleMe at caddyURL, and returns
// the module's oidc block for it. It needs node and npm.
func startOIDCProvider(cfg config, caddyURL, dir string) (*oidctest.Provider, *testbed.OIDC, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	login, _, _ := strings.Cut(cfg.User, "@")
	op, err := oidctest.Start(oidctest.Config{
		JWKS: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key, KeyID: "demo", Algorithm: "RS256", Use: "sig"}}},
		Accounts: map[string]map[string]any{
			login: {"email": cfg.User, "email_verified": true, "groups": cfg.Groups},
		},
		Clients: []map[string]any{{
			"client_id": "consoleme", "client_secret": demoClientSecret,
			"redirect_uris":             []string{caddyURL + "/oidc/callback"},
			"post_logout_redirect_uris": []string{caddyURL + "/"},
			"grant_types":               []string{"authorization_code"}, "response_types": []string{"code"},
		}},
	}, dir)
	if err != nil {
		return nil, nil, fmt.Errorf("starting the demo OpenID provider (needs Node.js and npm): %w", err)
	}
	return op, &testbed.OIDC{Issuer: op.Issuer, ClientID: "consoleme", ClientSecret: demoClientSecret, GroupsClaim: "groups"}, nil
}
