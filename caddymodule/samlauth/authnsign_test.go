package samlauth

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// idpWanting is the test IdP's metadata with WantAuthnRequestsSigned set
// to want, and only the binding given among its SSO endpoints.
func idpWanting(t testing.TB, want *bool, binding string) *saml.EntityDescriptor {
	t.Helper()
	idp := samltest.NewIdP(t, t.TempDir(), "idp")
	ed := samltest.Descriptor(idp.Cert)
	d := &ed.IDPSSODescriptors[0]
	d.WantAuthnRequestsSigned = want
	var sso []saml.Endpoint
	for _, s := range d.SingleSignOnServices {
		if s.Binding == binding {
			sso = append(sso, s)
		}
	}
	d.SingleSignOnServices = sso
	return ed
}

// checkQuerySignature verifies the HTTP-Redirect signature of location (an
// AuthnRequest or LogoutRequest) with the SP certificate, over the query as
// sent, and returns whether it is signed at all.
func checkQuerySignature(t testing.TB, p *Provider, location string) bool {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	signedPart, sigPart, found := strings.Cut(u.RawQuery, "&Signature=")
	if !found {
		if strings.Contains(u.RawQuery, "SigAlg=") {
			t.Errorf("SigAlg without Signature: %s", u.RawQuery)
		}
		return false
	}
	if u.Query().Get("SigAlg") != dsig.RSASHA256SignatureMethod {
		t.Errorf("SigAlg %q", u.Query().Get("SigAlg"))
	}
	if !strings.HasPrefix(signedPart, "SAMLRequest=") || !strings.HasSuffix(signedPart, "&SigAlg="+url.QueryEscape(dsig.RSASHA256SignatureMethod)) {
		t.Errorf("signed part %q is not SAMLRequest=…&RelayState=…&SigAlg=…", signedPart)
	}
	sigB64, _ := url.QueryUnescape(sigPart)
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(signedPart))
	if err := rsa.VerifyPKCS1v15(p.cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
		t.Errorf("query signature does not verify with the SP certificate: %v", err)
	}
	var req struct {
		Signature *struct{} `xml:"http://www.w3.org/2000/09/xmldsig# Signature"`
	}
	samltest.DecodeRedirect(t, location, "SAMLRequest", &req)
	if req.Signature != nil {
		t.Error("the deflated request of the Redirect binding carries an XML signature")
	}
	return true
}

// checkPostSignature verifies the XML signature of a posted AuthnRequest
// or LogoutRequest with the SP certificate and returns whether it is
// signed at all.
func checkPostSignature(t testing.TB, p *Provider, samlRequest string) bool {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(samlRequest)
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	if doc.Root().SelectElement("Signature") == nil {
		return false
	}
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{p.cert}})
	vc.IdAttribute = "ID"
	if _, err := vc.Validate(doc.Root()); err != nil {
		t.Errorf("XML signature does not verify with the SP certificate: %v\n%s", err, raw)
	}
	var v any = new(saml.AuthnRequest)
	if doc.Root().Tag == "LogoutRequest" {
		v = new(saml.LogoutRequest)
	}
	if err := xml.Unmarshal(raw, v); err != nil {
		t.Errorf("signed request does not parse: %v", err)
	}
	return true
}

