package samlauth

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// logoutURL is where Logout sends the browser, by the HTTP-Redirect
// binding.
func logoutURL(t *testing.T, p *Provider, relayState string) (*url.URL, error) {
	t.Helper()
	rd, err := p.Logout(samltest.SPBaseURL, samltest.Victim, relayState)
	if err != nil {
		return nil, err
	}
	if rd.Binding != saml.HTTPRedirectBinding || rd.Form != nil {
		t.Fatalf("logout by %s, want the HTTP-Redirect binding", rd.Binding)
	}
	return url.Parse(rd.URL)
}

// TestLogoutRedirect: with an HTTP-Redirect SLO endpoint the user is sent
// there with a LogoutRequest for their NameID; without one, ErrNoSLO.
func TestLogoutRedirect(t *testing.T) {
	idp := samltest.NewIdP(t, t.TempDir(), "idp")
	p := providerWith(t, samltest.LogoutDescriptor(idp.Cert), nil)
	u, err := logoutURL(t, p, "back")
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme+"://"+u.Host+u.Path != samltest.IdPSLOURL || u.Query().Get("RelayState") != "back" {
		t.Errorf("URL %s", u)
	}
	var req saml.LogoutRequest
	samltest.DecodeRedirect(t, u.String(), "SAMLRequest", &req)
	if req.NameID == nil || req.NameID.Value != samltest.Victim || req.Destination != samltest.IdPSLOURL ||
		req.Issuer == nil || req.Issuer.Value != samltest.SPEntityID || req.ID == "" {
		t.Errorf("LogoutRequest %+v", req)
	}
	if u, err := logoutURL(t, p, ""); err != nil || u.Query().Has("RelayState") {
		t.Errorf("without relay state: %v, %v", u, err)
	}

	q := providerWith(t, samltest.Descriptor(idp.Cert), nil)
	if u, err := logoutURL(t, q, ""); !errors.Is(err, ErrNoSLO) || u != nil {
		t.Errorf("IdP without SLO: %v, %v; want ErrNoSLO", u, err)
	}
}

// logoutResponse is the IdP's answer to a LogoutRequest p just made,
// signed by signer unless nil; edit may change it first.
func logoutResponse(t testing.TB, p *Provider, signer *samltest.IdP, edit func(*saml.LogoutResponse)) []byte {
	t.Helper()
	r := saml.LogoutResponse{
		ID:           samltest.NewID(),
		InResponseTo: p.newLogoutID(time.Now()),
		Version:      "2.0",
		IssueInstant: time.Now().UTC(),
		Destination:  testSLO,
		Issuer:       &saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: samltest.IdPEntityID},
		Status:       saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusSuccess}},
	}
	if edit != nil {
		edit(&r)
	}
	el := r.Element()
	if signer != nil {
		el = signer.Sign(t, el)
	}
	return samltest.XMLBytes(t, el)
}

// postLogout is a POST to <base>/saml/slo carrying a LogoutResponse.
func postLogout(raw []byte) *http.Request {
	form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(raw)}}
	r := httptest.NewRequest(http.MethodPost, testSLO, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// redirectLogout is a GET to <base>/saml/slo carrying a LogoutResponse by
// the HTTP-Redirect binding (deflated, base64).
func redirectLogout(t testing.TB, raw []byte) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, 9)
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(buf.Bytes())}}
	return httptest.NewRequest(http.MethodGet, testSLO+"?"+q.Encode(), nil)
}

// TestValidateLogoutResponse: a LogoutResponse signed by the IdP, for this
// SP's SLO endpoint, with a success status, is valid by either binding;
// anything else is an error, and a malformed one does not panic.
func TestValidateLogoutResponse(t *testing.T) {
	dir := t.TempDir()
	idp, impostor := samltest.NewIdP(t, dir, "idp"), samltest.NewIdP(t, dir, "impostor")
	p := providerWith(t, samltest.LogoutDescriptor(idp.Cert), nil)

	if err := p.ValidateLogoutResponse(postLogout(logoutResponse(t, p, idp, nil)), samltest.SPBaseURL); err != nil {
		t.Errorf("POST binding: %v", err)
	}
	if err := p.ValidateLogoutResponse(redirectLogout(t, logoutResponse(t, p, idp, nil)), samltest.SPBaseURL); err != nil {
		t.Errorf("Redirect binding: %v", err)
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
		want string
	}{
		{"unsigned", postLogout(logoutResponse(t, p, nil, nil)), "signature"},
		{"signed by an unknown key", postLogout(logoutResponse(t, p, impostor, nil)), "signature"},
		{"wrong Destination", postLogout(logoutResponse(t, p, idp, func(r *saml.LogoutResponse) { r.Destination = samltest.OtherACSURL })), "Destination"},
		{"another issuer", postLogout(logoutResponse(t, p, idp, func(r *saml.LogoutResponse) { r.Issuer.Value = samltest.OtherIdPEntityID })), "issuer"},
		{"no issuer", postLogout(logoutResponse(t, p, idp, func(r *saml.LogoutResponse) { r.Issuer = nil })), "failed on it"},
		{"failed status", postLogout(logoutResponse(t, p, idp, func(r *saml.LogoutResponse) {
			r.Status.StatusCode.Value = saml.StatusResponder
		})), "status"},
		{"too old", postLogout(logoutResponse(t, p, idp, func(r *saml.LogoutResponse) {
			r.IssueInstant = time.Now().Add(-time.Hour)
		})), "expired"},
		{"changed after signing", postLogout(bytes.Replace(logoutResponse(t, p, idp, nil), []byte("status:Success"), []byte("status:Responder"), 1)), "signature"},
		{"not base64", httptest.NewRequest(http.MethodGet, testSLO+"?SAMLResponse=%25%25", nil), "base64"},
		{"no SAMLResponse", httptest.NewRequest(http.MethodGet, testSLO, nil), "refused"},
		{"not XML", postLogout([]byte("<<>>")), "XML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("panicked: %v", r)
					}
				}()
				err = p.ValidateLogoutResponse(tc.r, samltest.SPBaseURL)
			}()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want an error about %q", err, tc.want)
			}
		})
	}
}
