package integration

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// The test in this file proves single logout with signed LogoutRequests
// end to end: a web_login site signs in through SimpleSAMLphp in Chromium,
// then GET /logout sends the browser to SimpleSAMLphp's single-logout
// service with a LogoutRequest. SimpleSAMLphp is told to accept logout
// messages from the module only when signed (the SP's saml20-sp-remote
// option validate.logout, checked in saml/lib/Message.php validateMessage),
// so only a signature it verifies with the certificate in the module's SP
// metadata gets the browser back to /saml/slo with a LogoutResponse, and
// only then does SimpleSAMLphp end its own session. SimpleSAMLphp signs its
// LogoutResponse too (sign.logout); after a return from the HTTP-POST form
// (a cross-site request) only that signature lets /saml/slo clear the
// session.

// sspLogoutService is SimpleSAMLphp's single-logout endpoint, as its
// metadata names it.
const sspLogoutService = "/saml2/idp/SingleLogoutService.php"

// logoutCase is one deployment of TestSAMLLogoutSignedRequired.
type logoutCase struct {
	name string
	// idp is the SimpleSAMLphp configuration; module changes the module's.
	idp    sspConfig
	module func(m *moduleConfig)
	// binding is the one the LogoutRequest must travel by.
	binding string
	// signed says whether the module signs it, and so whether
	// SimpleSAMLphp, which requires a signature, accepts it.
	signed bool
}

// TestSAMLLogoutSignedRequired signs in and out of a web_login site with
// SimpleSAMLphp requiring signed logout messages from the module: signed by
// the HTTP-Redirect binding (sign_authn_requests) and by the HTTP-POST
// binding (the IdP metadata wants signed requests), each accepted, ending
// SimpleSAMLphp's session; and, as the control that makes the others
// prove something, unsigned, which SimpleSAMLphp refuses.
func TestSAMLLogoutSignedRequired(t *testing.T) {
	skipIfShort(t)
	browser := startChromium(t)
	cases := []logoutCase{
		{
			name:    "redirect-signed-by-setting",
			module:  func(m *moduleConfig) { m.SignAuthnRequests = true },
			binding: testbed.BindingHTTPRedirect,
			signed:  true,
		},
		{
			name: "post-signed-as-metadata-wants",
			// SimpleSAMLphp publishes WantAuthnRequestsSigned, and its
			// single-logout endpoint by the HTTP-POST binding only (the
			// endpoint takes both).
			idp: sspConfig{Hosted: map[string]any{
				"validate.authnrequest":      true,
				"SingleLogoutServiceBinding": []string{bindingHTTPPost},
			}},
			binding: bindingHTTPPost,
			signed:  true,
		},
		{
			name:    "unsigned-refused",
			binding: testbed.BindingHTTPRedirect,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { testSignedLogout(t, browser, c) })
	}
}

