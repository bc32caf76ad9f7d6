package consolemeauth

import (
	"encoding/base64"
	"encoding/xml"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

func newSAMLHandler(t testing.TB) *Handler {
	t.Helper()
	dir := t.TempDir()
	sp := samltest.NewKeyPair(t, dir, "sp")
	md := samltest.NewIdP(t, dir, "idp").MetadataFile(t, dir)
	return newTestHandler(t, func(h *Handler) {
		h.SAML = &SAMLConfig{IDPMetadataFile: md, SPCert: sp.CertFile, SPKey: sp.KeyFile, GroupsAttribute: "groups"}
	})
}

func TestSAMLLoginStarts(t *testing.T) {
	h := newSAMLHandler(t)
	tok := generate(t, h, "alice@example.com", "192.0.2.1")
	rec, _ := serve(t, h, request("GET", "/challenge_validator/"+tok, "192.0.2.1", nil))
	if rec.Code != 302 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || loc.Host != "idp.example.com" || loc.Path != "/sso" {
		t.Fatalf("Location %q", rec.Header().Get("Location"))
	}
	relay := loc.Query().Get("RelayState")
	if len(relay) != 22 || loc.Query().Get("SAMLRequest") == "" {
		t.Fatalf("query %v", loc.Query())
	}
	if len(rec.Result().Cookies()) != 0 {
		t.Error("the login must not depend on a cookie")
	}
	state, err := h.states.TakeLogin(t.Context(), relay, time.Now())
	if err != nil || state.ReturnPath != "/challenge_validator/"+tok || !strings.HasPrefix(state.RequestID, "id-") {
		t.Errorf("login state %+v, %v", state, err)
	}
	// An unknown challenge does not start a login at all.
	rec, _ = serve(t, h, request("GET", "/challenge_validator/f82e6492-36a3-477d-9dab-98df1a0753a3", "192.0.2.1", nil))
	if rec.Code != 404 {
		t.Errorf("unknown token: %d", rec.Code)
	}
}

func TestSAMLMetadata(t *testing.T) {
	h := newSAMLHandler(t)
	rec, passed := serve(t, h, request("GET", "/saml/metadata", "192.0.2.1", nil))
	if passed || rec.Code != 200 || !strings.Contains(rec.Header().Get("Content-Type"), "xml") {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	var md saml.EntityDescriptor
	if err := xml.Unmarshal(rec.Body.Bytes(), &md); err != nil {
		t.Fatal(err)
	}
	if acs := md.SPSSODescriptors[0].AssertionConsumerServices; len(acs) != 1 || acs[0].Binding != saml.HTTPPostBinding {
		t.Errorf("ACS endpoints %+v, want only HTTP-POST", acs)
	}
	if md.EntityID != "https://consoleme.example.com/saml/metadata" || len(md.SPSSODescriptors) != 1 ||
		md.SPSSODescriptors[0].AssertionConsumerServices[0].Location != "https://consoleme.example.com/saml/acs" {
		t.Errorf("metadata %s", rec.Body)
	}
}

func TestACSRefusesBadInput(t *testing.T) {
	h := newSAMLHandler(t)
	// A real login state, so that the later cases get past the RelayState.
	tok := generate(t, h, "alice@example.com", "192.0.2.1")
	rec, _ := serve(t, h, request("GET", "/challenge_validator/"+tok, "192.0.2.1", nil))
	loc, _ := url.Parse(rec.Header().Get("Location"))
	relay := loc.Query().Get("RelayState")

	notSAML := base64.StdEncoding.EncodeToString([]byte("<not-saml/>"))
	for _, tc := range []struct {
		name   string
		method string
		form   url.Values
		status int
	}{
		{"GET", "GET", nil, 405},
		{"no response", "POST", url.Values{"RelayState": {relay}}, 400},
		{"bad base64", "POST", url.Values{"SAMLResponse": {"%%%"}, "RelayState": {relay}}, 400},
		{"artifact", "POST", url.Values{"SAMLart": {"AAQA"}, "RelayState": {relay}}, 400},
		{"no relay state (IdP-initiated)", "POST", url.Values{"SAMLResponse": {notSAML}}, 400},
		{"unknown relay state", "POST", url.Values{"SAMLResponse": {notSAML}, "RelayState": {"nope"}}, 400},
		{"huge relay state", "POST", url.Values{"SAMLResponse": {notSAML}, "RelayState": {strings.Repeat("r", 5000)}}, 400},
		{"invalid response", "POST", url.Values{"SAMLResponse": {notSAML}, "RelayState": {relay}}, 403},
		{"relay state used once", "POST", url.Values{"SAMLResponse": {notSAML}, "RelayState": {relay}}, 400},
		{"oversized body", "POST", url.Values{"SAMLResponse": {strings.Repeat("A", maxACSBody)}}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request(tc.method, "/saml/acs", "192.0.2.1", strings.NewReader(tc.form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec, passed := serve(t, h, r)
			if passed || rec.Code != tc.status {
				t.Fatalf("status %d (passed=%v), want %d: %s", rec.Code, passed, tc.status, rec.Body)
			}
			for _, c := range rec.Result().Cookies() {
				if c.Name == h.CookieName {
					t.Fatal("a refused response set the session cookie")
				}
			}
		})
	}
}

func TestSAMLConfigErrors(t *testing.T) {
	dir := t.TempDir()
	sp, other := samltest.NewKeyPair(t, dir, "sp"), samltest.NewKeyPair(t, dir, "other")
	certPath, keyPath := sp.CertFile, sp.KeyFile
	md := samltest.NewIdP(t, dir, "idp").MetadataFile(t, dir)
	garbage := filepath.Join(dir, "garbage")
	_ = os.WriteFile(garbage, []byte("not pem"), 0o600)
	for _, tc := range []struct {
		cfg  SAMLConfig
		want string
	}{
		{SAMLConfig{SPCert: certPath, SPKey: keyPath}, "idp_metadata_url or idp_metadata_file"},
		{SAMLConfig{SPCert: certPath, SPKey: keyPath, IDPMetadataFile: md, IDPMetadataURL: "https://x"}, "give only one"},
		{SAMLConfig{SPCert: certPath, SPKey: keyPath, IDPMetadataFile: filepath.Join(dir, "missing.xml")}, "idp_metadata_file"},
		{SAMLConfig{SPCert: certPath, SPKey: keyPath, IDPMetadataFile: garbage}, "idp_metadata_file"},
		{SAMLConfig{SPCert: certPath, SPKey: keyPath, IDPMetadataURL: "not a url"}, "idp_metadata_url"},
		{SAMLConfig{SPCert: garbage, SPKey: keyPath, IDPMetadataFile: md}, "sp_cert"},
		{SAMLConfig{SPCert: certPath, SPKey: garbage, IDPMetadataFile: md}, "sp_key"},
		{SAMLConfig{SPCert: other.CertFile, SPKey: keyPath, IDPMetadataFile: md}, "does not match"},
		{SAMLConfig{SPCert: certPath, SPKey: keyPath, IDPMetadataFile: md, NameIDFormat: "x509"}, "name_id_format"},
	} {
		cfg := tc.cfg
		h := &Handler{JWTSecret: testSecret, SAML: &cfg}
		ctx, cancel := newCtx()
		err := h.Provision(ctx)
		cancel()
		_ = h.Cleanup()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
