package consolemeauth

import (
	"strings"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// TestIDPMetadataNotYetLoaded: until the first fetch succeeds the validator
// says so instead of failing obscurely, and start-up did not wait for it.
func TestIDPMetadataNotYetLoaded(t *testing.T) {
	dir := t.TempDir()
	sp := samltest.NewKeyPair(t, dir, "sp")
	start := time.Now()
	h := newTestHandler(t, func(h *Handler) {
		// Nothing listens here: the fetch fails and is retried.
		h.SAML = &SAMLConfig{IDPMetadataURL: "http://127.0.0.1:1/metadata", SPCert: sp.CertFile, SPKey: sp.KeyFile}
	})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("provision waited %v for the network", d)
	}
	tok := generate(t, h, "alice@example.com", "192.0.2.1")
	rec, _ := serve(t, h, request("GET", "/challenge_validator/"+tok, "192.0.2.1", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "identity provider") {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
	// The SP metadata does not need the IdP's.
	if rec, _ := serve(t, h, request("GET", "/saml/metadata", "192.0.2.1", nil)); rec.Code != 200 {
		t.Errorf("SP metadata: %d", rec.Code)
	}
}
