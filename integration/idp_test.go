package integration

import (
	"testing"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// The attribute names crewjam/saml's IdP sends the email and groups under.
const (
	samlAttrMail        = testbed.SAMLAttrMail
	samlAttrAffiliation = testbed.SAMLAttrAffiliation
)

// idpUser is an account at the test IdP.
type idpUser = testbed.IdPUser

var (
	userAlice = idpUser{Name: "alice", Password: "alice-password", Email: "alice@example.com",
		Groups: []string{"engineering", "consoleme-admins"}}
	// userDave has no groups: the module must still mint a list ([]).
	userDave = idpUser{Name: "dave", Password: "dave-password", Email: "dave@example.com"}
)

// testIdP is the test bed's IdP with test helpers.
type testIdP struct {
	*testbed.IdP
	log *syncBuffer
}

// startIdP starts an IdP on 127.0.0.1 that signs with a shared key and
// knows users; it stops when the test ends. Service providers are
// registered later with registerSP, because the module's metadata only
// exists once Caddy runs.
func startIdP(t testing.TB, users ...idpUser) *testIdP {
	t.Helper()
	kp := sharedKeyPair(t, "test-idp").KeyPair
	logs := &syncBuffer{}
	p, err := testbed.StartIdP(testbed.IdPOptions{KeyPair: &kp, Log: logs, Users: users})
	if err != nil {
		t.Fatalf("starting the IdP: %v", err)
	}
	t.Cleanup(func() {
		p.Close()
		if t.Failed() && logs.String() != "" {
			t.Logf("IdP log:\n%s", logs.String())
		}
	})
	return &testIdP{IdP: p, log: logs}
}

// registerSPFromURL fetches a service provider's metadata (e.g. the
// module's GET /saml/metadata) and registers it.
func (p *testIdP) registerSPFromURL(t testing.TB, name, metadataURL string) []byte {
	t.Helper()
	md, err := p.RegisterSPFromURL(name, metadataURL)
	if err != nil {
		t.Fatalf("%v\nIdP log:\n%s", err, p.log.String())
	}
	return md
}
