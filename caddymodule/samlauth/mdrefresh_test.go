package samlauth

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// TestSignedMetadataRefreshKeepsLastGood: a refresh that downloads
// metadata changed after signing keeps the last good copy and says so
// once at warn; a newly signed document replaces it. Unsigned metadata at
// start-up leaves the provider without metadata, as an unreachable URL
// does.
func TestSignedMetadataRefreshKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	idp := samltest.NewIdP(t, dir, "idp")
	fed := samltest.NewKeyPair(t, dir, "federation")
	agg := signableAggregate(t, idp)
	signed := signMetadata(t, agg, fed.Key, fed.Cert, signOpts{})
	srv := newMetadataServer(t, agg) // unsigned first
	cfg := spConfig(t, "")
	cfg.IDPMetadataFile, cfg.IDPMetadataURL, cfg.IDPEntityID = "", srv.URL, samltest.IdPEntityID
	cfg.IDPMetadataSigningCerts = []string{fed.CertFile}
	cfg.IDPMetadataRefresh = 20 * time.Millisecond
	p := mustNew(t, cfg)
	p.RetryFirst, p.RetryMax = time.Millisecond, 5*time.Millisecond
	logger, logs := observedLogger()
	p.logger = logger
	runProvider(t, p)

	waitFor(t, "retries", func() bool { return srv.fetches.Load() >= 4 })
	if p.Loaded() {
		t.Fatal("unsigned metadata loaded")
	}
	if _, err := p.AuthnRequest(samltest.SPBaseURL, "relay"); !errors.Is(err, ErrNoMetadata) {
		t.Errorf("AuthnRequest without trusted metadata: %v, want ErrNoMetadata", err)
	}
	refusals := func() int { return logs.FilterMessage("IdP metadata refused; keeping the last good copy").Len() }
	if n := refusals(); n != 1 {
		t.Errorf("%d refusal warnings for the same unsigned document, want 1", n)
	}

	srv.body.Store(signed)
	waitFor(t, "the signed metadata", p.Loaded)
	expectTrusted(t, p, nil)

	srv.body.Store(bytes.ReplaceAll(signed, []byte(samltest.IdPSSOURL), []byte(evilSSO)))
	n := srv.fetches.Load()
	waitFor(t, "refreshes of the tampered copy", func() bool { return srv.fetches.Load() >= n+4 })
	expectTrusted(t, p, nil)
	if n := refusals(); n != 2 {
		t.Errorf("%d refusal warnings, want 2 (unsigned once, tampered once)", n)
	}
	w := logs.FilterMessage("IdP metadata refused; keeping the last good copy").All()
	if last := w[len(w)-1]; !strings.Contains(fmt.Sprint(last.ContextMap()["error"]), "changed after signing") || last.ContextMap()["have_good_copy"] != true {
		t.Errorf("warning %v", last.ContextMap())
	}

	// The federation signs a new aggregate: it is picked up.
	moved := bytes.ReplaceAll(agg, []byte(samltest.IdPSSOURL), []byte("https://idp.example.com/sso2"))
	srv.body.Store(signMetadata(t, moved, fed.Key, fed.Cert, signOpts{}))
	waitFor(t, "the new aggregate", func() bool {
		md := p.current()
		return md != nil && md.IDPSSODescriptors[0].SingleSignOnServices[0].Location == "https://idp.example.com/sso2"
	})
}

// TestSeedNeedsTheSameTrust: a reload does not carry metadata over to a
// provider that trusts other signing certificates or picks another IdP.
func TestSeedNeedsTheSameTrust(t *testing.T) {
	dir := t.TempDir()
	idp := samltest.NewIdP(t, dir, "idp")
	fed := samltest.NewKeyPair(t, dir, "federation")
	other := samltest.NewKeyPair(t, dir, "other")
	loaded, err := loadSigned(t, signMetadata(t, signableAggregate(t, idp), fed.Key, fed.Cert, signOpts{}), fed.CertFile)
	expectTrusted(t, loaded, err)
	cfg := spConfig(t, "")
	cfg.IDPMetadataFile, cfg.IDPMetadataURL, cfg.IDPEntityID = "", "https://fed.example.org/md.xml", samltest.IdPEntityID
	cfg.IDPMetadataSigningCerts = []string{fed.CertFile}
	prev := mustNew(t, cfg)
	prev.idp.Store(loaded.idp.Load())
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want bool
	}{
		{"same trust", func(*Config) {}, true},
		{"other certificate", func(c *Config) { c.IDPMetadataSigningCerts = []string{other.CertFile} }, false},
		{"no certificate", func(c *Config) { c.IDPMetadataSigningCerts = nil }, false},
		{"other IdP", func(c *Config) { c.IDPEntityID = fedOtherIdP }, false},
	} {
		c := cfg
		tc.edit(&c)
		next := mustNew(t, c)
		next.Seed(prev)
		if next.Loaded() != tc.want {
			t.Errorf("%s: seeded %v, want %v", tc.name, next.Loaded(), tc.want)
		}
	}
}

