package samlauth

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/ecdsa"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// Signed requests
//
// The SP signs its AuthnRequests with sp_key when the IdP's metadata says
// WantAuthnRequestsSigned="true" on its IDPSSODescriptor, or always with
// Config.SignAuthnRequests (for IdPs that require signed requests without
// saying so), and then signs its LogoutRequests the same way: an IdP that
// checks the one checks the other. The signature is RSA-SHA256 for an RSA
// key and ECDSA-SHA256 (r and s concatenated, as XML Signature requires)
// for an ECDSA key:
//
//   - HTTP-Redirect binding: the query signature of SAML Bindings section
//     3.4.4.1 (SigAlg and Signature parameters over
//     SAMLRequest=…&RelayState=…&SigAlg=… as sent); the deflated request
//     carries no XML signature.
//   - HTTP-POST binding: an enveloped XML signature (exclusive C14N) in the
//     request, after its Issuer.
//
// The SP metadata then says AuthnRequestsSigned="true"; it publishes the
// SP certificate for signing as well as for encryption whether or not
// requests are signed (see Provider.Metadata). sendRequest is
// the one place both kinds of request are signed and encoded.

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

// samlRequest is a request the SP sends the IdP: a saml.AuthnRequest or
// a saml.LogoutRequest, whose Element places its Signature after its
// Issuer.
type samlRequest interface {
	Element() *etree.Element
}

// sendRequest makes the Redirect carrying req to loc by binding
// (saml.HTTPRedirectBinding or saml.HTTPPostBinding) with relayState,
// signed when requests to the IdP of md are signed (signsRequests):
// setSignature receives the XML signature to place in req on the POST
// binding; the Redirect binding signs the query instead.
func (p *Provider) sendRequest(md *saml.EntityDescriptor, binding, loc, id string, req samlRequest,
	setSignature func(*etree.Element), relayState string) (*Redirect, error) {
	var signer *dsig.SigningContext
	if p.signsRequests(md) {
		var err error
		if signer, err = p.signingContext(); err != nil {
			return nil, fmt.Errorf("signing: %w", err)
		}
		if binding == saml.HTTPPostBinding {
			signed, err := signer.SignEnveloped(req.Element())
			if err != nil {
				return nil, fmt.Errorf("signing: %w", err)
			}
			sig, ok := signed.Child[len(signed.Child)-1].(*etree.Element)
			if !ok {
				return nil, errors.New("signing: no signature element")
			}
			setSignature(sig)
		}
	}
	r := &Redirect{RequestID: id, IDPEntityID: md.EntityID, Binding: binding}
	if binding == saml.HTTPRedirectBinding {
		u, err := redirectURL(loc, req, relayState, signer, p.signatureMethod())
		if err != nil {
			return nil, err
		}
		r.URL = u
		return r, nil
	}
	// etree, not encoding/xml: the library's XML marshaller garbles the
	// Signature element of a signed request.
	d := etree.NewDocument()
	d.SetRoot(req.Element())
	doc, err := d.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("encoding: %w", err)
	}
	r.URL = loc
	r.Form = map[string]string{
		"SAMLRequest": base64.StdEncoding.EncodeToString(doc),
		"RelayState":  relayState,
	}
	return r, nil
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
func redirectURL(loc string, req samlRequest, relayState string, ctx *dsig.SigningContext, method string) (string, error) {
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
			return "", fmt.Errorf("signing: %w", err)
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
