package samlauth

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/internal/pemfile"
)

// loadMetadata reads IdP metadata from r (of size bytes when known, 0
// otherwise) the way the Config says: with IDPMetadataSigningCerts the
// whole document is read into memory (up to maxMetadataSize) and its
// signature checked before anything in it is used; without, it is read as
// a stream. Either way it is refused once its validUntil (on the root, the
// IdP's EntityDescriptor or an EntitiesDescriptor between them) is past.
// A refusal wraps errMetadataRefused.
func (p *Provider) loadMetadata(r io.Reader, size int64) (*idpMetadata, error) {
	if len(p.mdCerts) > 0 {
		doc, err := readAllBounded(r, size)
		if err != nil {
			return nil, err
		}
		if err := verifyMetadataSignature(doc, p.mdCerts); err != nil {
			return nil, err
		}
		r = bytes.NewReader(doc)
	}
	md, until, err := decodeIDPMetadata(r, p.cfg.IDPEntityID)
	if err != nil {
		return nil, err
	}
	if !until.IsZero() && !p.now().Before(until) {
		return nil, refused("it expired at %s (validUntil)", until.UTC().Format(time.RFC3339))
	}
	return &idpMetadata{md: md, validUntil: until}, nil
}

// readAllBounded reads r to its end, at most maxMetadataSize bytes, into a
// buffer sized once when the size is known, so that a large aggregate is
// not copied as the buffer grows.
func readAllBounded(r io.Reader, size int64) ([]byte, error) {
	var b bytes.Buffer
	if size > 0 && size <= maxMetadataSize {
		b.Grow(int(size) + bytes.MinRead)
	}
	if _, err := b.ReadFrom(&limitReader{r: r, n: maxMetadataSize}); err != nil {
		return nil, fmt.Errorf("reading IdP metadata: %w", err)
	}
	return b.Bytes(), nil
}

// loadSigningCerts loads the certificates of idp_metadata_signing_cert:
// each entry is PEM text or the name of a PEM file, and every CERTIFICATE
// block in it counts (a federation rolling its key publishes both).
func loadSigningCerts(entries []string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for _, e := range entries {
		data, name := []byte(e), "PEM text"
		if !strings.Contains(e, "-----BEGIN") {
			var err error
			if data, err = os.ReadFile(e); err != nil {
				return nil, fmt.Errorf("idp_metadata_signing_cert: %w", err)
			}
			name = e
		}
		found, err := pemfile.Certificates(data, name)
		if err != nil {
			return nil, fmt.Errorf("idp_metadata_signing_cert: %w", err)
		}
		certs = append(certs, found...)
	}
	return certs, nil
}

// sameCerts reports whether a and b are the same certificates.
func sameCerts(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// isRefusal reports whether err refused metadata that was read.
func isRefusal(err error) bool {
	return errors.Is(err, errMetadataRefused)
}
