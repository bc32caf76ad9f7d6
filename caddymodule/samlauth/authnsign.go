package samlauth

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/ecdsa"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"net/url"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// Signed AuthnRequests
//
// The SP signs its AuthnRequests with sp_key when the IdP's metadata says
// WantAuthnRequestsSigned="true" on its IDPSSODescriptor, or always with
// Config.SignAuthnRequests (for IdPs that require signed requests without
// saying so). The signature is RSA-SHA256 for an RSA key and ECDSA-SHA256
// (r and s concatenated, as XML Signature requires) for an ECDSA key:
//
//   - HTTP-Redirect binding: the query signature of SAML Bindings section
//     3.4.4.1 (SigAlg and Signature parameters over
//     SAMLRequest=…&RelayState=…&SigAlg=… as sent); the deflated request
//     carries no XML signature.
//   - HTTP-POST binding: an enveloped XML signature (exclusive C14N) in the
//     AuthnRequest, after its Issuer.
//
// The SP metadata then says AuthnRequestsSigned="true" and publishes the
// SP certificate for signing as well as for encryption. Logout requests
// stay unsigned.

// signsRequests reports whether AuthnRequests to the IdP of md are signed.
func (p *Provider) signsRequests(md *saml.EntityDescriptor) bool {
	if p.cfg.SignAuthnRequests {
		return true
	}
	if md == nil {
		return false
	}
	for _, d := range md.IDPSSODescriptors {
		if d.WantAuthnRequestsSigned != nil && *d.WantAuthnRequestsSigned {
			return true
		}
	}
	return false
}

// signatureMethod is the signature algorithm for the SP key.
func (p *Provider) signatureMethod() string {
	if _, ok := p.key.(*ecdsa.PrivateKey); ok {
		return dsig.ECDSASHA256SignatureMethod
	}
	return dsig.RSASHA256SignatureMethod
}

// signingContext signs with the SP key by signatureMethod, canonicalizing
// with exclusive C14N and carrying the SP certificate in KeyInfo.
func (p *Provider) signingContext() (*dsig.SigningContext, error) {
	signer := p.key
	if k, ok := p.key.(*ecdsa.PrivateKey); ok {
		signer = rawECDSA{k}
	}
	ctx, err := dsig.NewSigningContext(signer, [][]byte{p.cert.Raw})
	if err != nil {
		return nil, err
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(p.signatureMethod()); err != nil {
		return nil, err
	}
	return ctx, nil
}

// signPost puts an enveloped XML signature into req (after its Issuer,
// where the library's Element places req.Signature).
func signPost(ctx *dsig.SigningContext, req *saml.AuthnRequest) error {
	signed, err := ctx.SignEnveloped(req.Element())
	if err != nil {
		return err
	}
	sig, ok := signed.Child[len(signed.Child)-1].(*etree.Element)
	if !ok {
		return fmt.Errorf("no signature element")
	}
	req.Signature = sig
	return nil
}

// rawECDSA signs with an ECDSA key in the form XML Signature and the SAML
// Redirect binding require (XML Signature 1.1, section 6.4.3): r and s as
// big-endian integers of the curve's size, concatenated, not ASN.1.
type rawECDSA struct{ k *ecdsa.PrivateKey }

func (r rawECDSA) Public() crypto.PublicKey { return &r.k.PublicKey }

func (r rawECDSA) Sign(rnd io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	der, err := ecdsa.SignASN1(rnd, r.k, digest)
	if err != nil {
		return nil, err
	}
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil, err
	}
	size := (r.k.Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	sig.R.FillBytes(out[:size])
	sig.S.FillBytes(out[size:])
	return out, nil
}

// redirectURL is the HTTP-Redirect binding URL carrying req to loc (any
// query loc has is kept, before the SAML parameters), signed by ctx unless
// it is nil.
func redirectURL(loc string, req *saml.AuthnRequest, relayState string, ctx *dsig.SigningContext, method string) (string, error) {
	var deflated bytes.Buffer
	fw, err := flate.NewWriter(&deflated, flate.BestCompression)
	if err != nil {
		return "", err
	}
	doc := etree.NewDocument()
	doc.SetRoot(req.Element())
	if _, err := doc.WriteTo(fw); err != nil {
		return "", err
	}
	if err := fw.Close(); err != nil {
		return "", err
	}
	q := "SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(deflated.Bytes()))
	if relayState != "" {
		q += "&RelayState=" + url.QueryEscape(relayState)
	}
	if ctx != nil {
		q += "&SigAlg=" + url.QueryEscape(method)
		sig, err := ctx.SignString(q)
		if err != nil {
			return "", fmt.Errorf("signing the AuthnRequest: %w", err)
		}
		q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" {
		u.RawQuery += "&" + q
	} else {
		u.RawQuery = q
	}
	return u.String(), nil
}
