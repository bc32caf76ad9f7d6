package samlauth

import (
	"crypto"
	"crypto/x509"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/internal/pemfile"
)

// LoadCertificate reads the first CERTIFICATE block of a PEM file, skipping
// any other blocks before it. Errors name the file.
func LoadCertificate(path string) (*x509.Certificate, error) {
	return pemfile.LoadCertificate(path)
}

// LoadPrivateKey reads the first private key block of a PEM file: RSA
// PRIVATE KEY (PKCS#1), EC PRIVATE KEY (SEC 1) or PRIVATE KEY (PKCS#8
// holding an RSA or ECDSA key). Errors name the file but never quote the
// key material.
func LoadPrivateKey(path string) (crypto.Signer, error) {
	return pemfile.LoadPrivateKey(path)
}

// publicKeysEqual reports whether two public keys are the same key.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}
