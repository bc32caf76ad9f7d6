package pemfile

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// Certificates parses every CERTIFICATE block of PEM data, skipping other
// blocks; name says where the data came from, in errors. It is an error
// when there is none.
func Certificates(data []byte, name string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", name)
	}
	return certs, nil
}

// LoadCertificate reads the first CERTIFICATE block of a PEM file,
// skipping any other blocks. Errors name the file.
func LoadCertificate(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := Certificates(data, path)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}
