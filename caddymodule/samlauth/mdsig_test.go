package samlauth

import (
	"bytes"
	"crypto"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	dsig "github.com/russellhaering/goxmldsig"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// evilSSO is where a tampered metadata sends the browser.
const evilSSO = "https://evil.example/sso"

// signableAggregate is federationAggregate without its placeholder
// signature: the test IdP among another IdP and an SP, nested.
func signableAggregate(t testing.TB, idp *samltest.IdP) []byte {
	t.Helper()
	agg := federationAggregate(t, samltest.Descriptor(idp.Cert), true)
	return regexp.MustCompile(`<ds:Signature.*</ds:Signature>\n`).ReplaceAll(agg, nil)
}

// loadSigned makes a Provider of the metadata doc (as a file) picking the
// test IdP, trusting the signing certificates certs.
func loadSigned(t testing.TB, doc []byte, certs ...string) (*Provider, error) {
	t.Helper()
	cfg := spConfig(t, samltest.WriteFile(t, t.TempDir(), "metadata.xml", doc))
	cfg.IDPEntityID = samltest.IdPEntityID
	cfg.IDPMetadataSigningCerts = certs
	return New(cfg, nil)
}

// expectTrusted checks that p loaded the test IdP with its own SSO URL.
func expectTrusted(t testing.TB, p *Provider, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	md := p.current()
	if md == nil || md.EntityID != samltest.IdPEntityID {
		t.Fatalf("IdP %v", md)
	}
	if loc := md.IDPSSODescriptors[0].SingleSignOnServices[0].Location; loc != samltest.IdPSSOURL {
		t.Errorf("SSO URL %q", loc)
	}
}

// TestSignedMetadataAccepted: metadata signed by a pinned key is trusted,
// whatever the algorithm choice, key type, place of the signature or the
// form the certificate is given in.
func TestSignedMetadataAccepted(t *testing.T) {
	dir := t.TempDir()
	idp := samltest.NewIdP(t, dir, "idp")
	fed := samltest.NewKeyPair(t, dir, "federation")
	old := samltest.NewKeyPair(t, dir, "federation-old")
	ecKey, ecCert := newECDSAPair(t)
	agg := signableAggregate(t, idp)
	both := samltest.WriteFile(t, dir, "both.pem", []byte(pemCert(old.Cert)+pemCert(fed.Cert)))

	for _, tc := range []struct {
		name  string
		doc   []byte
		certs []string
	}{
		{"aggregate, exclusive C14N, RSA-SHA256", signMetadata(t, agg, fed.Key, fed.Cert, signOpts{}), []string{fed.CertFile}},
		{"signature last", signMetadata(t, agg, fed.Key, fed.Cert, signOpts{last: true}), []string{fed.CertFile}},
		{"Canonical XML 1.0", signMetadata(t, agg, fed.Key, fed.Cert, signOpts{inclusive: true}), []string{fed.CertFile}},
		{"RSA-SHA512, SHA-512 digest", signMetadata(t, agg, fed.Key, fed.Cert,
			signOpts{method: dsig.RSASHA512SignatureMethod, hash: crypto.SHA512}), []string{fed.CertFile}},
		{"ECDSA P-256", signMetadata(t, agg, ecKey, ecCert, signOpts{method: dsig.ECDSASHA256SignatureMethod}), []string{pemCert(ecCert)}},
		{"single EntityDescriptor", signMetadata(t, samltest.Metadata(t, idp.Cert), fed.Key, fed.Cert, signOpts{}), []string{fed.CertFile}},
		{"certificate as PEM text", signMetadata(t, agg, fed.Key, fed.Cert, signOpts{}), []string{pemCert(fed.Cert)}},
		{"rollover: a file of two certificates", signMetadata(t, agg, fed.Key, fed.Cert, signOpts{}), []string{both}},
		{"rollover: two entries", signMetadata(t, agg, fed.Key, fed.Cert, signOpts{}), []string{old.CertFile, fed.CertFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := loadSigned(t, tc.doc, tc.certs...)
			expectTrusted(t, p, err)
		})
	}
}

// TestSignedMetadataRefused: unsigned metadata, a signature by another
// key, a change after signing, signature wrapping, weak algorithms and
// references elsewhere are all refused, saying why.
func TestSignedMetadataRefused(t *testing.T) {
	dir := t.TempDir()
	idp := samltest.NewIdP(t, dir, "idp")
	fed := samltest.NewKeyPair(t, dir, "federation")
	other := samltest.NewKeyPair(t, dir, "other")
	agg := signableAggregate(t, idp)
	signed := signMetadata(t, agg, fed.Key, fed.Cert, signOpts{})
	if _, err := loadSigned(t, signed, fed.CertFile); err != nil {
		t.Fatalf("the untouched document is refused: %v", err)
	}
	sigRE := regexp.MustCompile(`(?s)<ds:Signature .*</ds:Signature>`)
	sig := sigRE.Find(signed)
	body := bytes.TrimPrefix(signed, []byte(`<?xml version="1.0"?>`))
	evilIdP := bytes.ReplaceAll(samltest.Metadata(t, idp.Cert), []byte(samltest.IdPSSOURL), []byte(evilSSO))
	rootID := regexp.MustCompile(`ID="([^"]+)"`).FindSubmatch(signed)[1]
	wrapper := `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"`

	for _, tc := range []struct {
		name string
		doc  []byte
		want string
	}{
		{"unsigned", agg, "not signed"},
		{"signed by another key", signMetadata(t, agg, other.Key, other.Cert, signOpts{}), "not made by the key"},
		{"an SSO URL changed after signing", bytes.ReplaceAll(signed, []byte(samltest.IdPSSOURL), []byte(evilSSO)), "changed after signing"},
		{"an entity added after signing", bytes.Replace(signed, []byte("</ds:Signature>"), append([]byte("</ds:Signature>"), evilIdP...), 1),
			"changed after signing"},
		{"wrapped: the signed aggregate inside an unsigned root", []byte(wrapper + ">" + string(evilIdP) + string(body) + "</md:EntitiesDescriptor>"),
			"not signed"},
		{"wrapped: the signature moved to the new root", []byte(wrapper + ` ID="` + string(rootID) + `">` + string(sig) + string(evilIdP) +
			string(sigRE.ReplaceAll(body, nil)) + "</md:EntitiesDescriptor>"), "changed after signing"},
		{"SHA-1", signMetadata(t, agg, fed.Key, fed.Cert, signOpts{hash: crypto.SHA1}), "is not accepted (want"},
		{"RSA-SHA1", signMetadata(t, agg, fed.Key, fed.Cert, signOpts{method: dsig.RSASHA1SignatureMethod}), "is not accepted (want"},
		{"Reference to another ID", bytes.Replace(signed, []byte(`URI="#`), []byte(`URI="#x`), 1), "not to the root"},
		{"DTD added", append([]byte(`<!DOCTYPE md:EntitiesDescriptor>`), body...), "DTD"},
		{"expired", signMetadata(t, bytes.Replace(agg, []byte("2099-01-01"), []byte("2001-01-01"), 1), fed.Key, fed.Cert, signOpts{}), "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := loadSigned(t, tc.doc, fed.CertFile)
			if err == nil {
				t.Fatalf("accepted; IdP SSO at %s", p.current().IDPSSODescriptors[0].SingleSignOnServices[0].Location)
			}
			if !errors.Is(err, errMetadataRefused) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "idp_metadata_file: ") {
				t.Errorf("error %q, want a refusal about %q", err, tc.want)
			}
		})
	}
}

