package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// The test-control endpoints answer only the holder of the provider's
// per-run key: without it, with another, or with one character changed,
// a request is refused and changes nothing.
func TestControlNeedsTheKey(t *testing.T) {
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the OpenID provider cannot run: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(Config{
		JWKS:     jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: priv, KeyID: "k", Algorithm: "RS256", Use: "sig"}}},
		Accounts: map[string]map[string]any{},
		Clients:  []map[string]any{},
	}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)

	changed := []byte(p.controlKey)
	changed[0] ^= 1
	for _, auth := range []string{"", "Bearer ", "Bearer another-key-of-the-same-sort", "Bearer " + string(changed), p.controlKey} {
		for _, what := range []string{"hold-next-redirect", "forge-next-id-token", "jwks"} {
			req, _ := http.NewRequest(http.MethodPost, p.Issuer+"/__test/"+what, strings.NewReader(`{"keys":[]}`))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("POST /__test/%s with Authorization %q: %s, want 403", what, auth, resp.Status)
			}
		}
	}
	rec, err := p.Record()
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.ForgedIDTokens)+len(rec.HeldRedirects)+len(rec.GrantErrors) != 0 {
		t.Errorf("the provider's record after refused control requests: %+v", rec)
	}
	if err := p.HoldNextRedirect(); err != nil {
		t.Errorf("with the key: %v", err)
	}
	if err := p.control(http.MethodPost, "no-such-thing", nil, nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("an unknown control endpoint: %v, want a 404 error", err)
	}
}