func testSignedLogout(t *testing.T, browser *chromium, c logoutCase) {
	if len(c.idp.Users) == 0 {
		c.idp.Users = []idpUser{userAlice}
	}
	rw := newRealWorld(t, realWorldSetup{
		IdP: c.idp,
		Module: func(m *moduleConfig) {
			m.WebLogin = &testbed.WebLogin{PublicPaths: []string{"/healthcheck"}}
			if c.module != nil {
				c.module(m)
			}
		},
		SPs: func(rw *realWorld) []sspSP {
			sp := rw.SP
			if sp.SigningCert == "" {
				// As an administrator would, so that only a missing
				// signature can make the IdP refuse the request.
				sp.SigningCert = sp.EncryptionCert
			}
			// Signed logout both ways: SimpleSAMLphp requires the
			// module's messages signed and signs its own (in the query
			// by HTTP-Redirect), as /saml/slo requires when the browser
			// comes back from another site.
			sp.Options = map[string]any{"validate.logout": true, "sign.logout": true}
			return []sspSP{sp}
		},
	})
	w := &webLoginWorld{rw}
	ssp := rw.SSP
	if md := ssp.Metadata(t); c.binding == bindingHTTPPost &&
		(!bytes.Contains(md, []byte(`WantAuthnRequestsSigned="true"`)) || bytes.Contains(md, []byte(`SingleLogoutService Binding="`+testbed.BindingHTTPRedirect))) {
		t.Fatalf("the IdP metadata must want signed requests and offer single logout by HTTP-POST only:\n%s", md)
	}
	tb := browser.newTab(t)
	pageURL := w.Base + webLoginPage

	// Sign in: the page, the IdP's form, back to the page with a cookie.
	w.signInAtIdP(tb, userAlice, pageURL)
	tb.WaitFor("the page after the login", func(loc, text string) bool {
		return loc == pageURL && strings.Contains(text, userAlice.Email)
	})
	w.expectAcceptedCookie(tb, webLoginPage, userAlice)

	// Sign out.
	seen, logFrom := len(tb.Requests()), len(ssp.Log())
	logoutURL := w.Base + "/logout"
	tb.Navigate(logoutURL)
	out := tb.WaitDocument(http.MethodGet, logoutURL)
	sloURL := ssp.URL + sspLogoutService
	var lr logoutRequestSent
	if c.binding == testbed.BindingHTTPRedirect {
		if out.Status != http.StatusFound && out.Status != http.StatusSeeOther {
			tb.fail("/logout was answered %d, want a redirect to the IdP's single-logout service", out.Status)
		}
		lr = redirectLogoutRequest(t, out.Location, sloURL)
	} else {
		if out.Status != http.StatusOK {
			tb.fail("/logout was answered %d, want the form that posts the LogoutRequest", out.Status)
		}
		lr = postedLogoutRequest(tb, seen, sloURL)
	}
	lr.check(t, rw.SP.EntityID, userAlice.Email, c.signed)

	if !c.signed {
		// SimpleSAMLphp refuses it for want of a signature, before it
		// looks at the request: no logout there, no way back to /saml/slo.
		tb.WaitFor("SimpleSAMLphp's error page", func(loc, text string) bool {
			return hostOf(loc) == hostOf(ssp.URL) && text != ""
		})
		tb.Snapshot("idp-refused")
		sspLog := ssp.Log()[logFrom:]
		if !strings.Contains(sspLog, "no signature found on message") {
			t.Errorf("SimpleSAMLphp did not refuse the unsigned LogoutRequest for want of a signature; its log:\n%s", tail(sspLog, 4000))
		}
		if strings.Contains(sspLog, "Received SAML 2.0 LogoutRequest") {
			t.Errorf("SimpleSAMLphp processed the unsigned LogoutRequest; the signed cases prove nothing:\n%s", tail(sspLog, 4000))
		}
		for _, r := range tb.Requests()[seen:] {
			if strings.HasPrefix(r.URL, w.Base+"/saml/slo") {
				t.Errorf("the browser reached /saml/slo after a refused logout:\n%s", tb.NavigationLog())
			}
		}
		// The module cleared its cookie before sending the browser off,
		// but the IdP's session lives on: the page signs in again without
		// a password.
		if tb.Cookie(w.Base, w.cookieName()) != nil {
			tb.fail("the browser still holds a %s cookie after /logout", w.cookieName())
		}
		tb.Navigate(pageURL)
		tb.WaitFor("the page, signed in again by the IdP's session", func(loc, text string) bool {
			return loc == pageURL && strings.Contains(text, userAlice.Email)
		})
		w.expectAcceptedCookie(tb, webLoginPage, userAlice)
		return
	}

	// SimpleSAMLphp verified the signature, ended its session and sent
	// its LogoutResponse to /saml/slo, where the module says so.
	tb.WaitFor("the module's signed-out page", func(loc, text string) bool {
		return strings.HasPrefix(loc, w.Base+"/saml/slo") && strings.Contains(text, "You are signed out")
	})
	tb.Snapshot("signed-out")
	back := ""
	for _, r := range tb.Requests()[seen:] {
		if strings.HasPrefix(r.URL, w.Base+"/saml/slo?") {
			back = r.URL
		}
	}
	if u, err := url.Parse(back); err != nil || u.Query().Get("Signature") == "" || u.Query().Get("SigAlg") == "" {
		t.Errorf("SimpleSAMLphp's LogoutResponse came back unsigned (%q); the module's check of it is not shown", back)
	}
	sspLog := ssp.Log()[logFrom:]
	for _, want := range []string{"Received SAML 2.0 LogoutRequest from: '" + rw.SP.EntityID + "'", "Validation with key #0 succeeded"} {
		if !strings.Contains(sspLog, want) {
			t.Errorf("SimpleSAMLphp's log does not say %q; its log:\n%s", want, tail(sspLog, 4000))
		}
	}
	for _, bad := range []string{"no signature found", "Unable to validate", "failed with exception", "Exception"} {
		if strings.Contains(sspLog, bad) {
			t.Errorf("SimpleSAMLphp's log says %q:\n%s", bad, tail(sspLog, 4000))
		}
	}
	if tb.Cookie(w.Base, w.cookieName()) != nil {
		tb.fail("the browser still holds a %s cookie after the logout", w.cookieName())
	}

	// The page again: the IdP's session ended, so it asks for the password.
	before := time.Now()
	tb.Navigate(pageURL)
	onForm := false
	tb.WaitFor("the IdP's login form (or the page, if the IdP kept its session)", func(loc, text string) bool {
		if loc == pageURL && strings.Contains(text, userAlice.Email) {
			return true
		}
		onForm = hostOf(loc) == hostOf(ssp.URL) && hasElement(tb, "#username")
		return onForm
	})
	if !onForm {
		tb.fail("the page signed in again without a password: SimpleSAMLphp's session outlived the logout")
	}
	tb.Type("#username", userAlice.Name)
	tb.Type("#password", userAlice.Password)
	tb.Click("#submit_button")
	tb.WaitFor("the page after the second login", func(loc, text string) bool {
		return loc == pageURL && strings.Contains(text, userAlice.Email)
	})
	value := w.expectAcceptedCookie(tb, webLoginPage, userAlice)
	w.checkJWT(t, value, userAlice, before)
}