// TestMetadataSignedBySimpleSAMLphp: metadata signed the way
// SimpleSAMLphp signs it (xmlseclibs over libxml2, Exclusive C14N) is
// trusted, and the same document changed afterwards is not. (xmlseclibs
// signs the SignedInfo before inserting it, so its Canonical XML 1.0
// signatures miss the namespaces they inherit; it refuses them itself.)
func TestMetadataSignedBySimpleSAMLphp(t *testing.T) {
	php := needXMLSecLibs(t)
	dir := t.TempDir()
	idp := samltest.NewIdP(t, dir, "idp")
	fed := samltest.NewKeyPair(t, dir, "federation")
	doc := samltest.WriteFile(t, dir, "aggregate.xml", signableAggregate(t, idp))
	for _, c14n := range []string{"exclusive"} {
		t.Run(c14n, func(t *testing.T) {
			signed := phpScript(t, php, phpSign, doc, fed.KeyFile, fed.CertFile, c14n)
			p, err := loadSigned(t, signed, fed.CertFile)
			expectTrusted(t, p, err)
			if _, err := loadSigned(t, bytes.ReplaceAll(signed, []byte(samltest.IdPSSOURL), []byte(evilSSO)), fed.CertFile); !errors.Is(err, errMetadataRefused) {
				t.Errorf("tampered: %v", err)
			}
		})
	}
}

