// Package pemfile reads private keys and certificates from PEM for the SAML and OpenID
// Connect packages. Errors name the file but never quote key material.
package pemfile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// LoadPrivateKey reads the first private key block of a PEM file: RSA
// PRIVATE KEY (PKCS#1), EC PRIVATE KEY (SEC 1) or PRIVATE KEY (PKCS#8
// holding an RSA or ECDSA key). Other blocks (certificates, parameters) are
// skipped.
func LoadPrivateKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			return nil, fmt.Errorf("%s: no PEM private key block", path)
		}
		var key any
		switch blk.Type {
		case "RSA PRIVATE KEY":
			if key, err = x509.ParsePKCS1PrivateKey(blk.Bytes); err != nil {
				return nil, fmt.Errorf("%s: invalid PKCS#1 key", path)
			}
		case "EC PRIVATE KEY":
			if key, err = x509.ParseECPrivateKey(blk.Bytes); err != nil {
				return nil, fmt.Errorf("%s: invalid SEC 1 key", path)
			}
		case "PRIVATE KEY":
			if key, err = x509.ParsePKCS8PrivateKey(blk.Bytes); err != nil {
				return nil, fmt.Errorf("%s: invalid PKCS#8 key", path)
			}
		default:
			continue
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		default:
			return nil, fmt.Errorf("%s: key type %T is not supported (want RSA or ECDSA)", path, k)
		}
	}
}
