package samlauth

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/crewjam/saml"
)

// A LogoutResponse by the HTTP-Redirect binding is signed in the query
// (SAML bindings, section 3.4.4.1): SigAlg and Signature over the
// parameters exactly as sent, not inside the deflated XML. The library
// looks only for a signature inside the XML, so it refuses what
// SimpleSAMLphp, Shibboleth and other IdPs send; this file verifies the
// query signature and then the response is checked as the library would
// (checkLogoutResponse).

// maxLogoutResponse bounds the inflated LogoutResponse.
const maxLogoutResponse = 256 << 10

// verifyRedirectLogoutResponse checks the query signature of q (read by
// parseRedirectQuery: SAMLResponse, optional RelayState, SigAlg,
// Signature) with the IdP's signing certificates and returns the
// LogoutResponse it covers, inflated from the very parameter signed.
func (p *Provider) verifyRedirectLogoutResponse(sp *saml.ServiceProvider, q *redirectQuery) ([]byte, error) {
	certs, err := idpSigningCerts(sp.IDPMetadata)
	if err != nil {
		return nil, err
	}
	qs, err := q.signature("SAMLResponse")
	if err != nil {
		return nil, err
	}
	alg, ok := signatureMethods[qs.alg]
	if !ok {
		return nil, fmt.Errorf("query signature: SigAlg %q is not accepted", qs.alg)
	}
	if !alg.verifiedBy(qs.signed, qs.signature, certs) {
		return nil, errors.New("query signature: made by no signing certificate in the IdP metadata")
	}
	return inflateLogoutResponse(q.get("SAMLResponse"))
}

// inflateLogoutResponse decodes the SAMLResponse of the HTTP-Redirect
// binding: base64 of the deflated XML, at most maxLogoutResponse bytes.
func inflateLogoutResponse(data string) ([]byte, error) {
	deflated, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, fmt.Errorf("unable to parse base64: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(deflated)), maxLogoutResponse+1))
	if err != nil || len(raw) > maxLogoutResponse {
		return nil, fmt.Errorf("inflating: %v (%d bytes)", err, len(raw))
	}
	return raw, nil
}

// checkLogoutResponse makes the library's checks of a LogoutResponse whose
// signature was verified, with p's tolerances (the library's are the
// widest of all, see "Clock tolerances"), and checks that it answers a
// LogoutRequest of this SP: Destination this SP's SLO endpoint, issued
// recently by the IdP of the metadata, InResponseTo a recent LogoutRequest
// ID of p's, success status.
func (p *Provider) checkLogoutResponse(sp *saml.ServiceProvider, resp *saml.LogoutResponse) error {
	skew, delay := p.Tolerances()
	now := saml.TimeNow()
	if resp.Destination != sp.SloURL.String() {
		return fmt.Errorf("logout response refused: `Destination` does not match SloURL (expected %q)", sp.SloURL.String())
	}
	if resp.IssueInstant.Add(delay).Before(now) {
		return fmt.Errorf("logout response refused: issueInstant expired at %s", resp.IssueInstant.Add(delay))
	}
	if resp.Issuer == nil || resp.Issuer.Value != sp.IDPMetadata.EntityID {
		return fmt.Errorf("logout response refused: issuer does not match the IDP metadata (expected %q)", sp.IDPMetadata.EntityID)
	}
	if err := p.checkLogoutID(resp.InResponseTo, now, skew); err != nil {
		return fmt.Errorf("logout response refused: %w", err)
	}
	if resp.Status.StatusCode.Value != saml.StatusSuccess {
		return fmt.Errorf("logout response refused: status code was not %s", saml.StatusSuccess)
	}
	return nil
}
