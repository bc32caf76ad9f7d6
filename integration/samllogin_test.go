package integration

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// samlLoginHops are the steps of one SP-initiated login.
type samlLoginHops struct {
	// Start is the service provider's redirect to the IdP.
	Start *page
	// AuthnRequest is where Start sent the browser: the IdP's SSO URL with
	// SAMLRequest and RelayState (HTTP-Redirect binding).
	AuthnRequest *url.URL
	// LoginForm is the IdP's login form; nil when the IdP still had a
	// session for the browser and answered at once.
	LoginForm *page
	// IdPResponse is the IdP's auto-submitting form with the SAMLResponse.
	IdPResponse *page
	// ACS is the service provider's answer to the posted assertion.
	ACS *page
}

// samlLogin drives b through a login that starts at startURL, which must
// answer with a redirect to idp. It logs in as user when the IdP asks and
// posts the assertion to the ACS URL the IdP names, like a browser running
// the IdP's auto-submit script. Every hop is checked; the ACS answer is
// returned unchecked in the hops.
func samlLogin(t testing.TB, b *browser, idp *testIdP, user idpUser, startURL string) samlLoginHops {
	t.Helper()
	var hops samlLoginHops

	hops.Start = b.Get(startURL)
	if s := hops.Start.Status; s != http.StatusFound && s != http.StatusSeeOther && s != http.StatusTemporaryRedirect {
		t.Fatalf("login start: want a redirect to the IdP, got\n%s", hops.Start)
	}
	loc := hops.Start.Location()
	if loc == nil || loc.Scheme+"://"+loc.Host+loc.Path != idp.SSOURL {
		t.Fatalf("login start: redirect to %v, want the IdP's SSO URL %s\n%s", loc, idp.SSOURL, hops.Start)
	}
	if loc.Query().Get("SAMLRequest") == "" {
		t.Fatalf("login start: redirect without SAMLRequest (HTTP-Redirect binding): %s", loc)
	}
	hops.AuthnRequest = loc

	p := b.Get(loc.String())
	if p.Status != http.StatusOK {
		t.Fatalf("IdP SSO: want 200, got\n%s\nIdP log:\n%s", p, idp.log.String())
	}
	if _, ok := formWithField(p, "SAMLResponse"); !ok {
		login, ok := formWithField(p, "password")
		if !ok {
			t.Fatalf("IdP SSO: neither a login form nor a SAML response\n%s", p)
		}
		hops.LoginForm = p
		// samlidp's form posts to /login, which only creates a session
		// (crewjam/saml issue 613); posting the same fields to /sso logs in
		// and answers the pending request.
		h := login.Hidden()
		p = b.PostForm(idp.SSOURL, idp.URL, url.Values{
			"user":        {user.Name},
			"password":    {user.Password},
			"SAMLRequest": {h["SAMLRequest"]},
			"RelayState":  {h["RelayState"]},
		})
		if p.Status != http.StatusOK {
			t.Fatalf("IdP login: want 200, got\n%s\nIdP log:\n%s", p, idp.log.String())
		}
	}
	hops.IdPResponse = p
	form, ok := formWithField(p, "SAMLResponse")
	if !ok {
		t.Fatalf("IdP login: no SAMLResponse form (wrong password?)\n%s\nIdP log:\n%s", p, idp.log.String())
	}
	if form.Hidden()["RelayState"] != loc.Query().Get("RelayState") {
		t.Fatalf("IdP changed RelayState: %q, sent %q", form.Hidden()["RelayState"], loc.Query().Get("RelayState"))
	}
	hops.ACS = b.Submit(p, form, "")
	return hops
}

// formWithField returns the first form of p that has a control named name.
func formWithField(p *page, name string) (htmlForm, bool) {
	for _, f := range p.Forms() {
		for _, c := range f.Controls {
			if c.Name == name {
				return f, true
			}
		}
	}
	return htmlForm{}, false
}

// isRedirect reports whether status is one a browser follows with a GET.
func isRedirect(status int) bool {
	return status == http.StatusFound || status == http.StatusSeeOther
}

// sameOrigin reports whether loc points into base's origin.
func sameOrigin(loc *url.URL, base string) bool {
	b, err := url.Parse(base)
	return err == nil && loc != nil && loc.Scheme == b.Scheme && loc.Host == b.Host && strings.HasPrefix(loc.Path, "/")
}