// TestSigningCertErrors: New names idp_metadata_signing_cert when an entry
// is empty, missing, or holds no certificate.
func TestSigningCertErrors(t *testing.T) {
	dir := t.TempDir()
	idp := samltest.NewIdP(t, dir, "idp")
	noCert := samltest.WriteFile(t, dir, "key-only.pem", mustRead(t, idp.KeyFile))
	for _, tc := range []struct {
		entry, want string
	}{
		{" ", "idp_metadata_signing_cert: empty entry"},
		{filepath.Join(dir, "missing.pem"), "idp_metadata_signing_cert: open"},
		{noCert, "idp_metadata_signing_cert: " + noCert + ": no PEM CERTIFICATE block"},
		{"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "idp_metadata_signing_cert: PEM text"},
	} {
		cfg := spConfig(t, idp.MetadataFile(t, dir))
		cfg.IDPMetadataSigningCerts = []string{tc.entry}
		if _, err := New(cfg, nil); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.entry, err, tc.want)
		}
	}
	// The key's contents are never quoted.
	cfg := spConfig(t, idp.MetadataFile(t, dir))
	cfg.IDPMetadataSigningCerts = []string{noCert}
	if _, err := New(cfg, nil); err == nil || strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("error %v", err)
	}
}

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bigAggregate is a signed aggregate of about size bytes: the test IdP
// among as many other IdPs as it takes.
func bigAggregate(t testing.TB, size int) (doc []byte, fed *samltest.KeyPair) {
	t.Helper()
	dir := t.TempDir()
	idp := samltest.NewIdP(t, dir, "idp")
	fed = samltest.NewKeyPair(t, dir, "federation")
	member := samltest.Descriptor(idp.Cert)
	var b bytes.Buffer
	b.WriteString(`<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" Name="big">` + "\n")
	for i := 0; b.Len() < size; i++ {
		member.EntityID = fmt.Sprintf("https://idp%d.example.org/idp", i)
		b.Write(samltest.MarshalMetadata(t, member))
		b.WriteString("\n")
	}
	b.Write(samltest.Metadata(t, idp.Cert))
	b.WriteString("\n</md:EntitiesDescriptor>\n")
	return signMetadata(t, b.Bytes(), fed.Key, fed.Cert, signOpts{}), fed
}

// TestSignedAggregateMemory checks a 20 MB signed aggregate and logs what
// that costs in memory: the peak heap over the document itself, sampled
// while it is checked and read (no assertion on time or bytes beyond
// staying well under the size of a DOM of the document).
func TestSignedAggregateMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 20 MB aggregate")
	}
	doc, fed := bigAggregate(t, 23<<20)
	file := samltest.WriteFile(t, t.TempDir(), "big.xml", doc)
	doc = nil
	cfg := spConfig(t, file)
	cfg.IDPEntityID = samltest.IdPEntityID
	cfg.IDPMetadataSigningCerts = []string{fed.CertFile}

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	p, err := New(cfg, nil)
	close(stop)
	<-sampled
	expectTrusted(t, p, err)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	fi, _ := os.Stat(file)
	over := int64(peak.Load()) - int64(base.HeapAlloc)
	t.Logf("signed aggregate of %.1f MB: peak heap %.1f MB over the baseline, %.1f MB allocated in all",
		float64(fi.Size())/(1<<20), float64(over)/(1<<20), float64(after.TotalAlloc-base.TotalAlloc)/(1<<20))
	if over > 4*fi.Size() {
		t.Errorf("peak heap %d bytes for a document of %d", over, fi.Size())
	}
}
