package samlauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"math/big"

	dsig "github.com/russellhaering/goxmldsig"
)

// signatureMethod is how a signature algorithm hashes and signs.
type signatureMethod struct {
	hash  crypto.Hash
	ecdsa bool
}

// signatureMethods are the algorithms accepted where this package checks
// an IdP's signature itself (signed metadata, LogoutResponses signed in
// the query): RSA and ECDSA with SHA-256 or longer; SHA-1 is refused.
var signatureMethods = map[string]signatureMethod{
	dsig.RSASHA256SignatureMethod:   {crypto.SHA256, false},
	dsig.RSASHA384SignatureMethod:   {crypto.SHA384, false},
	dsig.RSASHA512SignatureMethod:   {crypto.SHA512, false},
	dsig.ECDSASHA256SignatureMethod: {crypto.SHA256, true},
	dsig.ECDSASHA384SignatureMethod: {crypto.SHA384, true},
	dsig.ECDSASHA512SignatureMethod: {crypto.SHA512, true},
}

// verifiedBy reports whether sig is m's signature of signed by the key of
// one of certs. An ECDSA signature is r and s, each the curve's size,
// concatenated, as XML Signature and the SAML bindings have it.
func (m signatureMethod) verifiedBy(signed, sig []byte, certs []*x509.Certificate) bool {
	h := m.hash.New()
	h.Write(signed)
	digest := h.Sum(nil)
	for _, c := range certs {
		switch k := c.PublicKey.(type) {
		case *rsa.PublicKey:
			if !m.ecdsa && rsa.VerifyPKCS1v15(k, m.hash, digest, sig) == nil {
				return true
			}
		case *ecdsa.PublicKey:
			size := (k.Curve.Params().BitSize + 7) / 8
			if m.ecdsa && len(sig) == 2*size &&
				ecdsa.Verify(k, digest, new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])) {
				return true
			}
		}
	}
	return false
}
