package samlauth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// TestConfigValidate: each faulty setting is refused with a message that
// names it, in the wording the handler has always used.
func TestConfigValidate(t *testing.T) {
	ok := Config{SPCert: "sp.crt", SPKey: "sp.key", IDPMetadataFile: "idp.xml"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.IDPMetadataRefresh = -time.Second }, "idp_metadata_refresh: must be positive"},
		{func(c *Config) { c.ClockSkew = -time.Second }, "clock_skew: must be between 0 and 1h"},
		{func(c *Config) { c.ClockSkew = 61 * time.Minute }, "clock_skew: must be between 0 and 1h"},
		{func(c *Config) { c.DataCiphers = []string{"aes128-gcm", "rc4"} }, `data_ciphers: unknown cipher "rc4"`},
		{func(c *Config) { c.DataCiphers = []string{"aes128-gcm", "aes128-gcm"} }, `data_ciphers: "aes128-gcm" given twice`},
		{func(c *Config) { c.NameIDFormat = "x509" }, `name_id_format: unknown format "x509" (want unspecified, email, persistent or transient)`},
		{func(c *Config) { c.SPCert = "" }, "sp_cert: required"},
		{func(c *Config) { c.SPKey = "" }, "sp_key: required"},
		{func(c *Config) { c.IDPMetadataURL = "https://idp.example.com/md" }, "idp_metadata_url and idp_metadata_file: give only one"},
		{func(c *Config) { c.IDPMetadataFile, c.IDPMetadataURL = "", "not a url" }, `idp_metadata_url: "not a url" is not an absolute http or https URL`},
		{func(c *Config) { c.IDPMetadataFile, c.IDPMetadataURL = "", "ftp://idp.example.com/md" }, "idp_metadata_url: "},
		{func(c *Config) { c.IDPMetadataFile, c.IDPMetadataURL = "", "https:///md" }, "idp_metadata_url: "},
		{func(c *Config) { c.IDPMetadataFile = "" }, "idp_metadata_url or idp_metadata_file: one is required"},
	} {
		c := ok
		tc.edit(&c)
		if err := c.Validate(); err == nil || err.Error() != tc.want && !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", c, err, tc.want)
		}
	}
	for _, f := range []struct {
		setting string
		want    saml.NameIDFormat
	}{
		{"", saml.UnspecifiedNameIDFormat}, {"unspecified", saml.UnspecifiedNameIDFormat},
		{"email", saml.EmailAddressNameIDFormat}, {"persistent", saml.PersistentNameIDFormat},
		{"transient", saml.TransientNameIDFormat},
	} {
		c := ok
		c.NameIDFormat = f.setting
		if got, err := c.nameIDFormat(); err != nil || got != f.want || c.Validate() != nil {
			t.Errorf("name_id_format %q: %q, %v", f.setting, got, err)
		}
	}
	if c := ok; c.refresh() != DefaultMetadataRefresh {
		t.Errorf("default refresh %v", c.refresh())
	}
}

