package pemfile

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func testCert(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// Every CERTIFICATE block counts, in order, other blocks are skipped, and
// data without one, or with a broken one, is an error naming its source.
func TestCertificates(t *testing.T) {
	other := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not a key")})
	data := append(append(append([]byte{}, other...), testCert(t, "old")...), testCert(t, "new")...)
	certs, err := Certificates(data, "bundle.pem")
	if err != nil || len(certs) != 2 || certs[0].Subject.CommonName != "old" || certs[1].Subject.CommonName != "new" {
		t.Fatalf("Certificates = %v, %v; want old and new", certs, err)
	}
	if _, err := Certificates(other, "key.pem"); err == nil || !strings.Contains(err.Error(), "key.pem: no PEM CERTIFICATE block") {
		t.Errorf("without a certificate: %v", err)
	}
	broken := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})
	if _, err := Certificates(broken, "broken.pem"); err == nil || !strings.HasPrefix(err.Error(), "broken.pem: ") {
		t.Errorf("broken certificate: %v", err)
	}
}
