package samlauth

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/url"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// ecdsaKeyFiles writes a fresh P-256 SP key (PKCS#8) and certificate.
func ecdsaKeyFiles(t testing.TB) (certPath, keyPath string, pub *ecdsa.PublicKey) {
	t.Helper()
	key, cert := newECDSAPair(t)
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	certPath = samltest.WriteFile(t, dir, "ec.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	keyPath = samltest.WriteFile(t, dir, "ec.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}))
	return certPath, keyPath, &key.PublicKey
}

// ecdsaSP makes a Provider with a P-256 SP key that signs its requests,
// trusting an IdP with only the SSO binding given.
func ecdsaSP(t *testing.T, binding string) (*Provider, *ecdsa.PublicKey) {
	t.Helper()
	certPath, keyPath, pub := ecdsaKeyFiles(t)
	p := providerWith(t, idpWanting(t, nil, binding), func(c *Config) {
		c.SPCert, c.SPKey, c.SignAuthnRequests = certPath, keyPath, true
	})
	return p, pub
}

// TestEncryptedAssertionECDSAKey: an SP with an ECDSA key cannot take RSA
// key transport and says so.
func TestEncryptedAssertionECDSAKey(t *testing.T) {
	certPath, keyPath, _ := ecdsaKeyFiles(t)
	e := newAttackEnv(t, func(c *Config) { c.SPCert, c.SPKey = certPath, keyPath })
	rsaCert := samltest.NewKeyPair(t, t.TempDir(), "someone").Cert
	l := e.login(t)
	r := e.response(l)
	r.EncryptFor = rsaCert
	id, err := e.verify(t, l, r.XML(t))
	expectRefused(t, id, err, "not an RSA key")
}

// verifyRawECDSA checks an r||s P-256 signature of data.
func verifyRawECDSA(t testing.TB, pub *ecdsa.PublicKey, data, sig []byte) {
	t.Helper()
	if len(sig) != 64 {
		t.Fatalf("signature of %d bytes, want r||s of 64", len(sig))
	}
	d := sha256.Sum256(data)
	if !ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Error("the ECDSA signature does not verify")
	}
}

// TestSignedAuthnRequestsECDSA: an ECDSA SP key signs with ECDSA-SHA256,
// its signature values r||s as XML Signature requires (not ASN.1).
func TestSignedAuthnRequestsECDSA(t *testing.T) {
	t.Run("Redirect", func(t *testing.T) {
		p, pub := ecdsaSP(t, saml.HTTPRedirectBinding)
		r, err := p.AuthnRequest(samltest.SPBaseURL, "relay")
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(r.URL)
		signed, sigPart, _ := strings.Cut(u.RawQuery, "&Signature=")
		if u.Query().Get("SigAlg") != dsig.ECDSASHA256SignatureMethod {
			t.Errorf("SigAlg %q", u.Query().Get("SigAlg"))
		}
		sigB64, _ := url.QueryUnescape(sigPart)
		sig, _ := base64.StdEncoding.DecodeString(sigB64)
		verifyRawECDSA(t, pub, []byte(signed), sig)
	})
	t.Run("POST", func(t *testing.T) {
		p, pub := ecdsaSP(t, saml.HTTPPostBinding)
		r, err := p.AuthnRequest(samltest.SPBaseURL, "relay")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.StdEncoding.DecodeString(r.Form["SAMLRequest"])
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(raw); err != nil {
			t.Fatal(err)
		}
		sigEl := doc.Root().SelectElement("Signature")
		if sigEl == nil || sigEl.Index() != doc.Root().SelectElement("Issuer").Index()+1 {
			t.Fatalf("no Signature right after the Issuer:\n%s", raw)
		}
		si := sigEl.SelectElement("SignedInfo")
		ctx, err := etreeutils.NSBuildParentContext(si)
		if err == nil {
			ctx, err = ctx.SubContext(si)
		}
		det, err2 := etreeutils.NSDetatch(ctx, si)
		if err != nil || err2 != nil {
			t.Fatal(err, err2)
		}
		canon, err := dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("").Canonicalize(det)
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(sigEl.SelectElement("SignatureValue").Text()))
		verifyRawECDSA(t, pub, canon, sig)
	})
}
