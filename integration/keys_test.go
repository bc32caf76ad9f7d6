package integration

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// keyPair is an RSA key with a self-signed certificate, as SAML metadata
// carries them.
type keyPair struct {
	Key     *rsa.PrivateKey
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte // PKCS#8
}

// RSA 2048 generation takes a noticeable fraction of a second (more under
// -race), so each named pair is made once per test run and shared. Tests
// never modify a pair.
var (
	keyPairsMu sync.Mutex
	keyPairs   = map[string]keyPair{}
)

// sharedKeyPair returns the key pair called name, creating it on first use.
func sharedKeyPair(t testing.TB, name string) keyPair {
	t.Helper()
	keyPairsMu.Lock()
	defer keyPairsMu.Unlock()
	if kp, ok := keyPairs[name]; ok {
		return kp
	}
	kp := newKeyPair(t, name)
	keyPairs[name] = kp
	return kp
}

// newKeyPair makes a fresh RSA 2048 key and a self-signed certificate for
// commonName, valid from an hour ago for a day.
func newKeyPair(t testing.TB, commonName string) keyPair {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generating RSA key: %v", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("creating certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{
		Key:     key,
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
	}
}

// writeFiles writes the certificate and key as PEM files into dir and
// returns their paths.
func (kp keyPair) writeFiles(t testing.TB, dir string) (certPath, keyPath string) {
	t.Helper()
	certPath = filepath.Join(dir, "sp.crt")
	keyPath = filepath.Join(dir, "sp.key")
	if err := os.WriteFile(certPath, kp.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, kp.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}
