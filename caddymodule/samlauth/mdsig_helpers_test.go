package samlauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// signOpts change how signMetadata signs.
type signOpts struct {
	method    string      // signature method; default RSA-SHA256
	hash      crypto.Hash // digest; default SHA-256
	inclusive bool        // Canonical XML 1.0 instead of Exclusive C14N
	last      bool        // leave the Signature last instead of first
}

// signMetadata signs the root of doc with key (and cert in KeyInfo) as a
// federation does, with goxmldsig: an enveloped signature by ID, the
// Signature moved to be the root's first child as the metadata schema
// wants. A root without an ID gets one.
func signMetadata(t testing.TB, doc []byte, key crypto.Signer, cert *x509.Certificate, o signOpts) []byte {
	t.Helper()
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		t.Fatal(err)
	}
	root := d.Root()
	if root.SelectAttr("ID") == nil {
		root.CreateAttr("ID", "_fed"+samltest.NewID())
	}
	signer := key
	if k, ok := key.(*ecdsa.PrivateKey); ok {
		signer = rawECDSA{k}
	}
	ctx, err := dsig.NewSigningContext(signer, [][]byte{cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if o.inclusive {
		ctx.Canonicalizer = dsig.MakeC14N10RecCanonicalizer()
	}
	method := o.method
	if method == "" {
		method = dsig.RSASHA256SignatureMethod
	}
	if err := ctx.SetSignatureMethod(method); err != nil {
		t.Fatal(err)
	}
	if o.hash != 0 {
		ctx.Hash = o.hash // after SetSignatureMethod, which sets it too
	}
	signed, err := ctx.SignEnveloped(root)
	if err != nil {
		t.Fatal(err)
	}
	if !o.last {
		sig := signed.Child[len(signed.Child)-1]
		signed.Child = signed.Child[:len(signed.Child)-1]
		signed.InsertChildAt(0, sig)
	}
	d.SetRoot(signed)
	b, err := d.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newECDSAPair is a P-256 key and a self-signed certificate for it.
func newECDSAPair(t testing.TB) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "fed-ec"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

// pemCert is cert as PEM text.
func pemCert(cert *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
}

// xmlseclibs is the PHP XML signature library SimpleSAMLphp signs its
// metadata with (robrichards/xmlseclibs over libxml2): an independent
// implementation to check against.
const xmlseclibs = "/usr/share/simplesamlphp/vendor/autoload.php"

// needXMLSecLibs skips the test without php and SimpleSAMLphp's
// xmlseclibs, unless CI is "true", where that is a failure.
func needXMLSecLibs(t *testing.T) string {
	t.Helper()
	php, err := exec.LookPath("php")
	if err == nil {
		_, err = os.Stat(xmlseclibs)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("php with SimpleSAMLphp's xmlseclibs is needed: %v", err)
		}
		t.Skipf("skipping: php with SimpleSAMLphp's xmlseclibs is needed (apt-get install php-cli php-xml simplesamlphp): %v", err)
	}
	return php
}

// phpScript runs a PHP script with args and returns its output.
func phpScript(t *testing.T, php, script string, args ...string) []byte {
	t.Helper()
	f := filepath.Join(t.TempDir(), "script.php")
	if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(php, append([]string{f}, args...)...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("php: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("php: %v", err)
	}
	return out
}

// phpSign is SimpleSAMLphp's way of signing metadata (SAML2\Utils::
// insertSignature): xmlseclibs, an enveloped signature by ID with
// Exclusive C14N (or, with "inclusive", Canonical XML 1.0), RSA-SHA256,
// inserted as the root's first child.
const phpSign = `<?php
require '` + xmlseclibs + `';
use RobRichards\XMLSecLibs\XMLSecurityDSig;
use RobRichards\XMLSecLibs\XMLSecurityKey;
[, $docFile, $keyFile, $certFile, $c14n] = $argv;
$c14n = $c14n === 'inclusive' ? XMLSecurityDSig::C14N : XMLSecurityDSig::EXC_C14N;
$doc = new DOMDocument();
$doc->load($docFile);
$root = $doc->documentElement;
$dsig = new XMLSecurityDSig();
$dsig->setCanonicalMethod($c14n);
$dsig->addReference($root, XMLSecurityDSig::SHA256,
	['http://www.w3.org/2000/09/xmldsig#enveloped-signature', $c14n], ['id_name' => 'ID', 'overwrite' => false]);
$key = new XMLSecurityKey(XMLSecurityKey::RSA_SHA256, ['type' => 'private']);
$key->loadKey($keyFile, true);
$dsig->sign($key);
$dsig->add509Cert(file_get_contents($certFile), true);
$dsig->insertSignature($root, $root->firstChild);
echo $doc->saveXML();
`

// phpC14N prints libxml2's canonical form of a document's root element
// (exclusive or inclusive, without comments).
const phpC14N = `<?php
$doc = new DOMDocument();
$doc->load($argv[1]);
echo $doc->documentElement->C14N($argv[2] === 'exclusive', false);
`
