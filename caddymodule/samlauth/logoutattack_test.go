package samlauth

import (
	"bytes"
	"compress/flate"
	"crypto"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// deflateParam is raw deflated, base64 and query-escaped, as the
// HTTP-Redirect binding carries a message.
func deflateParam(t *testing.T, raw []byte) string {
	t.Helper()
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, 9)
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
}

// TestLogoutQuerySignatureConfusion: the query signature must cover the
// very parameters that are then read. A second SAMLResponse whose name is
// percent-encoded (net/url decodes it, a raw comparison does not), a ";"
// separator, a repeated parameter or an encoded SigAlg or Signature name
// is refused, wherever it stands, even though the IdP signed the rest of
// the query.
func TestLogoutQuerySignatureConfusion(t *testing.T) {
	dir := t.TempDir()
	idp := samltest.NewIdP(t, dir, "idp")
	p := providerWith(t, samltest.LogoutDescriptor(idp.Cert), nil)
	const sha256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	signed := logoutResponse(t, p, nil, nil)
	// What the attacker would like read: unsigned, otherwise correct.
	forged := deflateParam(t, logoutResponse(t, p, nil, nil))
	good := querySignedLogout(t, signed, "r", sha256, crypto.SHA256, idp.Key, nil)
	if err := p.ValidateLogoutResponse(good, samltest.SPBaseURL); err != nil {
		t.Fatalf("the signed query itself: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(q string) string
	}{
		{"encoded name before", func(q string) string { return "SAML%52esponse=" + forged + "&" + q }},
		{"encoded name after", func(q string) string { return q + "&SAML%52esponse=" + forged }},
		{"other escaped letter", func(q string) string { return "SAMLR%65sponse=" + forged + "&" + q }},
		{"repeated SAMLResponse", func(q string) string { return "SAMLResponse=" + forged + "&" + q }},
		{"repeated RelayState", func(q string) string { return q + "&RelayState=other" }},
		{"semicolon separator", func(q string) string { return "SAMLResponse=" + forged + ";" + q }},
		{"encoded SigAlg name", func(q string) string { return strings.Replace(q, "SigAlg=", "Sig%41lg=", 1) }},
		{"encoded Signature name", func(q string) string { return strings.Replace(q, "&Signature=", "&Signatur%65=", 1) }},
		{"plus in a name", func(q string) string { return q + "&SAML+Response=" + forged }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := querySignedLogout(t, signed, "r", sha256, crypto.SHA256, idp.Key, tc.edit)
			if err := p.ValidateLogoutResponse(r, samltest.SPBaseURL); err == nil {
				t.Errorf("query %q accepted", r.URL.RawQuery)
			}
		})
	}
}

// TestLogoutResponseInResponseTo: a LogoutResponse the IdP signed is
// accepted only in answer to a LogoutRequest this SP made in the last
// LogoutRoundTrip, by either binding: not one with no InResponseTo (an
// IdP-initiated answer), another SP's or made-up ID, an ID of another SP
// key, or an old one.
func TestLogoutResponseInResponseTo(t *testing.T) {
	dir := t.TempDir()
	idp := samltest.NewIdP(t, dir, "idp")
	p := providerWith(t, samltest.LogoutDescriptor(idp.Cert), nil)
	other := providerWith(t, samltest.LogoutDescriptor(idp.Cert), nil)
	const sha256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"

	// A real LogoutRequest's ID is accepted.
	rd, err := p.Logout(samltest.SPBaseURL, samltest.Victim, "")
	if err != nil {
		t.Fatal(err)
	}
	var req saml.LogoutRequest
	samltest.DecodeRedirect(t, rd.URL, "SAMLRequest", &req)
	if req.ID != rd.RequestID {
		t.Fatalf("LogoutRequest ID %q, Redirect.RequestID %q", req.ID, rd.RequestID)
	}
	answer := func(id string) func(*saml.LogoutResponse) {
		return func(r *saml.LogoutResponse) { r.InResponseTo = id }
	}
	if err := p.ValidateLogoutResponse(postLogout(logoutResponse(t, p, idp, answer(req.ID))), samltest.SPBaseURL); err != nil {
		t.Errorf("answer to the LogoutRequest, POST: %v", err)
	}
	if err := p.ValidateLogoutResponse(querySignedLogout(t, logoutResponse(t, p, nil, answer(req.ID)), "", sha256, crypto.SHA256, idp.Key, nil),
		samltest.SPBaseURL); err != nil {
		t.Errorf("answer to the LogoutRequest, query-signed: %v", err)
	}

	for _, tc := range []struct {
		name, id string
	}{
		{"no InResponseTo", ""},
		{"made-up ID", "id-logout"},
		{"random ID", samltest.NewID()},
		{"another SP key's request", other.newLogoutID(time.Now())},
		{"request of 20 minutes ago", p.newLogoutID(time.Now().Add(-20 * time.Minute))},
		{"request from the future", p.newLogoutID(time.Now().Add(20 * time.Minute))},
		{"truncated ID", req.ID[:len(req.ID)-2]},
		{"altered ID", req.ID[:5] + strings.Map(func(r rune) rune {
			if r == '0' {
				return '1'
			}
			return '0'
		}, req.ID[5:6]) + req.ID[6:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for binding, r := range map[string]*http.Request{
				"POST":         postLogout(logoutResponse(t, p, idp, answer(tc.id))),
				"query-signed": querySignedLogout(t, logoutResponse(t, p, nil, answer(tc.id)), "", sha256, crypto.SHA256, idp.Key, nil),
				"XML-signed redirect": httptest.NewRequest(http.MethodGet,
					testSLO+"?SAMLResponse="+deflateParam(t, logoutResponse(t, p, idp, answer(tc.id))), nil),
			} {
				err := p.ValidateLogoutResponse(r, samltest.SPBaseURL)
				if err == nil || !strings.Contains(err.Error(), "InResponseTo") {
					t.Errorf("%s: %v, want a refusal about InResponseTo", binding, err)
				}
			}
		})
	}
}