// logoutRequestSent is the LogoutRequest as the browser carried it to the
// IdP: its XML and, for HTTP-Redirect, the query's signature.
type logoutRequestSent struct {
	binding string
	xml     string
	query   url.Values // HTTP-Redirect only
}

// redirectLogoutRequest reads the LogoutRequest from the Location /logout
// redirected to, which must be the IdP's single-logout service.
func redirectLogoutRequest(t *testing.T, location, sloURL string) logoutRequestSent {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil || !strings.HasPrefix(location, sloURL+"?") {
		t.Fatalf("/logout redirects to %q, want %s", location, sloURL)
	}
	q := u.Query()
	deflated, err := base64.StdEncoding.DecodeString(q.Get("SAMLRequest"))
	if err != nil {
		t.Fatalf("the SAMLRequest of %s: %v", location, err)
	}
	raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
	if err != nil {
		t.Fatalf("inflating the LogoutRequest: %v", err)
	}
	return logoutRequestSent{binding: testbed.BindingHTTPRedirect, xml: string(raw), query: q}
}

// postedLogoutRequest waits for the browser's POST to the IdP's
// single-logout service among the requests after the first seen, and reads
// the LogoutRequest it carried.
func postedLogoutRequest(tb *tab, seen int, sloURL string) logoutRequestSent {
	tb.t.Helper()
	var body []byte
	tb.WaitFor("the form's POST to the IdP's single-logout service", func(string, string) bool {
		for _, r := range tb.Requests()[seen:] {
			if r.Method == http.MethodPost && r.URL == sloURL {
				body = r.Body
				return true
			}
		}
		return false
	})
	form, err := url.ParseQuery(string(body))
	if err != nil {
		tb.fail("the POST to %s: %v", sloURL, err)
	}
	raw, err := base64.StdEncoding.DecodeString(form.Get("SAMLRequest"))
	if err != nil || len(raw) == 0 {
		tb.fail("the POST to %s carries no SAMLRequest: %q", sloURL, body)
	}
	return logoutRequestSent{binding: bindingHTTPPost, xml: string(raw)}
}

// xmlSignatureRe matches an enveloped XML signature with its value.
var xmlSignatureRe = regexp.MustCompile(`(?s)<(\w+:)?Signature\b.*<(\w+:)?SignatureValue>[A-Za-z0-9+/=\s]{20,}</`)

// check checks that the request is a LogoutRequest from issuer for nameID,
// signed as its binding signs, or not signed at all.
func (lr logoutRequestSent) check(t *testing.T, issuer, nameID string, signed bool) {
	t.Helper()
	for _, want := range []string{"LogoutRequest", ">" + issuer + "</", ">" + nameID + "</"} {
		if !strings.Contains(lr.xml, want) {
			t.Errorf("the %s LogoutRequest lacks %q:\n%s", lr.binding, want, lr.xml)
		}
	}
	hasXMLSig := xmlSignatureRe.MatchString(lr.xml)
	hasQuerySig := lr.query.Get("Signature") != "" && lr.query.Get("SigAlg") != ""
	switch {
	case !signed && (hasXMLSig || hasQuerySig):
		t.Fatalf("the module signed the LogoutRequest; the control proves nothing:\n%s\n%v", lr.xml, lr.query)
	case signed && lr.binding == testbed.BindingHTTPRedirect && (!hasQuerySig || hasXMLSig):
		t.Errorf("want a query signature and no XML signature by HTTP-Redirect, got query %v and:\n%s", lr.query, lr.xml)
	case signed && lr.binding == bindingHTTPPost && !hasXMLSig:
		t.Errorf("want an XML signature by HTTP-POST:\n%s", lr.xml)
	}
}
