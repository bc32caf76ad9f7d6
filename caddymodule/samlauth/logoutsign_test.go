package samlauth

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/crewjam/saml"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// sloOnly is the test IdP's metadata with WantAuthnRequestsSigned set to
// want and one single-logout endpoint, of binding.
func sloOnly(t testing.TB, want *bool, binding string) *saml.EntityDescriptor {
	t.Helper()
	ed := samltest.LogoutDescriptor(samltest.NewIdP(t, t.TempDir(), "idp").Cert)
	d := &ed.IDPSSODescriptors[0]
	d.WantAuthnRequestsSigned = want
	d.SingleLogoutServices = []saml.Endpoint{{Binding: binding, Location: samltest.IdPSLOURL}}
	return ed
}

// TestSignedLogoutRequests: LogoutRequests are signed exactly when
// AuthnRequests are, by the rules of each binding (a query signature on
// HTTP-Redirect, an XML signature on HTTP-POST), and the signatures verify
// with the SP certificate.
func TestSignedLogoutRequests(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		name   string
		want   *bool
		force  bool
		signed bool
	}{
		{"IdP wants signed requests", &yes, false, true},
		{"IdP says nothing", nil, false, false},
		{"sign_authn_requests", nil, true, true},
	} {
		for _, binding := range []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding} {
			t.Run(tc.name+"/"+binding[strings.LastIndex(binding, ":")+1:], func(t *testing.T) {
				p := providerWith(t, sloOnly(t, tc.want, binding), func(c *Config) { c.SignAuthnRequests = tc.force })
				r, err := p.Logout(samltest.SPBaseURL, samltest.Victim, "back")
				if err != nil {
					t.Fatal(err)
				}
				if r.Binding != binding || r.IDPEntityID != samltest.IdPEntityID || !strings.HasPrefix(r.URL, samltest.IdPSLOURL) {
					t.Errorf("logout by %s to %s", r.Binding, r.URL)
				}
				var signed bool
				var req saml.LogoutRequest
				if binding == saml.HTTPRedirectBinding {
					signed = checkQuerySignature(t, p, r.URL)
					samltest.DecodeRedirect(t, r.URL, "SAMLRequest", &req)
				} else {
					signed = checkPostSignature(t, p, r.Form["SAMLRequest"])
					raw, err := DecodeBase64Loose(r.Form["SAMLRequest"])
					if err != nil {
						t.Fatal(err)
					}
					if err := xml.Unmarshal(raw, &req); err != nil {
						t.Fatal(err)
					}
					if r.Form["RelayState"] != "back" {
						t.Errorf("RelayState %q", r.Form["RelayState"])
					}
				}
				if signed != tc.signed {
					t.Errorf("signed %v, want %v", signed, tc.signed)
				}
				if req.ID != r.RequestID || req.NameID == nil || req.NameID.Value != samltest.Victim || req.Destination != samltest.IdPSLOURL {
					t.Errorf("LogoutRequest %+v", req)
				}
			})
		}
	}

	q := providerWith(t, samltest.Descriptor(samltest.NewIdP(t, t.TempDir(), "idp").Cert), nil)
	if r, err := q.Logout(samltest.SPBaseURL, samltest.Victim, ""); !errors.Is(err, ErrNoSLO) || r != nil {
		t.Errorf("Logout at an IdP without SLO: %v, %v; want ErrNoSLO", r, err)
	}
}