// TestNew: New loads the key pair and the metadata file, refuses what
// Validate refuses and key pairs that are unreadable or do not match, and
// widens (never narrows) the library's tolerances.
func TestNew(t *testing.T) {
	dir := t.TempDir()
	sp := samltest.NewKeyPair(t, dir, "sp")
	otherCert := samltest.NewKeyPair(t, dir, "other").CertFile
	certPath, keyPath := sp.CertFile, sp.KeyFile
	md := samltest.NewIdP(t, dir, "idp").MetadataFile(t, dir)
	garbage := samltest.WriteFile(t, dir, "garbage", []byte("not pem"))
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{SPCert: certPath, SPKey: keyPath}, "idp_metadata_url or idp_metadata_file"},
		{Config{SPCert: garbage, SPKey: keyPath, IDPMetadataFile: md}, "sp_cert: " + garbage + ": no PEM CERTIFICATE block"},
		{Config{SPCert: filepath.Join(dir, "missing"), SPKey: keyPath, IDPMetadataFile: md}, "sp_cert: open"},
		{Config{SPCert: certPath, SPKey: garbage, IDPMetadataFile: md}, "sp_key: " + garbage + ": no PEM private key block"},
		{Config{SPCert: otherCert, SPKey: keyPath, IDPMetadataFile: md}, "sp_key: does not match the public key of sp_cert"},
	} {
		if _, err := New(tc.cfg, nil); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}

	p, err := New(Config{SPCert: certPath, SPKey: keyPath, IDPMetadataFile: md, EntityID: "urn:sp",
		ClockSkew: 7 * time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Loaded() || p.IDPEntityID() != samltest.IdPEntityID || p.cert == nil || p.key == nil {
		t.Errorf("provider %+v", p)
	}
	if p.RetryFirst != time.Second || p.RetryMax != time.Minute || p.HTTPClient == nil {
		t.Errorf("retry %v..%v, client %v", p.RetryFirst, p.RetryMax, p.HTTPClient)
	}
	if skew, delay := p.Tolerances(); skew != 7*time.Minute || delay != 90*time.Second+7*time.Minute {
		t.Errorf("tolerances %v, %v after clock_skew 7m", skew, delay)
	}
	q, err := New(Config{SPCert: certPath, SPKey: keyPath, IDPMetadataFile: md, ClockSkew: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, d := q.Tolerances(); s != time.Second || d != 90*time.Second+time.Second {
		t.Errorf("clock_skew 1s after another provider's 7m: tolerances %v, %v", s, d)
	}
	if _, err := New(Config{SPCert: certPath, SPKey: keyPath, IDPMetadataFile: md, ClockSkew: 2 * time.Hour}, nil); err == nil ||
		!strings.HasPrefix(err.Error(), "clock_skew: must be between 0 and 1h") {
		t.Errorf("clock_skew 2h: %v", err)
	}
}

// TestLoadKeys: certificates and keys in every supported PEM form load,
// other blocks before them are skipped, and errors name the file without
// quoting the key.
func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	sp := samltest.NewKeyPair(t, dir, "sp")
	key, cert := sp.Key, sp.Cert
	certPEM, _ := os.ReadFile(sp.CertFile)
	keyPEM, _ := os.ReadFile(sp.KeyFile)

	bundle := samltest.WriteFile(t, dir, "bundle.pem", append(append([]byte{}, keyPEM...), certPEM...))
	if c, err := LoadCertificate(bundle); err != nil || !c.Equal(cert) {
		t.Errorf("LoadCertificate(key then cert) = %v", err)
	}
	if k, err := LoadPrivateKey(bundle); err != nil || !publicKeysEqual(k.Public(), &key.PublicKey) {
		t.Errorf("LoadPrivateKey(bundle) = %v", err)
	}
	for _, tc := range []struct{ name, pem string }{
		{"pkcs1", pemKey(t, "RSA PRIVATE KEY", key)},
		{"sec1", pemKey(t, "EC PRIVATE KEY", nil)},
		{"pkcs8-ec", pemKey(t, "PRIVATE KEY", nil)},
	} {
		p := samltest.WriteFile(t, dir, tc.name, []byte(tc.pem))
		if k, err := LoadPrivateKey(p); err != nil || k == nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	for _, tc := range []struct{ name, pem, want string }{
		{"bad-pkcs1", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", "invalid PKCS#1 key"},
		{"bad-sec1", "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", "invalid SEC 1 key"},
		{"bad-pkcs8", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "invalid PKCS#8 key"},
		{"ed25519", pemKey(t, "ED25519", nil), "is not supported"},
		{"cert-only", string(certPEM), "no PEM private key block"},
	} {
		p := samltest.WriteFile(t, dir, tc.name, []byte(tc.pem))
		_, err := LoadPrivateKey(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) || strings.Contains(err.Error(), "AAAA") {
			t.Errorf("%s: %v, want %q naming the file", tc.name, err, tc.want)
		}
	}
	badCert := samltest.WriteFile(t, dir, "bad.crt", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	if _, err := LoadCertificate(badCert); err == nil || !strings.Contains(err.Error(), badCert) {
		t.Errorf("bad certificate: %v", err)
	}
	if _, err := LoadCertificate(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing certificate loaded")
	}
	if _, err := LoadPrivateKey(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing key loaded")
	}
}

// TestDecodeBase64Loose: line breaks and spaces inside are ignored; what is
// not base64 is an error.
func TestDecodeBase64Loose(t *testing.T) {
	if b, err := DecodeBase64Loose(" aGVs\r\nbG8=\t"); err != nil || string(b) != "hello" {
		t.Errorf("DecodeBase64Loose = %q, %v", b, err)
	}
	for _, bad := range []string{"!!", "<samlp:Response/>", "aGVsbG8"} {
		if _, err := DecodeBase64Loose(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}
