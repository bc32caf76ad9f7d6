package oidcauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/oidcauth/oidctest"
)

// The test provider is oidctest's: oidc-provider started with node on
// 127.0.0.1.

const (
	// testBase is the client's base URL: the provider redirects to
	// testBase/oidc/callback, which the test browser stops at.
	testBase = "https://consoleme.test"
	// postLogout is the registered post_logout_redirect_uri.
	postLogout = testBase + "/"

	secretClient = "rp-secret"
	postClient   = "rp-post"
	jwtClient    = "rp-jwt"
	clientSecret = "s3cret-for-tests-only-long-enough-for-hs256"
)

// needNode skips the test when the provider cannot run here, except under
// CI=true, where that is a failure.
func needNode(t *testing.T) {
	t.Helper()
	if err := oidctest.Available(); err != nil {
		msg := "skipping: " + err.Error() + "; under CI=true this is a failure"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// testKey is a signing key of the provider; the tests hold the private
// half so that the attacker-in-the-middle can sign with it.
type testKey struct {
	kid  string
	priv *rsa.PrivateKey
}

func newTestKey(t *testing.T, kid string) *testKey {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{kid: kid, priv: priv}
}

// jwks is the private JWK set of keys, as the provider takes it.
func jwks(keys ...*testKey) jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv, KeyID: k.kid, Algorithm: "RS256", Use: "sig"})
	}
	return set
}

// clientKey is the private_key_jwt key of jwtClient, written to a PEM file.
type clientKey struct {
	path string
	jwks jose.JSONWebKeySet // public, as registered
}

func newClientKey(t *testing.T) *clientKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "client-key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &clientKey{path: path, jwks: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: priv.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"}}}}
}

// testAccounts are the provider's users. Claims starting with ui_ are
// served by userinfo only.
var testAccounts = map[string]map[string]any{
	"alice": {"email": "alice@example.com", "email_verified": true, "name": "Alice",
		"groups": []string{"admins", " devs ", ""}, "ui_groups": []string{"from-userinfo"}},
	"carol": {"ui_email": " carol@example.com ", "groups": "solo"},
	"dave":  {"email": "dave@example.com", "email_verified": false},
	"erin":  {"name": "Erin"},
}

// op is a running test provider.
type op struct {
	*oidctest.Provider
	ClientKey *clientKey
}

// startOP starts a provider signing with keys, listening on port (0: any
// free one), and stops it when the test ends.
func startOP(t *testing.T, port int, keys ...*testKey) *op {
	t.Helper()
	needNode(t)
	ck := newClientKey(t)
	client := func(extra map[string]any) map[string]any {
		m := map[string]any{
			"redirect_uris": []string{testBase + CallbackPath}, "post_logout_redirect_uris": []string{postLogout},
			"grant_types": []string{"authorization_code"}, "response_types": []string{"code"},
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	p, err := oidctest.Start(oidctest.Config{
		Port:     port,
		JWKS:     jwks(keys...),
		Accounts: testAccounts,
		Clients: []map[string]any{
			client(map[string]any{"client_id": secretClient, "client_secret": clientSecret, "token_endpoint_auth_method": "client_secret_basic"}),
			client(map[string]any{"client_id": postClient, "client_secret": clientSecret, "token_endpoint_auth_method": "client_secret_post"}),
			client(map[string]any{"client_id": jwtClient, "token_endpoint_auth_method": "private_key_jwt", "jwks": ck.jwks}),
		},
	}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("test provider's stderr:\n%s", p.Stderr())
		}
	})
	return &op{Provider: p, ClientKey: ck}
}

// rotate makes the provider sign with keys from now on, keeping its
// sessions.
func (o *op) rotate(t *testing.T, keys ...*testKey) {
	t.Helper()
	if err := o.Rotate(jwks(keys...)); err != nil {
		t.Fatal(err)
	}
}
