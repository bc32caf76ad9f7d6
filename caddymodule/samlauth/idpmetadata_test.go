package samlauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// signingCerts lists the IdP certificates p currently trusts.
func signingCerts(p *Provider) []string {
	md := p.current()
	if md == nil {
		return nil
	}
	var out []string
	for _, kd := range md.IDPSSODescriptors[0].KeyDescriptors {
		if kd.Use == "encryption" {
			continue
		}
		for _, c := range kd.KeyInfo.X509Data.X509Certificates {
			out = append(out, strings.TrimSpace(c.Data))
		}
	}
	return out
}

// metadataServer serves body, or 502 while fail is set, counting fetches
// and noting when each came.
type metadataServer struct {
	*httptest.Server
	body    atomic.Value
	fail    atomic.Bool
	fetches atomic.Int32

	mu     sync.Mutex
	stamps []time.Time
}

func newMetadataServer(t *testing.T, body []byte) *metadataServer {
	t.Helper()
	s := &metadataServer{}
	s.body.Store(body)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		s.stamps = append(s.stamps, time.Now())
		s.mu.Unlock()
		s.fetches.Add(1)
		if s.fail.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		_, _ = w.Write(s.body.Load().([]byte))
	}))
	t.Cleanup(s.Close)
	return s
}

// gaps lists the time between consecutive fetches.
func (s *metadataServer) gaps() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(s.stamps); i++ {
		out = append(out, s.stamps[i].Sub(s.stamps[i-1]))
	}
	return out
}

// runProvider starts p.Run and stops it (waiting for it) at the test's end.
func runProvider(t *testing.T, p *Provider) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// TestMetadataRotation: the metadata URL is fetched at once, refreshed, a
// failed refresh keeps the last good copy, and a rotated certificate is
// picked up live.
func TestMetadataRotation(t *testing.T) {
	dir := t.TempDir()
	certA := samltest.NewKeyPair(t, dir, "idp-a").Cert
	certB := samltest.NewKeyPair(t, dir, "idp-b").Cert
	srv := newMetadataServer(t, samltest.Metadata(t, certA))
	sp := samltest.NewKeyPair(t, dir, "sp")
	p := mustNew(t, Config{IDPMetadataURL: srv.URL, SPCert: sp.CertFile, SPKey: sp.KeyFile,
		IDPMetadataRefresh: 20 * time.Millisecond})
	p.RetryFirst, p.RetryMax = time.Millisecond, 10*time.Millisecond
	if p.Loaded() || p.IDPEntityID() != "" {
		t.Fatal("metadata loaded before Run")
	}
	runProvider(t, p)

	a := base64.StdEncoding.EncodeToString(certA.Raw)
	b := base64.StdEncoding.EncodeToString(certB.Raw)
	waitFor(t, "first fetch", func() bool { c := signingCerts(p); return len(c) == 1 && c[0] == a })
	if !p.Loaded() || p.IDPEntityID() != samltest.IdPEntityID {
		t.Errorf("Loaded %v, IDPEntityID %q", p.Loaded(), p.IDPEntityID())
	}

	// The IdP goes down: the last good copy stays.
	srv.fail.Store(true)
	n := srv.fetches.Load()
	waitFor(t, "failed refreshes", func() bool { return srv.fetches.Load() >= n+3 })
	if c := signingCerts(p); len(c) != 1 || c[0] != a {
		t.Fatalf("after failed refreshes trusting %d certs", len(c))
	}

	// It comes back announcing both certificates (rotation), then only B;
	// garbage in between is ignored too.
	srv.body.Store([]byte("<not-metadata/>"))
	srv.fail.Store(false)
	n = srv.fetches.Load()
	waitFor(t, "garbage fetched", func() bool { return srv.fetches.Load() >= n+2 })
	if c := signingCerts(p); len(c) != 1 || c[0] != a {
		t.Fatalf("after garbage trusting %d certs", len(c))
	}
	srv.body.Store(samltest.Metadata(t, certA, certB))
	waitFor(t, "rotation start", func() bool { return len(signingCerts(p)) == 2 })
	srv.body.Store(samltest.Metadata(t, certB))
	waitFor(t, "rotation end", func() bool { c := signingCerts(p); return len(c) == 1 && c[0] == b })
}