// TestSignedAuthnRequests: requests are signed exactly when the IdP wants
// it or the SP is told to, by the rules of each binding, and the SP
// metadata says so.
func TestSignedAuthnRequests(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		name   string
		want   *bool
		force  bool
		signed bool
	}{
		{"IdP wants signed requests", &yes, false, true},
		{"IdP says nothing", nil, false, false},
		{"IdP says no", &no, false, false},
		{"forced, IdP says nothing", nil, true, true},
		{"forced, IdP says no", &no, true, true},
	} {
		for _, binding := range []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding} {
			t.Run(tc.name+"/"+binding[strings.LastIndex(binding, ":")+1:], func(t *testing.T) {
				p := providerWith(t, idpWanting(t, tc.want, binding), func(c *Config) { c.SignAuthnRequests = tc.force })
				const relay = "relay+/=?&x"
				r, err := p.AuthnRequest(samltest.SPBaseURL, relay)
				if err != nil {
					t.Fatal(err)
				}
				var signed bool
				if binding == saml.HTTPRedirectBinding {
					signed = checkQuerySignature(t, p, r.URL)
					if u, _ := url.Parse(r.URL); u.Query().Get("RelayState") != relay {
						t.Errorf("RelayState %q", u.Query().Get("RelayState"))
					}
				} else {
					signed = checkPostSignature(t, p, r.Form["SAMLRequest"])
				}
				if signed != tc.signed {
					t.Errorf("signed %v, want %v", signed, tc.signed)
				}
				md := spMetadataOf(t, p)
				d := md.SPSSODescriptors[0]
				if d.AuthnRequestsSigned == nil || *d.AuthnRequestsSigned != tc.signed {
					t.Errorf("metadata AuthnRequestsSigned %v, want %v", d.AuthnRequestsSigned, tc.signed)
				}
				hasSigning := false
				for _, kd := range d.KeyDescriptors {
					hasSigning = hasSigning || kd.Use == "signing"
				}
				// Published whether or not requests are signed yet (see
				// TestSPMetadataIndependentOfIdPMetadata).
				if !hasSigning {
					t.Error("metadata signing key not published")
				}
			})
		}
	}
}

// spMetadataOf parses p's live SP metadata.
func spMetadataOf(t testing.TB, p *Provider) *saml.EntityDescriptor {
	t.Helper()
	b, err := p.Metadata(samltest.SPBaseURL)
	if err != nil {
		t.Fatal(err)
	}
	var md saml.EntityDescriptor
	if err := xml.Unmarshal(b, &md); err != nil {
		t.Fatal(err)
	}
	return &md
}

// TestSPMetadataValidity: the live metadata is valid for 48 hours, the
// file for an IdP administrator has no validUntil unless asked, and both
// advertise every encryption algorithm the SP decrypts.
func TestSPMetadataValidity(t *testing.T) {
	p := providerWith(t, idpWanting(t, nil, saml.HTTPRedirectBinding), nil)
	md := spMetadataOf(t, p)
	if d := time.Until(md.ValidUntil); d < 47*time.Hour || d > 49*time.Hour {
		t.Errorf("live metadata validUntil in %s, want 48h", d)
	}
	var algs []string
	for _, kd := range md.SPSSODescriptors[0].KeyDescriptors {
		for _, m := range kd.EncryptionMethods {
			algs = append(algs, m.Algorithm)
		}
	}
	// Exactly the data ciphers accepted (DefaultDataCiphers), then the
	// key transports.
	want := []string{algAES128CBC, algAES192CBC, algAES256CBC, algRSAOAEP, algRSAOAEPMGF1P}
	if !slices.Equal(algs, want) {
		t.Errorf("EncryptionMethods %q, want %q", algs, want)
	}

	cfg := p.cfg
	cfg.IDPMetadataFile = ""
	b, err := SPMetadata(cfg, samltest.SPBaseURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "validUntil") {
		t.Errorf("metadata for a file has validUntil:\n%s", b)
	}
	var f saml.EntityDescriptor
	if err := xml.Unmarshal(b, &f); err != nil || f.EntityID != samltest.SPEntityID || len(f.SPSSODescriptors) != 1 {
		t.Fatalf("metadata file %v:\n%s", err, b)
	}
	b, err = SPMetadata(cfg, samltest.SPBaseURL, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, &f); err != nil || time.Until(f.ValidUntil) < 364*24*time.Hour {
		t.Errorf("metadata valid for a year: validUntil %s, %v", f.ValidUntil, err)
	}
	cfg.SPKey = ""
	if _, err := SPMetadata(cfg, samltest.SPBaseURL, 0); err == nil || !strings.Contains(err.Error(), "sp_key") {
		t.Errorf("metadata without sp_key: %v", err)
	}
}
