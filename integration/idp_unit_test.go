package integration

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sync"
	"testing"

	"github.com/crewjam/saml"
)

// testSP is a minimal crewjam/saml service provider. It exists to prove the
// IdP helper and the login driver (and the attribute names the module is
// configured with) without needing Caddy.
type testSP struct {
	sp  saml.ServiceProvider
	srv *httptest.Server

	mu     sync.Mutex
	issued []string // AuthnRequest IDs
}

// spLogin is what testSP's ACS answers: the identity in the assertion.
type spLogin struct {
	NameID     string              `json:"name_id"`
	RelayState string              `json:"relay_state"`
	Attributes map[string][]string `json:"attributes"`
}

func startTestSP(t *testing.T, idp *testIdP) *testSP {
	t.Helper()
	kp := sharedKeyPair(t, "test-sp")
	s := &testSP{}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)

	resp, err := http.Get(idp.MetadataURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var md saml.EntityDescriptor
	if err := xml.Unmarshal(raw, &md); err != nil {
		t.Fatalf("IdP metadata: %v\n%s", err, raw)
	}
	base, _ := url.Parse(s.srv.URL)
	s.sp = saml.ServiceProvider{
		EntityID:    s.srv.URL + "/saml/metadata",
		Key:         kp.Key,
		Certificate: kp.Cert,
		MetadataURL: *base.JoinPath("/saml/metadata"),
		AcsURL:      *base.JoinPath("/saml/acs"),
		IDPMetadata: &md,
	}
	return s
}

func (s *testSP) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/saml/metadata":
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		_ = xml.NewEncoder(w).Encode(s.sp.Metadata())
	case "/start":
		req, err := s.sp.MakeAuthenticationRequest(s.sp.GetSSOBindingLocation(saml.HTTPRedirectBinding), saml.HTTPRedirectBinding, saml.HTTPPostBinding)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		u, err := req.Redirect("relay-"+req.ID, &s.sp)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.mu.Lock()
		s.issued = append(s.issued, req.ID)
		s.mu.Unlock()
		http.Redirect(w, r, u.String(), http.StatusFound)
	case "/saml/acs":
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		ids := append([]string(nil), s.issued...)
		s.mu.Unlock()
		a, err := s.sp.ParseResponse(r, ids)
		if err != nil {
			detail := err.Error()
			if ire, ok := err.(*saml.InvalidResponseError); ok {
				detail += ": " + ire.PrivateErr.Error()
			}
			http.Error(w, detail, http.StatusForbidden)
			return
		}
		out := spLogin{RelayState: r.PostForm.Get("RelayState"), Attributes: map[string][]string{}}
		if a.Subject != nil && a.Subject.NameID != nil {
			out.NameID = a.Subject.NameID.Value
		}
		for _, st := range a.AttributeStatements {
			for _, at := range st.Attributes {
				for _, v := range at.Values {
					out.Attributes[at.Name] = append(out.Attributes[at.Name], v.Value)
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	default:
		http.NotFound(w, r)
	}
}

// TestIdPHelperLogin proves the in-process IdP and the login driver with a
// plain crewjam/saml SP: first login with the password, second login
// through the IdP's session cookie, and the attributes the module reads.
func TestIdPHelperLogin(t *testing.T) {
	idp := startIdP(t, userAlice, userDave)
	sp := startTestSP(t, idp)
	idp.registerSPFromURL(t, "test-sp", sp.srv.URL+"/saml/metadata")

	b := newBrowser(t)
	for i, wantForm := range []bool{true, false} {
		hops := samlLogin(t, b, idp, userAlice, sp.srv.URL+"/start")
		if (hops.LoginForm != nil) != wantForm {
			t.Errorf("login %d: login form shown = %v, want %v", i, hops.LoginForm != nil, wantForm)
		}
		if hops.ACS.Status != http.StatusOK {
			t.Fatalf("login %d: ACS\n%s", i, hops.ACS)
		}
		var got spLogin
		if err := json.Unmarshal(hops.ACS.Body, &got); err != nil {
			t.Fatal(err)
		}
		if got.NameID != userAlice.Email {
			t.Errorf("NameID %q, want the email", got.NameID)
		}
		if !reflect.DeepEqual(got.Attributes[samlAttrMail], []string{userAlice.Email}) {
			t.Errorf("mail attribute %v", got.Attributes[samlAttrMail])
		}
		if !reflect.DeepEqual(got.Attributes[samlAttrAffiliation], userAlice.Groups) {
			t.Errorf("groups attribute %v, want %v", got.Attributes[samlAttrAffiliation], userAlice.Groups)
		}
		if got.RelayState != hops.AuthnRequest.Query().Get("RelayState") || got.RelayState == "" {
			t.Errorf("RelayState %q did not survive the round trip", got.RelayState)
		}
	}

	// A wrong password gets the login form again, never an assertion.
	other := newBrowser(t)
	start := other.Get(sp.srv.URL + "/start")
	form := other.Get(start.Location().String())
	h, _ := formWithField(form, "SAMLRequest")
	p := other.PostForm(idp.SSOURL, idp.URL, url.Values{
		"user": {"alice"}, "password": {"wrong"},
		"SAMLRequest": {h.Hidden()["SAMLRequest"]}, "RelayState": {h.Hidden()["RelayState"]},
	})
	if _, ok := formWithField(p, "SAMLResponse"); ok {
		t.Errorf("wrong password produced an assertion")
	}

	// A user without groups gets no groups attribute at all: the module
	// must turn that into an empty list.
	d := samlLogin(t, newBrowser(t), idp, userDave, sp.srv.URL+"/start")
	var got spLogin
	if err := json.Unmarshal(d.ACS.Body, &got); err != nil {
		t.Fatalf("dave: %v\n%s", err, d.ACS)
	}
	if _, ok := got.Attributes[samlAttrAffiliation]; ok || got.NameID != userDave.Email {
		t.Errorf("dave's assertion: %+v", got)
	}
}

func TestParseFormsAndText(t *testing.T) {
	doc := []byte(`<html><head><title>T</title><script>var x = "hidden";</script></head><body>
<p>A user at <strong>127.0.0.1</strong> asked for <code>alice@example.com</code>.</p>
<p>You&#39;ve <em>done</em> it.</p>
<form method="POST" action="">
  <input type="hidden" name="nonce" value="n1">
  <input type="hidden" name="csrf_token" value="c&amp;1">
  <input type="checkbox" name="remember" value="yes">
  <button id="approve" name="action" value="approve">Approve</button>
  <button id="deny" name="action" value="deny">Deny</button>
</form></body></html>`)
	if got, want := htmlText(doc), `T A user at 127.0.0.1 asked for alice@example.com. You've done it. Approve Deny`; got != want {
		t.Errorf("text %q\nwant %q", got, want)
	}
	forms := parseForms(doc)
	if len(forms) != 1 || forms[0].Method != "post" || forms[0].Control("approve") == nil {
		t.Fatalf("forms %+v", forms)
	}
	want := url.Values{"nonce": {"n1"}, "csrf_token": {"c&1"}, "action": {"approve"}}
	if got := forms[0].Values("approve"); !reflect.DeepEqual(got, want) {
		t.Errorf("values %v, want %v", got, want)
	}
}
