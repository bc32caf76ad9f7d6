package samlauth

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/crewjam/saml"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// querySignedLogout is a GET to <base>/saml/slo carrying an unsigned
// LogoutResponse by the HTTP-Redirect binding, signed in the query by key
// with sigAlg as the bindings specify (and as SimpleSAMLphp does:
// parameters encoded with QueryEscape); edit may change the raw query
// after signing.
func querySignedLogout(t testing.TB, raw []byte, relay, sigAlg string, hash crypto.Hash, key crypto.Signer, edit func(string) string) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, 9)
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	q := "SAMLResponse=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relay != "" {
		q += "&RelayState=" + url.QueryEscape(relay)
	}
	q += "&SigAlg=" + url.QueryEscape(sigAlg)
	h := hash.New()
	h.Write([]byte(q))
	if k, ok := key.(*ecdsa.PrivateKey); ok {
		key = rawECDSA{k} // r and s concatenated, as XML Signature has them
	}
	sig, err := key.Sign(rand.Reader, h.Sum(nil), hash)
	if err != nil {
		t.Fatal(err)
	}
	q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	if edit != nil {
		q = edit(q)
	}
	return httptest.NewRequest(http.MethodGet, testSLO+"?"+q, nil)
}

// TestValidateQuerySignedLogoutResponse: a LogoutResponse by the
// HTTP-Redirect binding signed in the query (what SimpleSAMLphp sends with
// sign.logout) is valid when the IdP's key signed exactly those
// parameters; anything else is refused.
func TestValidateQuerySignedLogoutResponse(t *testing.T) {
	dir := t.TempDir()
	idp, impostor := samltest.NewIdP(t, dir, "idp"), samltest.NewIdP(t, dir, "impostor")
	p := providerWith(t, samltest.LogoutDescriptor(idp.Cert), nil)
	const sha256, sha1 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	unsigned := logoutResponse(t, p, nil, nil)

	for _, relay := range []string{"", "back to /x?y=1"} {
		r := querySignedLogout(t, unsigned, relay, sha256, crypto.SHA256, idp.Key, nil)
		if err := p.ValidateLogoutResponse(r, samltest.SPBaseURL); err != nil {
			t.Errorf("relay state %q: %v", relay, err)
		}
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
		want string
	}{
		{"signed by an unknown key", querySignedLogout(t, unsigned, "", sha256, crypto.SHA256, impostor.Key, nil), "no signing certificate"},
		{"relay state changed", querySignedLogout(t, unsigned, "a", sha256, crypto.SHA256, idp.Key,
			func(q string) string { return strings.Replace(q, "RelayState=a", "RelayState=b", 1) }), "no signing certificate"},
		{"relay state added", querySignedLogout(t, unsigned, "", sha256, crypto.SHA256, idp.Key,
			func(q string) string { return strings.Replace(q, "&SigAlg=", "&RelayState=b&SigAlg=", 1) }), "no signing certificate"},
		{"SHA-1", querySignedLogout(t, unsigned, "", sha1, crypto.SHA1, idp.Key, nil), "not accepted"},
		{"no SigAlg", querySignedLogout(t, unsigned, "", sha256, crypto.SHA256, idp.Key,
			func(q string) string { return strings.Replace(q, "&SigAlg=", "&Other=", 1) }), "no SigAlg"},
		{"signature not base64", querySignedLogout(t, unsigned, "", sha256, crypto.SHA256, idp.Key,
			func(q string) string { return q + "%25%25" }), "query signature"},
		{"wrong Destination", querySignedLogout(t, logoutResponse(t, p, nil, func(r *saml.LogoutResponse) {
			r.Destination = samltest.OtherACSURL
		}), "", sha256, crypto.SHA256, idp.Key, nil), "Destination"},
		{"no issuer", querySignedLogout(t, logoutResponse(t, p, nil, func(r *saml.LogoutResponse) { r.Issuer = nil }),
			"", sha256, crypto.SHA256, idp.Key, nil), "issuer"},
		{"failed status", querySignedLogout(t, logoutResponse(t, p, nil, func(r *saml.LogoutResponse) {
			r.Status.StatusCode.Value = saml.StatusResponder
		}), "", sha256, crypto.SHA256, idp.Key, nil), "status"},
		{"not XML", querySignedLogout(t, []byte("<<>>"), "", sha256, crypto.SHA256, idp.Key, nil), "XML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.ValidateLogoutResponse(tc.r, samltest.SPBaseURL)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want an error about %q", err, tc.want)
			}
		})
	}
}

// TestValidateQuerySignedLogoutResponseECDSA: an IdP with an ECDSA key
// signs the query with ecdsa-sha256, r and s concatenated as in XML
// Signature; another key's signature, or one in ASN.1 DER, is refused.
func TestValidateQuerySignedLogoutResponseECDSA(t *testing.T) {
	key, cert := newECDSAPair(t)
	other, _ := newECDSAPair(t)
	p := providerWith(t, samltest.LogoutDescriptor(cert), nil)
	const alg = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
	unsigned := logoutResponse(t, p, nil, nil)
	if err := p.ValidateLogoutResponse(querySignedLogout(t, unsigned, "r", alg, crypto.SHA256, key, nil), samltest.SPBaseURL); err != nil {
		t.Errorf("signed by the IdP's ECDSA key: %v", err)
	}
	if err := p.ValidateLogoutResponse(querySignedLogout(t, unsigned, "r", alg, crypto.SHA256, other, nil), samltest.SPBaseURL); err == nil {
		t.Error("a signature by another ECDSA key was accepted")
	}
	// The same signature in ASN.1 DER, as Go's ecdsa.SignASN1 makes it.
	r := querySignedLogout(t, unsigned, "r", alg, crypto.SHA256, key, func(q string) string {
		i := strings.Index(q, "&Signature=")
		digest := sha256.Sum256([]byte(q[:i]))
		der, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		return q[:i] + "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(der))
	})
	if err := p.ValidateLogoutResponse(r, samltest.SPBaseURL); err == nil {
		t.Error("an ASN.1 DER signature was accepted")
	}
}
