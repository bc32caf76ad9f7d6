package samlauth

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/big"
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

// redirectSigAlgs are the SigAlg values accepted in a query signature:
// RSA and ECDSA with SHA-256 or longer; SHA-1 is refused (the response
// then only counts as unsigned: /saml/slo asks the user to confirm).
var redirectSigAlgs = map[string]struct {
	hash crypto.Hash
	ec   bool
}{
	"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256":   {crypto.SHA256, false},
	"http://www.w3.org/2001/04/xmldsig-more#rsa-sha384":   {crypto.SHA384, false},
	"http://www.w3.org/2001/04/xmldsig-more#rsa-sha512":   {crypto.SHA512, false},
	"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": {crypto.SHA256, true},
	"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": {crypto.SHA384, true},
	"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": {crypto.SHA512, true},
}

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
	alg, ok := redirectSigAlgs[algName]
	if !ok {
		return fmt.Errorf("query signature: SigAlg %q is not accepted", algName)
	}
	h := alg.hash.New()
	h.Write([]byte(signed))
	digest := h.Sum(nil)
	for _, c := range certs {
		switch k := c.PublicKey.(type) {
		case *rsa.PublicKey:
			if !alg.ec && rsa.VerifyPKCS1v15(k, alg.hash, digest, sig) == nil {
				return nil
			}
		case *ecdsa.PublicKey:
			// r and s of the curve's size, concatenated (XML Signature 1.1).
			size := (k.Curve.Params().BitSize + 7) / 8
			if alg.ec && len(sig) == 2*size &&
				ecdsa.Verify(k, digest, new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])) {
				return nil
			}
		}
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
