package testbed

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/crewjam/saml"
)

// The service providers a SimpleSAMLphp IdP trusts: its saml20-sp-remote
// metadata, written from SP metadata as an IdP administrator would.

// SimpleSAMLphpSP is one saml20-sp-remote entry: a service provider the
// IdP trusts.
type SimpleSAMLphpSP struct {
	EntityID string
	// ACS are the AssertionConsumerService endpoints, in order; the first
	// is the default.
	ACS []string
	// SLO are the SingleLogoutService endpoints as binding → location.
	SLO [][2]string
	// SigningCert and EncryptionCert are base64 DER certificates.
	SigningCert    string
	EncryptionCert string
	// Options are further saml20-sp-remote options, verbatim.
	Options map[string]any
}

// TrustSPs replaces the IdP's saml20-sp-remote entries. SimpleSAMLphp reads
// its metadata files on every request, so this works while it runs.
func (p *SimpleSAMLphp) TrustSPs(sps ...SimpleSAMLphpSP) error {
	var entries phpArray
	for _, sp := range sps {
		var acs []any
		for i, loc := range sp.ACS {
			acs = append(acs, phpArray{{"Binding", BindingHTTPPost}, {"Location", loc}, {"index", i}})
		}
		var keys []any
		if sp.SigningCert != "" {
			keys = append(keys, phpArray{{"type", "X509Certificate"}, {"signing", true}, {"encryption", false}, {"X509Certificate", sp.SigningCert}})
		}
		if sp.EncryptionCert != "" {
			keys = append(keys, phpArray{{"type", "X509Certificate"}, {"signing", false}, {"encryption", true}, {"X509Certificate", sp.EncryptionCert}})
		}
		entry := phpArray{{"AssertionConsumerService", acs}}
		if len(sp.SLO) > 0 {
			var slo []any
			for _, e := range sp.SLO {
				slo = append(slo, phpArray{{"Binding", e[0]}, {"Location", e[1]}})
			}
			entry = append(entry, phpKV{"SingleLogoutService", slo})
		}
		if len(keys) > 0 {
			entry = append(entry, phpKV{"keys", keys})
		}
		entry = append(entry, sortedKVs(sp.Options)...)
		entries = append(entries, phpKV{sp.EntityID, entry})
	}
	return writePHP(filepath.Join(p.metaDir, "saml20-sp-remote.php"), "metadata", entries, true)
}

// SPFromMetadata converts SP metadata XML (what the module serves at
// /saml/metadata) into a saml20-sp-remote entry, as an IdP administrator
// does when registering the service provider.
func SPFromMetadata(data []byte) (SimpleSAMLphpSP, error) {
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal(data, &ed); err != nil {
		return SimpleSAMLphpSP{}, fmt.Errorf("parsing SP metadata: %w\n%s", err, data)
	}
	if len(ed.SPSSODescriptors) != 1 {
		return SimpleSAMLphpSP{}, fmt.Errorf("SP metadata has %d SPSSODescriptors, want 1:\n%s", len(ed.SPSSODescriptors), data)
	}
	d := ed.SPSSODescriptors[0]
	sp := SimpleSAMLphpSP{EntityID: ed.EntityID}
	for _, acs := range d.AssertionConsumerServices {
		if acs.Binding == BindingHTTPPost {
			sp.ACS = append(sp.ACS, acs.Location)
		}
	}
	if len(sp.ACS) == 0 {
		return SimpleSAMLphpSP{}, fmt.Errorf("SP metadata has no HTTP-POST AssertionConsumerService:\n%s", data)
	}
	for _, slo := range d.SingleLogoutServices {
		sp.SLO = append(sp.SLO, [2]string{slo.Binding, slo.Location})
	}
	for _, kd := range d.KeyDescriptors {
		if len(kd.KeyInfo.X509Data.X509Certificates) == 0 {
			continue
		}
		cert := strings.Join(strings.Fields(kd.KeyInfo.X509Data.X509Certificates[0].Data), "")
		switch kd.Use {
		case "signing":
			sp.SigningCert = cert
		case "encryption":
			sp.EncryptionCert = cert
		case "":
			sp.SigningCert, sp.EncryptionCert = cert, cert
		}
	}
	return sp, nil
}

// CertBase64 is a key pair's certificate as SAML metadata carries it.
func CertBase64(kp KeyPair) string { return base64.StdEncoding.EncodeToString(kp.Cert.Raw) }
