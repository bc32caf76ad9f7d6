package samlauth

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// comparableMetadata is SP metadata with what may differ between two
// fetches taken out: the validUntil attributes (now + 48 h) and
// AuthnRequestsSigned.
func comparableMetadata(t *testing.T, b []byte) string {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		t.Fatal(err)
	}
	for _, el := range append([]*etree.Element{doc.Root()}, doc.Root().FindElements("//*")...) {
		el.RemoveAttr("validUntil")
		el.RemoveAttr("AuthnRequestsSigned")
	}
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSPMetadataIndependentOfIdPMetadata: the SP metadata fetched before
// the IdP metadata has loaded publishes the SP certificate for signing and
// for encryption, and says the same as the metadata fetched after the IdP
// metadata (with WantAuthnRequestsSigned) loaded, but for
// AuthnRequestsSigned, which follows the IdP's wish: an IdP that imported
// the first can check the signed requests made later.
func TestSPMetadataIndependentOfIdPMetadata(t *testing.T) {
	dir := t.TempDir()
	idp := samltest.NewIdP(t, dir, "idp")
	ed := samltest.Descriptor(idp.Cert)
	yes := true
	ed.IDPSSODescriptors[0].WantAuthnRequestsSigned = &yes
	srv := newMetadataServer(t, samltest.MarshalMetadata(t, ed))
	srv.fail.Store(true) // not reachable yet
	cfg := spConfig(t, "")
	cfg.IDPMetadataFile, cfg.IDPMetadataURL = "", srv.URL
	p := mustNew(t, cfg)
	p.RetryFirst, p.RetryMax = time.Millisecond, 5*time.Millisecond
	runProvider(t, p)
	waitFor(t, "a failed fetch", func() bool { return srv.fetches.Load() >= 1 })

	before, err := p.Metadata(samltest.SPBaseURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, use := range []string{"signing", "encryption"} {
		if !bytes.Contains(before, []byte(`use="`+use+`"`)) {
			t.Errorf("metadata before the IdP's lacks the %s key:\n%s", use, before)
		}
	}
	if !regexp.MustCompile(`AuthnRequestsSigned="false"`).Match(before) {
		t.Errorf("metadata before the IdP's: AuthnRequestsSigned not false:\n%s", before)
	}

	srv.fail.Store(false)
	waitFor(t, "the IdP metadata", p.Loaded)
	after, err := p.Metadata(samltest.SPBaseURL)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(after, []byte(`AuthnRequestsSigned="true"`)) {
		t.Errorf("metadata after the IdP's (WantAuthnRequestsSigned): AuthnRequestsSigned not true:\n%s", after)
	}
	if b, a := comparableMetadata(t, before), comparableMetadata(t, after); b != a {
		t.Errorf("the SP metadata changed when the IdP metadata loaded:\nbefore:\n%s\nafter:\n%s", b, a)
	}
	// The file an administrator imports says the same.
	file, err := SPMetadata(cfg, samltest.SPBaseURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f := comparableMetadata(t, file); f != comparableMetadata(t, before) {
		t.Errorf("SPMetadata differs from the live metadata:\n%s\n%s", f, comparableMetadata(t, before))
	}
}
