package samlauth

import (
	"bytes"
	"compress/flate"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/crewjam/saml"
)

// A LogoutResponse by the HTTP-Redirect binding is signed in the query
// (SAML bindings, section 3.4.4.1): SigAlg and Signature over the
// parameters exactly as sent, not inside the deflated XML. The library
// looks only for a signature inside the XML, so it refuses what
// SimpleSAMLphp, Shibboleth and other IdPs send; this file verifies the
// query signature and then checks the response as the library would.

// maxLogoutResponse bounds the inflated LogoutResponse.
const maxLogoutResponse = 256 << 10

// rawQueryParam returns the first value of name in a raw query as sent,
// still URL-encoded, and whether it is there at all.
func rawQueryParam(rawQuery, name string) (string, bool) {
	for _, kv := range strings.Split(rawQuery, "&") {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v, true
		}
	}
	return "", false
}

// validateRedirectLogoutResponse checks a LogoutResponse signed in
// rawQuery (SAMLResponse, optional RelayState, SigAlg, Signature) with
// the IdP's signing certificates, then the response itself.
func validateRedirectLogoutResponse(sp *saml.ServiceProvider, rawQuery string) error {
	certs, err := idpSigningCerts(sp.IDPMetadata)
	if err != nil {
		return fmt.Errorf("logout response refused: %w", err)
	}
	if err := verifyQuerySignature(rawQuery, certs); err != nil {
		return fmt.Errorf("logout response refused: %w", err)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return fmt.Errorf("logout response refused: query: %w", err)
	}
	deflated, err := base64.StdEncoding.DecodeString(q.Get("SAMLResponse"))
	if err != nil {
		return fmt.Errorf("logout response refused: unable to parse base64: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(deflated)), maxLogoutResponse+1))
	if err != nil || len(raw) > maxLogoutResponse {
		return fmt.Errorf("logout response refused: inflating: %v (%d bytes)", err, len(raw))
	}
	var resp saml.LogoutResponse
	if err := xml.Unmarshal(raw, &resp); err != nil {
		return fmt.Errorf("logout response refused: invalid XML: %w", err)
	}
	return checkLogoutResponse(sp, &resp)
}

// verifyQuerySignature checks the query's Signature over
// "SAMLResponse=…[&RelayState=…]&SigAlg=…" as sent, by any of certs.
func verifyQuerySignature(rawQuery string, certs []*x509.Certificate) error {
	msg, _ := rawQueryParam(rawQuery, "SAMLResponse")
	algRaw, okAlg := rawQueryParam(rawQuery, "SigAlg")
	sigRaw, okSig := rawQueryParam(rawQuery, "Signature")
	if !okAlg || !okSig {
		return errors.New("the query has no SigAlg and Signature")
	}
	signed := "SAMLResponse=" + msg
	if relay, ok := rawQueryParam(rawQuery, "RelayState"); ok {
		signed += "&RelayState=" + relay
	}
	signed += "&SigAlg=" + algRaw
	algName, err1 := url.QueryUnescape(algRaw)
	sigB64, err2 := url.QueryUnescape(sigRaw)
	sig, err3 := base64.StdEncoding.DecodeString(sigB64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("query signature: %w", err)
	}
	alg, ok := signatureMethods[algName]
	if !ok {
		return fmt.Errorf("query signature: SigAlg %q is not accepted", algName)
	}
	if alg.verifiedBy([]byte(signed), sig, certs) {
		return nil
	}
	return errors.New("query signature: made by no signing certificate in the IdP metadata")
}

// checkLogoutResponse makes the library's checks of a LogoutResponse whose
// signature was verified: Destination this SP's SLO endpoint, issued
// recently by the IdP of the metadata, success status.
func checkLogoutResponse(sp *saml.ServiceProvider, resp *saml.LogoutResponse) error {
	if resp.Destination != sp.SloURL.String() {
		return fmt.Errorf("logout response refused: `Destination` does not match SloURL (expected %q)", sp.SloURL.String())
	}
	if resp.IssueInstant.Add(saml.MaxIssueDelay).Before(saml.TimeNow()) {
		return fmt.Errorf("logout response refused: issueInstant expired at %s", resp.IssueInstant.Add(saml.MaxIssueDelay))
	}
	if resp.Issuer == nil || resp.Issuer.Value != sp.IDPMetadata.EntityID {
		return fmt.Errorf("logout response refused: issuer does not match the IDP metadata (expected %q)", sp.IDPMetadata.EntityID)
	}
	if resp.Status.StatusCode.Value != saml.StatusSuccess {
		return fmt.Errorf("logout response refused: status code was not %s", saml.StatusSuccess)
	}
	return nil
}
