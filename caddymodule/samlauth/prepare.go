package samlauth

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	xrv "github.com/mattermost/xml-roundtrip-validator"
)

// preparedResponse is a response ready for the SAML library: its
// assertion decrypted, its namespace prefixes normalized, and the checker
// that verifies the signatures on the response as received.
type preparedResponse struct {
	xml     []byte
	checker *signatureChecker
	// issueInstant is the Response's IssueInstant as written.
	issueInstant string
}

// prepareResponse readies raw (which passed checkResponseShape) for the
// SAML library, in this order:
//
//  1. The XML must survive an encoding/xml round trip (as the library
//     checks) and its root must be a Response in the SAML protocol namespace.
//  2. When the Response is signed, its signature is verified now, over the
//     response as received (so over the EncryptedAssertion as sent), and a
//     bad one is refused before anything is decrypted: an attacker cannot
//     feed altered ciphertexts to the decryption of a signed response.
//  3. An EncryptedAssertion is decrypted with the SP key (decryptAssertion).
//  4. The document is rewritten with one prefix per namespace
//     (normalizeNamespaces), the decrypted Assertion in the place of the
//     EncryptedAssertion, since crewjam/saml misreads redeclared prefixes.
//
// The library then makes its usual checks on the rewritten copy, asking
// the checker for each signature, which verifies it on the original
// element (the decrypted Assertion for an encrypted one).
func (p *Provider) prepareResponse(sp *saml.ServiceProvider, raw []byte) (*preparedResponse, error) {
	// As the library does with what it is given: refuse XML that does not
	// read the same after a round trip through encoding/xml, so that the
	// signatures checked here and the values read later see one document.
	if err := xrv.Validate(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("invalid xml: %w", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		return nil, fmt.Errorf("invalid xml: %w", err)
	}
	root := doc.Root()
	if !isNS(root, nsProtocol, "Response") {
		return nil, errors.New("assertion refused: the root element is not a Response of the SAML 2.0 protocol namespace")
	}
	checker := &signatureChecker{originals: map[string]*etree.Element{}, decrypted: map[*etree.Element]bool{}}
	checker.add(root)
	if childNS(root, nsDSig, "Signature") != nil {
		vc, err := idpValidationContext(sp.IDPMetadata)
		if err != nil {
			return nil, err
		}
		if err := validateSignature(vc, root); err != nil {
			return nil, err
		}
	}
	substitute := map[*etree.Element]*etree.Element{}
	for _, c := range root.ChildElements() {
		switch {
		case isNS(c, nsAssertion, "EncryptedAssertion"):
			a, err := decryptAssertion(c, p.key, decryptOptions{allowRSA15: p.cfg.AllowRSA15, ciphers: p.ciphers})
			if err != nil {
				return nil, err
			}
			substitute[c] = a
			checker.add(a)
			checker.decrypted[a] = true
		case isNS(c, nsAssertion, "Assertion"):
			checker.add(c)
		}
	}
	norm, err := normalizeNamespaces(root, substitute)
	if err != nil {
		return nil, fmt.Errorf("assertion refused: %w", err)
	}
	out := etree.NewDocument()
	out.SetRoot(norm)
	b, err := out.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("assertion refused: %w", err)
	}
	return &preparedResponse{xml: b, checker: checker, issueInstant: root.SelectAttrValue("IssueInstant", "")}, nil
}
