package consolemeauth

import (
	"encoding/base64"
	"encoding/xml"
	"html"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// An IdP whose only single-logout endpoint is of the HTTP-POST binding gets
// the LogoutRequest as a form the browser posts, signed (the IdP wants
// signed requests), after the session is cleared; one with an HTTP-Redirect
// endpoint gets a redirect.
func TestLogoutAtTheIdP(t *testing.T) {
	for _, binding := range []string{saml.HTTPPostBinding, saml.HTTPRedirectBinding} {
		t.Run(binding[strings.LastIndex(binding, ":")+1:], func(t *testing.T) {
			dir := t.TempDir()
			idp := samltest.NewIdP(t, dir, "idp")
			ed := samltest.LogoutDescriptor(idp.Cert)
			yes := true
			ed.IDPSSODescriptors[0].WantAuthnRequestsSigned = &yes
			ed.IDPSSODescriptors[0].SingleLogoutServices = []saml.Endpoint{{Binding: binding, Location: samltest.IdPSLOURL}}
			md, err := xml.Marshal(ed)
			if err != nil {
				t.Fatal(err)
			}
			mdFile := filepath.Join(dir, "slo-metadata.xml")
			if err := os.WriteFile(mdFile, md, 0o600); err != nil {
				t.Fatal(err)
			}
			h := newWebLoginHandler(t, func(h *Handler) { h.SAML.IDPMetadataFile = mdFile })
			r := request("GET", "/logout", "192.0.2.1", nil)
			r.AddCookie(sessionCookie(t, h, "alice@example.com"))
			rec, passed := serve(t, h, r)
			if passed {
				t.Fatal("logout passed to the upstream")
			}
			if sc := rec.Header().Get("Set-Cookie"); !strings.Contains(sc, "consoleme_auth=;") {
				t.Errorf("session not cleared: %q", sc)
			}
			if binding == saml.HTTPRedirectBinding {
				loc := rec.Header().Get("Location")
				if rec.Code != 302 || !strings.HasPrefix(loc, samltest.IdPSLOURL+"?") || !strings.Contains(loc, "Signature=") {
					t.Errorf("%d to %q, want a signed redirect to the IdP's SLO endpoint", rec.Code, loc)
				}
				return
			}
			body := rec.Body.String()
			action := regexp.MustCompile(`action="([^"]*)"`).FindStringSubmatch(body)
			field := regexp.MustCompile(`name="SAMLRequest" value="([^"]*)"`).FindStringSubmatch(body)
			if rec.Code != 200 || action == nil || html.UnescapeString(action[1]) != samltest.IdPSLOURL || field == nil {
				t.Fatalf("%d, want a form posting SAMLRequest to %s:\n%s", rec.Code, samltest.IdPSLOURL, body)
			}
			// The IdP answers by redirecting the browser back to
			// /saml/slo (or on through other sites); browsers check
			// those redirects against the page's form-action, so the
			// page must not restrict it.
			if csp := rec.Header().Get("Content-Security-Policy"); strings.Contains(csp, "form-action") || !strings.Contains(csp, "script-src 'nonce-") {
				t.Errorf("CSP %q: want a script nonce and no form-action", csp)
			}
			raw, err := base64.StdEncoding.DecodeString(html.UnescapeString(field[1]))
			if err != nil {
				t.Fatal(err)
			}
			var req saml.LogoutRequest
			if err := xml.Unmarshal(raw, &req); err != nil {
				t.Fatal(err)
			}
			if req.NameID == nil || req.NameID.Value != "alice@example.com" || req.Signature == nil {
				t.Errorf("LogoutRequest for %v, signed=%v; want alice's, signed", req.NameID, req.Signature != nil)
			}
		})
	}
}

// A logout at /saml/slo that did not come from this site signs nobody out
// unless it is a LogoutResponse the IdP signed: another site's link or form
// (the page of a cross-site /logout instead), an unsigned or forged
// response, or one signed by another key.
func TestSingleLogoutFromAnotherSite(t *testing.T) {
	dir := t.TempDir()
	idp := samltest.NewIdP(t, dir, "idp")
	attacker := samltest.NewIdP(t, dir, "attacker")
	sp := samltest.NewKeyPair(t, dir, "sp")
	mdFile := samltest.WriteFile(t, dir, "idp-slo.xml", samltest.MarshalMetadata(t, samltest.LogoutDescriptor(idp.Cert)))
	h := newTestHandler(t, func(h *Handler) {
		h.SAML = &SAMLConfig{IDPMetadataFile: mdFile, SPCert: sp.CertFile, SPKey: sp.KeyFile}
		h.WebLogin = &WebLoginConfig{}
	})
	// The ID of a LogoutRequest this site sent: the IdP's answer names it.
	logout := request("GET", "/logout", "192.0.2.1", nil)
	logout.AddCookie(sessionCookie(t, h, "alice@example.com"))
	rec, _ := serve(t, h, logout)
	var sent saml.LogoutRequest
	samltest.DecodeRedirect(t, rec.Header().Get("Location"), "SAMLRequest", &sent)
	response := func(signer *samltest.IdP) string {
		r := saml.LogoutResponse{
			ID: samltest.NewID(), InResponseTo: sent.ID, Version: "2.0", IssueInstant: time.Now().UTC(),
			Destination: h.PublicURL + "/saml/slo",
			Issuer:      &saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: samltest.IdPEntityID},
			Status:      saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusSuccess}},
		}
		el := r.Element()
		if signer != nil {
			el = signer.Sign(t, el)
		}
		return base64.StdEncoding.EncodeToString(samltest.XMLBytes(t, el))
	}
	for _, tc := range []struct {
		name, method, body string
		signedOut          bool
	}{
		{"link from another site", "GET", "", false},
		{"form from another site", "POST", "", false},
		{"unsigned response", "POST", response(nil), false},
		{"response signed by another key", "POST", response(attacker), false},
		{"IdP-initiated request, unverified", "POST", "SAMLRequest=" + url.QueryEscape("PHg+PC94Pg=="), false},
		{"response signed by the IdP", "POST", response(idp), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if body != "" && !strings.HasPrefix(body, "SAMLRequest=") {
				body = "SAMLResponse=" + url.QueryEscape(body)
			}
			r := request(tc.method, "/saml/slo", "192.0.2.1", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			r.Header.Set("Origin", "https://idp.example.com")
			r.AddCookie(sessionCookie(t, h, "alice@example.com"))
			rec, passed := serve(t, h, r)
			cleared := strings.Contains(rec.Header().Get("Set-Cookie"), "consoleme_auth=;")
			if passed || rec.Code != 200 || cleared != tc.signedOut {
				t.Fatalf("%d, passed=%v, session cleared=%v; want cleared=%v", rec.Code, passed, cleared, tc.signedOut)
			}
			want := "Sign out of ConsoleMe?"
			if tc.signedOut {
				want = "You are signed out"
			}
			if !strings.Contains(rec.Body.String(), want) {
				t.Errorf("page lacks %q:\n%s", want, rec.Body)
			}
			// The confirmation's POST /logout is answered with a
			// redirect to the IdP, which form-action would block.
			if csp := rec.Header().Get("Content-Security-Policy"); !tc.signedOut && strings.Contains(csp, "form-action") {
				t.Errorf("confirmation page CSP %q restricts form-action", csp)
			}
		})
	}
}
