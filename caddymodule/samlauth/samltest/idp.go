package samltest

import (
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
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// KeyPair is an RSA key and its self-signed certificate, in memory and as
// PEM files.
type KeyPair struct {
	CertFile string // the certificate, PEM "CERTIFICATE"
	KeyFile  string // the key, PEM "PRIVATE KEY" (PKCS#8)
	Key      *rsa.PrivateKey
	Cert     *x509.Certificate
}

// NewKeyPair makes a fresh 2048-bit RSA key and a certificate for it,
// self-signed, with the common name name and valid from an hour ago for a
// day. It writes them to dir/name.crt and dir/name.key.
func NewKeyPair(t testing.TB, dir, name string) *KeyPair {
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
	kp := &KeyPair{Key: key}
	if kp.Cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	kp.CertFile = WriteFile(t, dir, name+".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	kp.KeyFile = WriteFile(t, dir, name+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}))
	return kp
}

// WriteFile writes data to dir/name, readable by the owner only, and
// returns the path.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// IdP is an identity provider at [IdPEntityID] that signs with its own
// key. Whether the SP trusts it depends only on whether its certificate is
// in the SP's IdP metadata: the IdP whose [IdP.MetadataFile] the SP reads
// is trusted, any other IdP is an impostor using the same name.
type IdP struct {
	KeyPair
}

// NewIdP makes an IdP with a fresh key pair, written to dir as name.crt
// and name.key.
func NewIdP(t testing.TB, dir, name string) *IdP {
	t.Helper()
	return &IdP{KeyPair: *NewKeyPair(t, dir, name)}
}

// Sign returns a copy of el with an enveloped RSA-SHA256 signature, made
// with exclusive canonicalization and carrying the IdP's certificate in
// KeyInfo, placed right after the Issuer as IdPs place it (first when el
// has no Issuer). The signature's elements have the prefix "ds".
func (p *IdP) Sign(t testing.TB, el *etree.Element) *etree.Element {
	t.Helper()
	return p.SignPrefixed(t, el, dsig.DefaultPrefix)
}

// SignPrefixed is [IdP.Sign] with prefix as the prefix of the signature's
// elements; "" puts them in the default namespace.
func (p *IdP) SignPrefixed(t testing.TB, el *etree.Element, prefix string) *etree.Element {
	t.Helper()
	ctx, err := dsig.NewSigningContext(p.Key, [][]byte{p.Cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Prefix = prefix
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

// MetadataFile writes the IdP's metadata, as [Metadata] makes it for its
// certificate, to dir/idp-metadata.xml and returns the path.
func (p *IdP) MetadataFile(t testing.TB, dir string) string {
	t.Helper()
	return WriteFile(t, dir, "idp-metadata.xml", Metadata(t, p.Cert))
}

// Descriptor is the metadata of the IdP at [IdPEntityID], with its
// single sign-on service at [IdPSSOURL], signing with certs[0]. Further
// certificates are announced as signing keys too, as during a key
// rotation. It panics without a certificate.
func Descriptor(certs ...*x509.Certificate) *saml.EntityDescriptor {
	return descriptor(saml.IdentityProvider{}, certs)
}

// LogoutDescriptor is [Descriptor] with an HTTP-Redirect single logout
// service at [IdPSLOURL].
func LogoutDescriptor(certs ...*x509.Certificate) *saml.EntityDescriptor {
	slo, _ := url.Parse(IdPSLOURL)
	return descriptor(saml.IdentityProvider{LogoutURL: *slo}, certs)
}

// descriptor fills in idp's names and first certificate and adds the
// other certificates to its metadata.
func descriptor(idp saml.IdentityProvider, certs []*x509.Certificate) *saml.EntityDescriptor {
	md, _ := url.Parse(IdPEntityID)
	sso, _ := url.Parse(IdPSSOURL)
	idp.Certificate, idp.MetadataURL, idp.SSOURL = certs[0], *md, *sso
	ed := idp.Metadata()
	for _, c := range certs[1:] {
		kd := ed.IDPSSODescriptors[0].KeyDescriptors[0]
		kd.KeyInfo.X509Data.X509Certificates = []saml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(c.Raw)}}
		ed.IDPSSODescriptors[0].KeyDescriptors = append(ed.IDPSSODescriptors[0].KeyDescriptors, kd)
	}
	return ed
}

// Metadata is [Descriptor] of certs, serialized.
func Metadata(t testing.TB, certs ...*x509.Certificate) []byte {
	t.Helper()
	return MarshalMetadata(t, Descriptor(certs...))
}

// MarshalMetadata serializes ed as XML.
func MarshalMetadata(t testing.TB, ed *saml.EntityDescriptor) []byte {
	t.Helper()
	b, err := xml.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
