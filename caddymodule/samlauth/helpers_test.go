package samlauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// The parties of the tests: this SP under testBase, the IdP it trusts, and
// strangers.
const (
	testBase       = "https://consoleme.example.com"
	testSPEntity   = testBase + "/saml/metadata"
	testACS        = testBase + "/saml/acs"
	testSLO        = testBase + "/saml/slo"
	testIdPEntity  = "https://idp.example.com/metadata"
	testIdPSSO     = "https://idp.example.com/sso"
	testIdPLogout  = "https://idp.example.com/slo"
	otherSPEntity  = "https://other-sp.example.com/saml/metadata"
	otherSPACS     = "https://other-sp.example.com/saml/acs"
	otherIdPEntity = "https://evil-idp.example.com/metadata"
)

// keyPair writes a fresh RSA key (PKCS#8) and a self-signed certificate.
func keyPair(t testing.TB, dir, name string) (certPath, keyPath string, key *rsa.PrivateKey, cert *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath = writeFile(t, dir, name+".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPath = writeFile(t, dir, name+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}))
	return certPath, keyPath, key, cert
}

// writeFile writes data to dir/name and returns the path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// idpDescriptor is the metadata of the test IdP signing with certs[0] (and
// announcing the others too, as during a rotation); logout adds its
// HTTP-Redirect single-logout endpoint.
func idpDescriptor(logout bool, certs ...*x509.Certificate) *saml.EntityDescriptor {
	md, _ := url.Parse(testIdPEntity)
	sso, _ := url.Parse(testIdPSSO)
	idp := saml.IdentityProvider{Certificate: certs[0], MetadataURL: *md, SSOURL: *sso}
	if logout {
		slo, _ := url.Parse(testIdPLogout)
		idp.LogoutURL = *slo
	}
	ed := idp.Metadata()
	for _, c := range certs[1:] {
		kd := ed.IDPSSODescriptors[0].KeyDescriptors[0]
		kd.KeyInfo.X509Data.X509Certificates = []saml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(c.Raw)}}
		ed.IDPSSODescriptors[0].KeyDescriptors = append(ed.IDPSSODescriptors[0].KeyDescriptors, kd)
	}
	return ed
}

// marshalMetadata serializes IdP metadata.
func marshalMetadata(t testing.TB, ed *saml.EntityDescriptor) []byte {
	t.Helper()
	b, err := xml.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// idpMetadata is the serialized metadata of the test IdP signing with
// certs[0].
func idpMetadata(t testing.TB, certs ...*x509.Certificate) []byte {
	t.Helper()
	return marshalMetadata(t, idpDescriptor(false, certs...))
}

// testSigner is the signing key of an IdP: the trusted one, or an impostor
// whose key is in no metadata the SP has.
type testSigner struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

func newTestSigner(t testing.TB, dir, name string) *testSigner {
	t.Helper()
	_, _, key, cert := keyPair(t, dir, name)
	return &testSigner{key: key, cert: cert}
}

// sign returns a copy of el with an enveloped RSA-SHA256 signature (carrying
// the signer's certificate in KeyInfo) right after the Issuer, as IdPs do.
func (s *testSigner) sign(t testing.TB, el *etree.Element) *etree.Element {
	t.Helper()
	ctx, err := dsig.NewSigningContext(s.key, [][]byte{s.cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		t.Fatal(err)
	}
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		t.Fatal(err)
	}
	// SignEnveloped appends the signature without making it a proper child;
	// take it off and put a detached copy where it belongs.
	last := len(signed.Child) - 1
	sig := signed.Child[last].(*etree.Element).Copy()
	signed.Child = signed.Child[:last]
	if iss := signed.SelectElement("Issuer"); iss != nil {
		signed.InsertChildAt(iss.Index()+1, sig)
	} else {
		signed.InsertChildAt(0, sig)
	}
	return signed
}

// metadataFile writes the IdP metadata naming s as the signing key.
func (s *testSigner) metadataFile(t testing.TB, dir string) string {
	t.Helper()
	return writeFile(t, dir, "idp-metadata.xml", idpMetadata(t, s.cert))
}

// spConfig is a Config with a fresh SP key pair and the IdP metadata file
// mdFile.
func spConfig(t testing.TB, mdFile string) Config {
	t.Helper()
	certPath, keyPath, _, _ := keyPair(t, t.TempDir(), "sp")
	return Config{IDPMetadataFile: mdFile, SPCert: certPath, SPKey: keyPath,
		EmailAttribute: "email", GroupsAttribute: "groups"}
}

// mustNew is New that fails the test on error.
func mustNew(t testing.TB, cfg Config) *Provider {
	t.Helper()
	p, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// memGuard is a ReplayGuard in memory, like the store's MarkOnce.
type memGuard struct {
	mu    sync.Mutex
	until map[string]time.Time
	calls []string
}

func newMemGuard() *memGuard { return &memGuard{until: map[string]time.Time{}} }

func (g *memGuard) MarkOnce(_ context.Context, key string, expires, now time.Time) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, key)
	if exp, ok := g.until[key]; ok && now.Before(exp) {
		return false, nil
	}
	g.until[key] = expires
	return true, nil
}

// failingGuard is a ReplayGuard whose store is down.
type failingGuard struct{ err error }

func (g failingGuard) MarkOnce(context.Context, string, time.Time, time.Time) (bool, error) {
	return false, g.err
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
