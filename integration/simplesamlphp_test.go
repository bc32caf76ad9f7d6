package integration

import (
	"os"
	"testing"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// SimpleSAMLphp is the test bed's (testbed.StartSimpleSAMLphp); this file
// binds it to a test: a missing install skips (fails under CI=true), the
// server stops when the test ends, and its log is shown if the test failed.

// SAML names the SimpleSAMLphp configuration uses.
const (
	bindingHTTPPost   = testbed.BindingHTTPPost
	nameIDFormatEmail = testbed.NameIDFormatEmail
)

type (
	// sspConfig describes the SimpleSAMLphp IdP a test wants: Users,
	// RotationCert and Hosted options. Dir and the key pairs are left
	// empty; startSimpleSAMLphp fills them.
	sspConfig = testbed.SimpleSAMLphpOptions
	// sspSP is one saml20-sp-remote entry: a service provider the IdP
	// trusts.
	sspSP = testbed.SimpleSAMLphpSP
)

// requireSimpleSAMLphp checks for PHP and SimpleSAMLphp and returns the php
// binary.
func requireSimpleSAMLphp(t testing.TB) string {
	t.Helper()
	php, err := testbed.FindSimpleSAMLphp()
	if err != nil {
		skipOrFail(t, err.Error())
	}
	return php
}

// simpleSAMLphp is a running SimpleSAMLphp IdP on http://localhost:<port>,
// with its key pairs as this package's keyPair.
type simpleSAMLphp struct {
	*testbed.SimpleSAMLphp
	// SigningCert signs responses and assertions; NextCert is only
	// published (RotationCert).
	SigningCert keyPair
	NextCert    *keyPair
}

// startSimpleSAMLphp starts the IdP cfg describes (see
// testbed.StartSimpleSAMLphp), signing with a key pair shared by the test
// run. It trusts no service provider until trustSPs is called. The server
// is stopped when the test ends; its log (PHP's and SimpleSAMLphp's, at
// debug level) is shown if the test failed.
func startSimpleSAMLphp(t testing.TB, cfg sspConfig) *simpleSAMLphp {
	t.Helper()
	requireSimpleSAMLphp(t)
	signing := sharedKeyPair(t, "simplesamlphp-idp")
	cfg.Dir, cfg.SigningCert = t.TempDir(), &signing.KeyPair
	if cfg.RotationCert {
		next := sharedKeyPair(t, "simplesamlphp-idp-next")
		cfg.NextCert = &next.KeyPair
	}
	p, err := testbed.StartSimpleSAMLphp(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("SimpleSAMLphp (%s) log:\n%s", p.URL, p.Log())
		}
	})
	ssp := &simpleSAMLphp{SimpleSAMLphp: p, SigningCert: keyPair{p.SigningCert}}
	if p.NextCert != nil {
		ssp.NextCert = &keyPair{*p.NextCert}
	}
	return ssp
}

// Metadata fetches the IdP's metadata XML.
func (p *simpleSAMLphp) Metadata(t testing.TB) []byte {
	t.Helper()
	md, err := p.SimpleSAMLphp.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// trustSPs replaces the IdP's saml20-sp-remote entries; SimpleSAMLphp
// reads them on every request, so this works while it runs.
func (p *simpleSAMLphp) trustSPs(t testing.TB, sps ...sspSP) {
	t.Helper()
	if err := p.TrustSPs(sps...); err != nil {
		t.Fatal(err)
	}
}

// spFromMetadata converts SP metadata XML (what the module serves at
// /saml/metadata) into a saml20-sp-remote entry, as an IdP administrator
// does when registering the service provider.
func spFromMetadata(t testing.TB, data []byte) sspSP {
	t.Helper()
	sp, err := testbed.SPFromMetadata(data)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// writeFile writes data to path (mode 0600).
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// certBase64 is a certificate as SAML metadata carries it.
func certBase64(kp keyPair) string { return testbed.CertBase64(kp.KeyPair) }
