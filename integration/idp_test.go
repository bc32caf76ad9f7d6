package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/crewjam/saml/samlidp"
)

// Attribute names of github.com/crewjam/saml's DefaultAssertionMaker
// (identity_provider.go, v0.5.1): the user's email goes out as "mail" and
// the user's groups, one value each, as "eduPersonAffiliation". The NameID
// is the user's email too (samlidp session.go sets NameID to user.Email),
// with the transient format.
const (
	samlAttrMail        = "urn:oid:0.9.2342.19200300.100.1.3"
	samlAttrAffiliation = "urn:oid:1.3.6.1.4.1.5923.1.1.1.1"
)

// idpUser is an account at the test IdP.
type idpUser struct {
	Name     string // login name at the IdP
	Password string
	Email    string
	Groups   []string
}

var (
	userAlice = idpUser{Name: "alice", Password: "alice-password", Email: "alice@example.com",
		Groups: []string{"engineering", "consoleme-admins"}}
	// userDave has no groups: the module must still mint a list ([]).
	userDave = idpUser{Name: "dave", Password: "dave-password", Email: "dave@example.com"}
)

// testIdP is a crewjam/saml samlidp server on 127.0.0.1.
type testIdP struct {
	URL         string // base URL, http://127.0.0.1:<port>
	MetadataURL string
	SSOURL      string
	Server      *samlidp.Server

	log *syncBuffer
}

// startIdP starts an IdP that signs with a generated key and knows users.
// Service providers are registered later with registerSP, because the
// module's metadata only exists once Caddy runs.
func startIdP(t testing.TB, users ...idpUser) *testIdP {
	t.Helper()
	kp := sharedKeyPair(t, "test-idp")

	// The IdP must know its own URL before it serves, so listen first.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse("http://" + l.Addr().String())
	p := &testIdP{URL: base.String(), MetadataURL: base.String() + "/metadata", SSOURL: base.String() + "/sso", log: &syncBuffer{}}
	srv, err := samlidp.New(samlidp.Options{
		URL:         *base,
		Key:         kp.Key,
		Certificate: kp.Cert,
		Store:       &samlidp.MemoryStore{},
		Logger:      log.New(p.log, "idp: ", log.Lmicroseconds),
	})
	if err != nil {
		t.Fatalf("creating IdP: %v", err)
	}
	p.Server = srv
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener.Close()
	hs.Listener = l
	hs.Start()
	t.Cleanup(func() {
		hs.Close()
		if t.Failed() && p.log.String() != "" {
			t.Logf("IdP log:\n%s", p.log.String())
		}
	})

	for _, u := range users {
		p.addUser(t, u)
	}
	return p
}

// addUser creates an account through samlidp's HTTP API, which hashes the
// password.
func (p *testIdP) addUser(t testing.TB, u idpUser) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"name":     u.Name,
		"password": u.Password,
		"email":    u.Email,
		"groups":   u.Groups,
	})
	p.put(t, "/users/"+u.Name, body)
}

// registerSP tells the IdP about a service provider by its metadata XML.
func (p *testIdP) registerSP(t testing.TB, name string, metadata []byte) {
	t.Helper()
	p.put(t, "/services/"+name, metadata)
}

// registerSPFromURL fetches a service provider's metadata (e.g. the
// module's GET /saml/metadata) and registers it.
func (p *testIdP) registerSPFromURL(t testing.TB, name, metadataURL string) []byte {
	t.Helper()
	resp, err := http.Get(metadataURL)
	if err != nil {
		t.Fatalf("fetching SP metadata: %v", err)
	}
	defer resp.Body.Close()
	md, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", metadataURL, resp.StatusCode, md)
	}
	p.registerSP(t, name, md)
	return md
}

func (p *testIdP) put(t testing.TB, path string, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, p.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT %s%s: %d %s\nIdP log:\n%s", p.URL, path, resp.StatusCode, b, p.log.String())
	}
}

// String names the IdP in failure messages.
func (p *testIdP) String() string { return fmt.Sprintf("IdP at %s", p.URL) }
