package consolemeauth

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// TestCaddyfileMetadataSigningCert: idp_metadata_signing_cert takes one or
// more files (or PEM texts) and becomes the JSON list of the same name.
func TestCaddyfileMetadataSigningCert(t *testing.T) {
	d := caddyfile.NewTestDispenser(`consoleme_auth {
		saml {
			idp_metadata_url https://fed.example.org/md.xml
			idp_metadata_signing_cert /etc/fed-old.pem {env.FED_CERT}
		}
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(h.SAML)
	if want := `"idp_metadata_signing_cert":["/etc/fed-old.pem","{env.FED_CERT}"]`; !strings.Contains(string(got), want) {
		t.Errorf("JSON %s lacks %s", got, want)
	}
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("consoleme_auth {\nsaml {\nidp_metadata_signing_cert\n}\n}"))
	if err == nil || !strings.Contains(err.Error(), "idp_metadata_signing_cert: missing value") {
		t.Errorf("without a value: %v", err)
	}
}

// TestMetadataSigningCertSettings: each entry's placeholders are expanded
// (a certificate in an environment variable), and one that expands to
// nothing is named.
func TestMetadataSigningCertSettings(t *testing.T) {
	cert := samltest.NewKeyPair(t, t.TempDir(), "fed").Cert
	text := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	t.Setenv("CM_TEST_FED_CERT", text)
	c := &SAMLConfig{IDPMetadataSigningCerts: []string{"/etc/fed.pem", "{env.CM_TEST_FED_CERT}"}}
	cfg, err := c.settings(caddy.NewReplacer())
	if err != nil || len(cfg.IDPMetadataSigningCerts) != 2 || cfg.IDPMetadataSigningCerts[1] != text {
		t.Errorf("settings %q, %v", cfg.IDPMetadataSigningCerts, err)
	}
	c.IDPMetadataSigningCerts = []string{"{env.CM_TEST_UNSET_CERT}"}
	if _, err := c.settings(caddy.NewReplacer()); err == nil || !strings.Contains(err.Error(), "idp_metadata_signing_cert: {env.CM_TEST_UNSET_CERT} expanded to nothing") {
		t.Errorf("unset variable: %v", err)
	}
}

// TestUnsignedMetadataRefused: with idp_metadata_signing_cert, unsigned
// metadata from the URL leaves the validator saying the identity provider
// is unavailable, as when the URL cannot be reached; from a file it fails
// the provision, naming the file.
func TestUnsignedMetadataRefused(t *testing.T) {
	dir := t.TempDir()
	sp := samltest.NewKeyPair(t, dir, "sp")
	fed := samltest.NewKeyPair(t, dir, "federation")
	idp := samltest.NewIdP(t, dir, "idp")
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		_, _ = w.Write(samltest.Metadata(t, idp.Cert))
	}))
	t.Cleanup(srv.Close)
	h := newTestHandler(t, func(h *Handler) {
		h.SAML = &SAMLConfig{IDPMetadataURL: srv.URL, IDPMetadataSigningCerts: []string{fed.CertFile},
			SPCert: sp.CertFile, SPKey: sp.KeyFile}
	})
	deadline := time.Now().Add(10 * time.Second)
	for fetches.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if fetches.Load() < 2 {
		t.Fatal("the metadata was not fetched")
	}
	tok := generate(t, h, "alice@example.com", "192.0.2.1")
	rec, _ := serve(t, h, request("GET", "/challenge_validator/"+tok, "192.0.2.1", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "identity provider") {
		t.Errorf("validator with unsigned metadata: %d %s", rec.Code, rec.Body)
	}

	file := idp.MetadataFile(t, dir)
	bad := &Handler{JWTSecret: testSecret, PublicURL: "https://consoleme.example.com",
		SAML: &SAMLConfig{IDPMetadataFile: file, IDPMetadataSigningCerts: []string{fed.CertFile}, SPCert: sp.CertFile, SPKey: sp.KeyFile}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := bad.Provision(ctx)
	if err == nil || !strings.Contains(err.Error(), "idp_metadata_file: "+file) || !strings.Contains(err.Error(), "not signed") {
		t.Errorf("provision with an unsigned file: %v", err)
	}
	_ = bad.Cleanup()
}
