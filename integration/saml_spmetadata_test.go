package integration

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth"
)

// TestSAMLSPMetadataBeforeIdPMetadata: an IdP administrator imports the
// SP metadata once, whenever they happen to fetch it. Fetched before the
// SP has loaded the IdP's metadata (the IdP's metadata URL not answering
// yet), it must already publish the SP's signing key: SimpleSAMLphp, which
// wants signed AuthnRequests (validate.authnrequest) and registers the SP
// exactly from that early copy, then accepts the signed requests the SP
// makes once the IdP metadata has loaded.
func TestSAMLSPMetadataBeforeIdPMetadata(t *testing.T) {
	ssp := startSimpleSAMLphp(t, sspConfig{Users: []idpUser{userAlice},
		Hosted: map[string]any{"validate.authnrequest": true}})
	// The IdP's metadata URL, behind a gate that answers 503 until opened.
	var open atomic.Bool
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !open.Load() {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		resp, err := http.Get(ssp.MetadataURL)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(gate.Close)

	certPath, keyPath := sharedKeyPair(t, "module-sp").writeFiles(t, t.TempDir())
	p, err := samlauth.New(samlauth.Config{IDPMetadataURL: gate.URL, SPCert: certPath, SPKey: keyPath,
		EmailAttribute: "email", GroupsAttribute: "groups"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.RetryFirst, p.RetryMax = 20e6, 100e6 // 20 ms, 100 ms
	sp := runInteropSP(t, p)
	early, err := p.Metadata(sp.URL)
	if err != nil {
		t.Fatal(err)
	}
	if p.Loaded() {
		t.Fatal("the IdP metadata loaded through a closed gate; the test proves nothing")
	}
	// Registered exactly as fetched, as an administrator imports it.
	entry := spFromMetadata(t, early)
	if entry.SigningCert == "" {
		t.Errorf("the SP metadata fetched before the IdP metadata loaded has no signing certificate:\n%s", early)
	}
	ssp.trustSPs(t, entry)

	open.Store(true)
	sp.waitLoaded(t)
	red, err := p.AuthnRequest(sp.URL, "check")
	if err != nil || !bytes.Contains([]byte(red.URL), []byte("&Signature=")) {
		t.Fatalf("the SP does not sign its requests to an IdP that wants them: %v %q", err, red.URL)
	}
	expectOK(t, sspLoginDirect(t, sp, userAlice, sp.URL+"/login"), ssp, userAlice)
}
