package testbed

import (
	"encoding/xml"
	"net/url"
	"testing"

	"github.com/crewjam/saml"
)

// TestSPFromMetadata reads crewjam/saml's SP metadata as an IdP
// administrator would: the entity ID, the HTTP-POST ACS only, the logout
// endpoint and the certificate for signing and encryption.
func TestSPFromMetadata(t *testing.T) {
	kp, err := NewKeyPair("sp")
	if err != nil {
		t.Fatal(err)
	}
	acs, _ := url.Parse("https://sp.example/saml/acs")
	meta, _ := url.Parse("https://sp.example/saml/metadata")
	slo, _ := url.Parse("https://sp.example/saml/slo")
	sp := saml.ServiceProvider{Key: kp.Key, Certificate: kp.Cert, AcsURL: *acs, MetadataURL: *meta, SloURL: *slo,
		LogoutBindings:  []string{saml.HTTPRedirectBinding},
		SignatureMethod: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"}
	data, err := xml.Marshal(sp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	got, err := SPFromMetadata(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.EntityID != meta.String() {
		t.Errorf("EntityID = %q, want %q", got.EntityID, meta)
	}
	if len(got.ACS) != 1 || got.ACS[0] != acs.String() {
		t.Errorf("ACS = %q, want only %s (the HTTP-POST binding)", got.ACS, acs)
	}
	if len(got.SLO) == 0 || got.SLO[0][1] != slo.String() {
		t.Errorf("SLO = %q, want %s", got.SLO, slo)
	}
	if want := CertBase64(kp); got.SigningCert != want || got.EncryptionCert != want {
		t.Errorf("certificates = %.20s…, %.20s…, want the SP's %.20s… for both", got.SigningCert, got.EncryptionCert, want)
	}
	if _, err := SPFromMetadata([]byte(`<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>`)); err == nil {
		t.Error("metadata without an SPSSODescriptor was accepted")
	}
}