// TestMetadataNotYetLoaded: until the first fetch succeeds, the calls that
// need the IdP say so with ErrNoMetadata, New did not wait for the network,
// and the SP metadata is served anyway.
func TestMetadataNotYetLoaded(t *testing.T) {
	dir := t.TempDir()
	sp := samltest.NewKeyPair(t, dir, "sp")
	srv := newMetadataServer(t, nil)
	srv.fail.Store(true)
	p := mustNew(t, Config{IDPMetadataURL: srv.URL, SPCert: sp.CertFile, SPKey: sp.KeyFile})
	p.RetryFirst, p.RetryMax = time.Millisecond, time.Millisecond
	runProvider(t, p)
	waitFor(t, "retries", func() bool { return srv.fetches.Load() >= 3 })

	if p.Loaded() || p.IDPEntityID() != "" {
		t.Error("Loaded after failed fetches")
	}
	if _, err := p.AuthnRequest(samltest.SPBaseURL, "relay"); !errors.Is(err, ErrNoMetadata) {
		t.Errorf("AuthnRequest: %v, want ErrNoMetadata", err)
	}
	if _, err := p.Logout(samltest.SPBaseURL, "alice@example.com", ""); !errors.Is(err, ErrNoMetadata) {
		t.Errorf("Logout: %v, want ErrNoMetadata", err)
	}
	r := httptest.NewRequest(http.MethodGet, testSLO+"?SAMLResponse=x", nil)
	if err := p.ValidateLogoutResponse(r, samltest.SPBaseURL); !errors.Is(err, ErrNoMetadata) {
		t.Errorf("ValidateLogoutResponse: %v, want ErrNoMetadata", err)
	}
	if _, err := p.Metadata(samltest.SPBaseURL); err != nil {
		t.Errorf("SP metadata without the IdP's: %v", err)
	}
}

// TestRunBackoff: failures back off from RetryFirst, doubling up to
// RetryMax; Run returns when its context ends, and at once without a URL.
func TestRunBackoff(t *testing.T) {
	dir := t.TempDir()
	sp := samltest.NewKeyPair(t, dir, "sp")
	srv := newMetadataServer(t, nil)
	srv.fail.Store(true)
	p := mustNew(t, Config{IDPMetadataURL: srv.URL, SPCert: sp.CertFile, SPKey: sp.KeyFile})
	p.RetryFirst, p.RetryMax = time.Millisecond, 2*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	// Without the cap the 16th attempt would come 2^15 ms (33 s) after the
	// first, beyond waitFor's patience; with it, after some 30 ms.
	waitFor(t, "sixteen attempts", func() bool { return srv.fetches.Load() >= 16 })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	for i, g := range srv.gaps() {
		want := 2 * time.Millisecond
		if i == 0 {
			want = time.Millisecond
		}
		if g < want {
			t.Errorf("wait %d: %v, want at least %v", i, g, want)
		}
	}

	// Without a metadata URL there is nothing to keep fresh.
	q := mustNew(t, spConfig(t, samltest.NewIdP(t, dir, "idp").MetadataFile(t, dir)))
	returned := make(chan struct{})
	go func() {
		q.Run(context.Background())
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("Run without a URL did not return")
	}
}

// TestMetadataFileErrors: New refuses a metadata file that is missing, not
// metadata, or describes an IdP without a usable SSO endpoint, naming the
// setting; parseIDPMetadata says what is wrong.
func TestMetadataFileErrors(t *testing.T) {
	dir := t.TempDir()
	cert := samltest.NewKeyPair(t, dir, "x").Cert
	noSSO := samltest.WriteFile(t, dir, "nosso.xml",
		bytes.ReplaceAll(samltest.Metadata(t, cert), []byte("SingleSignOnService"), []byte("ArtifactResolutionService")))
	garbage := samltest.WriteFile(t, dir, "garbage.xml", []byte("<x/>"))
	for _, tc := range []struct {
		file, want string
	}{
		{filepath.Join(dir, "missing.xml"), "idp_metadata_file: open"},
		{garbage, "idp_metadata_file: " + garbage + ": parsing IdP metadata"},
		{noSSO, "SingleSignOnService"},
	} {
		cfg := spConfig(t, tc.file)
		if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", filepath.Base(tc.file), err, tc.want)
		}
	}
	if _, err := parseIDPMetadata([]byte("<x/>")); err == nil {
		t.Error("garbage metadata accepted")
	}
	noIDP := bytes.ReplaceAll(samltest.Metadata(t, cert), []byte("IDPSSODescriptor"), []byte("SPSSODescriptor"))
	if _, err := parseIDPMetadata(noIDP); err == nil || !strings.Contains(err.Error(), "IDPSSODescriptor") {
		t.Errorf("metadata without an IdP: %v", err)
	}
}
