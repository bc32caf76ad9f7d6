package samlauth

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// signatureChecker checks, for crewjam/saml, the signatures of the
// response as it was received. Verify hands the library a rewritten copy
// (decrypted, with normalized namespace prefixes) whose bytes are not the
// ones the IdP signed; the library asks the checker about each element it
// would verify (the Response, the Assertion), and the checker verifies the
// original element of the same kind and ID instead: the Response as
// received (covering the EncryptedAssertion as sent) and the Assertion as
// received or as decrypted. An element it does not know is refused.
//
// A decrypted assertion whose signature fails gives errDecrypt, the error
// of a failed decryption: a ciphertext altered into another well-formed
// assertion must not be told apart from one that did not decrypt.
type signatureChecker struct {
	originals map[string]*etree.Element
	decrypted map[*etree.Element]bool
}

// add registers the original of the element kind#ID.
func (c *signatureChecker) add(el *etree.Element) {
	c.originals[el.Tag+"#"+el.SelectAttrValue("ID", "")] = el
}

// VerifySignature implements saml.SignatureVerifier.
func (c *signatureChecker) VerifySignature(vc *dsig.ValidationContext, el *etree.Element) error {
	orig := c.originals[el.Tag+"#"+el.SelectAttrValue("ID", "")]
	if orig == nil {
		return fmt.Errorf("cannot validate signature on %s: not an element of the response as received", el.Tag)
	}
	err := validateSignature(vc, orig)
	if err != nil && c.decrypted[orig] {
		return errDecrypt
	}
	return err
}

// validateSignature verifies the enveloped signature of el (which stays
// in its document, untouched) the way crewjam/saml does: detached with its
// namespace context, and without a KeyInfo that carries no certificate, so
// that the metadata's keys decide.
func validateSignature(vc *dsig.ValidationContext, el *etree.Element) error {
	ctx, err := etreeutils.NSBuildParentContext(el)
	if err == nil {
		ctx, err = ctx.SubContext(el)
	}
	var det *etree.Element
	if err == nil {
		det, err = etreeutils.NSDetatch(ctx, el)
	}
	if err != nil {
		return fmt.Errorf("cannot validate signature on %s: %v", el.Tag, err)
	}
	if det.FindElement("./Signature/KeyInfo/X509Data/X509Certificate") == nil {
		if sig := det.FindElement("./Signature"); sig != nil {
			if ki := sig.FindElement("KeyInfo"); ki != nil {
				sig.RemoveChild(ki)
			}
		}
	}
	if _, err := vc.Validate(det); err != nil {
		return fmt.Errorf("cannot validate signature on %s: %v", el.Tag, err)
	}
	return nil
}

// idpValidationContext is the signature validation context the library
// would use: the IdP's signing certificates from its metadata (KeyDescriptor
// use "signing" or none), IDs in the ID attribute, the library's clock.
func idpValidationContext(md *saml.EntityDescriptor) (*dsig.ValidationContext, error) {
	certs, err := idpSigningCerts(md)
	if err != nil {
		return nil, err
	}
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: certs})
	vc.IdAttribute = "ID"
	if saml.Clock != nil {
		vc.Clock = saml.Clock
	}
	return vc, nil
}

// idpSigningCerts are the IdP's signing certificates from its metadata
// (KeyDescriptor use "signing" or none); an error when there are none.
func idpSigningCerts(md *saml.EntityDescriptor) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for _, d := range md.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(stripSpace(c.Data))
				if err != nil {
					return nil, fmt.Errorf("cannot validate signature: IdP metadata certificate: %v", err)
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					return nil, fmt.Errorf("cannot validate signature: IdP metadata certificate: %v", err)
				}
				certs = append(certs, cert)
			}
		}
	}
	if len(certs) == 0 {
		return nil, errors.New("cannot validate signature: no signing certificate in the IdP metadata")
	}
	return certs, nil
}
