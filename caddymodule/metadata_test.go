package consolemeauth

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
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

// signingCerts lists the IdP certificates the SP currently trusts.
func signingCerts(h *Handler) []string {
	md := h.sp.idp.Load()
	if md == nil {
		return nil
	}
	var out []string
	for _, kd := range md.IDPSSODescriptors[0].KeyDescriptors {
		if kd.Use == "encryption" {
			continue
		}
		for _, c := range kd.KeyInfo.X509Data.X509Certificates {
			out = append(out, strings.TrimSpace(c.Data))
		}
	}
	return out
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

// TestIDPMetadataRotation: the metadata URL is fetched in the background,
// refreshed, a failed refresh keeps the last good copy, and a rotated
// certificate is picked up without a reload.
func TestIDPMetadataRotation(t *testing.T) {
	dir := t.TempDir()
	_, _, _, certA := keyPair(t, dir, "idp-a")
	_, _, _, certB := keyPair(t, dir, "idp-b")
	var body atomic.Value
	var fail atomic.Bool
	var fetches atomic.Int32
	body.Store(idpMetadata(t, certA))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if fail.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		_, _ = w.Write(body.Load().([]byte))
	}))
	defer srv.Close()

	spCert, spKey, _, _ := keyPair(t, dir, "sp")
	h := newTestHandler(t, func(h *Handler) {
		h.SAML = &SAMLConfig{IDPMetadataURL: srv.URL, SPCert: spCert, SPKey: spKey,
			IDPMetadataRefresh: caddy.Duration(50 * time.Millisecond)}
	})
	a := base64.StdEncoding.EncodeToString(certA.Raw)
	b := base64.StdEncoding.EncodeToString(certB.Raw)
	waitFor(t, "first fetch", func() bool { c := signingCerts(h); return len(c) == 1 && c[0] == a })

	// The IdP goes down: the last good copy stays.
	fail.Store(true)
	n := fetches.Load()
	waitFor(t, "failed refreshes", func() bool { return fetches.Load() >= n+2 })
	if c := signingCerts(h); len(c) != 1 || c[0] != a {
		t.Fatalf("after failed refreshes trusting %d certs", len(c))
	}

	// It comes back announcing both certificates (rotation), then only B.
	body.Store(idpMetadata(t, certA, certB))
	fail.Store(false)
	waitFor(t, "rotation start", func() bool { return len(signingCerts(h)) == 2 })
	body.Store(idpMetadata(t, certB))
	waitFor(t, "rotation end", func() bool { c := signingCerts(h); return len(c) == 1 && c[0] == b })
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

func TestIDPMetadataFileErrors(t *testing.T) {
	dir := t.TempDir()
	noSSO := dir + "/nosso.xml"
	_ = os.WriteFile(noSSO, bytes.ReplaceAll(idpMetadata(t, mustCert(t, dir)), []byte("SingleSignOnService"), []byte("ArtifactResolutionService")), 0o600)
	if _, err := parseIDPMetadata([]byte("<x/>")); err == nil {
		t.Error("garbage metadata accepted")
	}
	b, _ := os.ReadFile(noSSO)
	if _, err := parseIDPMetadata(b); err == nil || !strings.Contains(err.Error(), "SingleSignOnService") {
		t.Errorf("metadata without SSO: %v", err)
	}
}

func mustCert(t *testing.T, dir string) *x509.Certificate {
	_, _, _, c := keyPair(t, dir, "x")
	return c
}
