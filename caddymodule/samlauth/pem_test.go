package samlauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

// pemKey encodes a key as a PEM block of the given type: "RSA PRIVATE
// KEY" (PKCS#1 of rsaKey), "EC PRIVATE KEY" (SEC 1 of a fresh P-256 key),
// "PRIVATE KEY" (PKCS#8 of a fresh P-256 key) or "ED25519" (PKCS#8 of a
// fresh Ed25519 key, under the type PRIVATE KEY).
func pemKey(t testing.TB, kind string, rsaKey *rsa.PrivateKey) string {
	t.Helper()
	var der []byte
	var err error
	typ := kind
	switch kind {
	case "RSA PRIVATE KEY":
		der = x509.MarshalPKCS1PrivateKey(rsaKey)
	case "EC PRIVATE KEY", "PRIVATE KEY":
		k, gerr := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if gerr != nil {
			t.Fatal(gerr)
		}
		if kind == "EC PRIVATE KEY" {
			der, err = x509.MarshalECPrivateKey(k)
		} else {
			der, err = x509.MarshalPKCS8PrivateKey(k)
		}
	case "ED25519":
		_, k, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			t.Fatal(gerr)
		}
		der, err = x509.MarshalPKCS8PrivateKey(k)
		typ = "PRIVATE KEY"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}
