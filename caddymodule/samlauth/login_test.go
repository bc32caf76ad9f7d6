package samlauth

import (
	"encoding/base64"
	"encoding/xml"
	"net/url"
	"strings"
	"testing"

	"github.com/crewjam/saml"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// providerWith makes a Provider trusting the IdP metadata ed, after edit
// changed its Config.
func providerWith(t testing.TB, ed *saml.EntityDescriptor, edit func(*Config)) *Provider {
	t.Helper()
	dir := t.TempDir()
	cfg := spConfig(t, samltest.WriteFile(t, dir, "idp.xml", samltest.MarshalMetadata(t, ed)))
	if edit != nil {
		edit(&cfg)
	}
	return mustNew(t, cfg)
}

// TestAuthnRequestRedirect: with an HTTP-Redirect SSO endpoint the login
// goes there by a redirect whose AuthnRequest asks for an HTTP-POST answer
// at <base>/saml/acs and carries the relay state.
func TestAuthnRequestRedirect(t *testing.T) {
	idp := samltest.NewIdP(t, t.TempDir(), "idp")
	p := providerWith(t, samltest.Descriptor(idp.Cert), func(c *Config) { c.NameIDFormat = "email" })
	r, err := p.AuthnRequest(samltest.SPBaseURL, "relay-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Binding != saml.HTTPRedirectBinding || r.Form != nil || r.IDPEntityID != samltest.IdPEntityID {
		t.Errorf("redirect %+v", r)
	}
	loc, err := url.Parse(r.URL)
	if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != samltest.IdPSSOURL || loc.Query().Get("RelayState") != "relay-1" {
		t.Fatalf("URL %q", r.URL)
	}
	req := decodeRedirectRequest(t, r.URL)
	if req.ID != r.RequestID || !strings.HasPrefix(req.ID, "id-") {
		t.Errorf("request ID %q, Redirect.RequestID %q", req.ID, r.RequestID)
	}
	if req.AssertionConsumerServiceURL != samltest.ACSURL || req.ProtocolBinding != saml.HTTPPostBinding || req.Destination != samltest.IdPSSOURL {
		t.Errorf("ACS %q, binding %q, destination %q", req.AssertionConsumerServiceURL, req.ProtocolBinding, req.Destination)
	}
	if req.Issuer == nil || req.Issuer.Value != samltest.SPEntityID {
		t.Errorf("issuer %+v, want the default entity ID", req.Issuer)
	}
	if req.NameIDPolicy == nil || req.NameIDPolicy.Format == nil || *req.NameIDPolicy.Format != string(saml.EmailAddressNameIDFormat) {
		t.Errorf("NameIDPolicy %+v", req.NameIDPolicy)
	}
	// Each login has its own request ID.
	if r2, err := p.AuthnRequest(samltest.SPBaseURL, "relay-2"); err != nil || r2.RequestID == r.RequestID {
		t.Errorf("second request %+v, %v", r2, err)
	}
}

// TestAuthnRequestPost: an IdP with only an HTTP-POST SSO endpoint gets the
// AuthnRequest by a form with SAMLRequest and RelayState.
func TestAuthnRequestPost(t *testing.T) {
	idp := samltest.NewIdP(t, t.TempDir(), "idp")
	ed := samltest.Descriptor(idp.Cert)
	sso := ed.IDPSSODescriptors[0].SingleSignOnServices
	ed.IDPSSODescriptors[0].SingleSignOnServices = nil
	for _, s := range sso {
		if s.Binding == saml.HTTPPostBinding {
			ed.IDPSSODescriptors[0].SingleSignOnServices = append(ed.IDPSSODescriptors[0].SingleSignOnServices, s)
		}
	}
	p := providerWith(t, ed, func(c *Config) { c.EntityID = "urn:consoleme" })
	r, err := p.AuthnRequest(samltest.SPBaseURL+"/prefix", "relay-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Binding != saml.HTTPPostBinding || r.URL != samltest.IdPSSOURL || r.Form["RelayState"] != "relay-1" || len(r.Form) != 2 {
		t.Fatalf("post %+v", r)
	}
	raw, err := base64.StdEncoding.DecodeString(r.Form["SAMLRequest"])
	if err != nil {
		t.Fatal(err)
	}
	var req saml.AuthnRequest
	if err := xml.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	if req.ID != r.RequestID || req.AssertionConsumerServiceURL != samltest.SPBaseURL+"/prefix/saml/acs" || req.Issuer.Value != "urn:consoleme" {
		t.Errorf("request %+v", req)
	}
}

// TestMetadata: the SP metadata names the entity ID, lists only the
// HTTP-POST ACS, both SLO bindings, and the SP certificate.
func TestMetadata(t *testing.T) {
	idp := samltest.NewIdP(t, t.TempDir(), "idp")
	p := providerWith(t, samltest.Descriptor(idp.Cert), nil)
	b, err := p.Metadata(samltest.SPBaseURL)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(string(b), "<?xml") {
		t.Error("the metadata carries an XML declaration")
	}
	var md saml.EntityDescriptor
	if err := xml.Unmarshal(b, &md); err != nil {
		t.Fatal(err)
	}
	if md.EntityID != samltest.SPEntityID || len(md.SPSSODescriptors) != 1 {
		t.Fatalf("metadata %s", b)
	}
	d := md.SPSSODescriptors[0]
	if acs := d.AssertionConsumerServices; len(acs) != 1 || acs[0].Binding != saml.HTTPPostBinding || acs[0].Location != samltest.ACSURL {
		t.Errorf("ACS endpoints %+v, want only HTTP-POST at %s", acs, samltest.ACSURL)
	}
	var slo []string
	for _, s := range d.SingleLogoutServices {
		if s.Location != testSLO {
			t.Errorf("SLO at %q", s.Location)
		}
		slo = append(slo, s.Binding)
	}
	if strings.Join(slo, " ") != saml.HTTPRedirectBinding+" "+saml.HTTPPostBinding {
		t.Errorf("SLO bindings %q", slo)
	}
	want := base64.StdEncoding.EncodeToString(p.cert.Raw)
	found := false
	for _, kd := range d.KeyDescriptors {
		for _, c := range kd.KeyInfo.X509Data.X509Certificates {
			found = found || strings.TrimSpace(c.Data) == want
		}
	}
	if !found {
		t.Error("the SP certificate is not in the metadata")
	}

	q := providerWith(t, samltest.Descriptor(idp.Cert), func(c *Config) { c.EntityID = "urn:consoleme" })
	if b, err := q.Metadata(samltest.SPBaseURL); err != nil || !strings.Contains(string(b), `entityID="urn:consoleme"`) {
		t.Errorf("configured entity ID: %v\n%s", err, b)
	}
	if _, err := p.Metadata("http://[::1"); err == nil {
		t.Error("an unparsable base URL gave metadata")
	}
}