// TestStreamC14NMatchesLibxml2: streamC14N gives libxml2's canonical
// forms, also where goxmldsig's differ (attributes are sorted by
// namespace URI, not prefix).
func TestStreamC14NMatchesLibxml2(t *testing.T) {
	php := needXMLSecLibs(t)
	docs := map[string]string{"attribute order": `<r xmlns:b="urn:a" xmlns:a="urn:b"><e a:x="1" b:y="2" xml:lang="en" z="0" b:a="3"/></r>`}
	for k, v := range c14nDocuments {
		docs[k] = v
	}
	for name, doc := range docs {
		file := samltest.WriteFile(t, t.TempDir(), "doc.xml", []byte(doc))
		for _, mode := range []string{"exclusive", "inclusive"} {
			var got bytes.Buffer
			if err := streamC14N(&got, []byte(doc), c14nMode{inclusive: mode == "inclusive"}, -1, -1); err != nil {
				t.Fatal(err)
			}
			if want := phpScript(t, php, phpC14N, file, mode); got.String() != string(want) {
				t.Errorf("%s, %s:\nstreamC14N: %s\nlibxml2:    %s", name, mode, got.String(), want)
			}
		}
	}
}

// TestMetadataValidUntil: with or without a signing certificate, metadata
// is refused once a validUntil on the path to the IdP is past (the root,
// an EntitiesDescriptor holding it, its own); an expired branch elsewhere
// does not matter. Metadata that expires while loaded stops being used.
func TestMetadataValidUntil(t *testing.T) {
	dir := t.TempDir()
	idp := samltest.NewIdP(t, dir, "idp")
	agg := signableAggregate(t, idp)
	past := []byte(`validUntil="2001-01-01T00:00:00Z"`)
	ours := regexp.MustCompile(`(?s)<EntityDescriptor [^>]*entityID="` + samltest.IdPEntityID + `".*?</EntityDescriptor>`).Find(agg)
	for _, tc := range []struct {
		name    string
		doc     []byte
		refused bool
	}{
		{"root expired", bytes.Replace(agg, []byte(`validUntil="2099-01-01T00:00:00Z"`), past, 1), true},
		{"our EntitiesDescriptor expired", bytes.Replace(agg, ours,
			[]byte(`<md:EntitiesDescriptor Name="inner" `+string(past)+`>`+string(ours)+`</md:EntitiesDescriptor>`), 1), true},
		{"the entity expired", bytes.Replace(agg, ours, regexp.MustCompile(`validUntil="[^"]*"`).ReplaceAll(ours, past), 1), true},
		{"another branch expired", bytes.Replace(agg, []byte(`Name="members"`), append([]byte(`Name="members" `), past...), 1), false},
		{"in the future", agg, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := loadSigned(t, tc.doc)
			if tc.refused {
				if !errors.Is(err, errMetadataRefused) || !strings.Contains(err.Error(), "expired at 2001-01-01T00:00:00Z") {
					t.Errorf("error %v, want expired", err)
				}
				return
			}
			expectTrusted(t, p, err)
		})
	}

	// Loaded metadata that expires is no longer used, and that is said once.
	p, err := loadSigned(t, agg)
	expectTrusted(t, p, err)
	logger, logs := observedLogger()
	p.logger = logger
	p.now = func() time.Time { return time.Now().Add(72 * time.Hour) } // past the entity's 48 h
	if p.Loaded() || p.IDPEntityID() != "" {
		t.Error("expired metadata still loaded")
	}
	if _, err := p.AuthnRequest(samltest.SPBaseURL, "relay"); !errors.Is(err, ErrNoMetadata) {
		t.Errorf("AuthnRequest with expired metadata: %v", err)
	}
	if n := logs.FilterMessage("IdP metadata expired; logins wait for fresh metadata").Len(); n != 1 {
		t.Errorf("expiry logged %d times, want once", n)
	}
}

// observedLogger is a logger whose entries (debug and up) the test reads.
func observedLogger() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}
