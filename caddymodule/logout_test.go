package consolemeauth

import (
	"encoding/base64"
	"encoding/xml"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

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
