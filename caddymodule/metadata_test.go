package consolemeauth

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
)

// idpMetadata returns the metadata of an IdP signing with cert.
func idpMetadata(t *testing.T, certs ...*x509.Certificate) []byte {
	t.Helper()
	md, _ := url.Parse("https://idp.example.com/metadata")
	sso, _ := url.Parse("https://idp.example.com/sso")
	idp := saml.IdentityProvider{Certificate: certs[0], MetadataURL: *md, SSOURL: *sso}
	ed := idp.Metadata()
	// More than one signing certificate: the rotation case.
	for _, c := range certs[1:] {
		kd := ed.IDPSSODescriptors[0].KeyDescriptors[0]
		kd.KeyInfo.X509Data.X509Certificates = []saml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(c.Raw)}}
		ed.IDPSSODescriptors[0].KeyDescriptors = append(ed.IDPSSODescriptors[0].KeyDescriptors, kd)
	}
	b, err := xml.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIDPMetadataNotYetLoaded: until the first fetch succeeds the validator
// says so instead of failing obscurely, and start-up did not wait for it.
func TestIDPMetadataNotYetLoaded(t *testing.T) {
	dir := t.TempDir()
	spCert, spKey, _, _ := keyPair(t, dir, "sp")
	start := time.Now()
	h := newTestHandler(t, func(h *Handler) {
		// Nothing listens here: the fetch fails and is retried.
		h.SAML = &SAMLConfig{IDPMetadataURL: "http://127.0.0.1:1/metadata", SPCert: spCert, SPKey: spKey}
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

func mustCert(t *testing.T, dir string) *x509.Certificate {
	_, _, _, c := keyPair(t, dir, "x")
	return c
}
