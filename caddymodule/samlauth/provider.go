package samlauth

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/crewjam/saml"
	"go.uber.org/zap"
)

// ErrNoMetadata is returned by the calls that need the IdP's metadata
// while none is loaded yet (the first fetch of the metadata URL has not
// succeeded). It is temporary: answer "try again in a minute".
var ErrNoMetadata = errors.New("the identity provider's metadata is not loaded yet")

// Provider is a configured SAML service provider: its key pair, the
// current IdP metadata and the settings of its Config. Its methods are
// safe for concurrent use; the exported fields must be set before Run.
type Provider struct {
	// RetryFirst is the wait after the first failed fetch of the metadata
	// URL; it doubles after each further failure up to RetryMax and starts
	// over after a success. New sets 1 s and 1 min; tests shorten them.
	RetryFirst, RetryMax time.Duration

	// HTTPClient fetches the metadata URL; its Timeout bounds one attempt.
	// New sets a client with a 15 s timeout.
	HTTPClient *http.Client

	cfg  Config
	key  crypto.Signer
	cert *x509.Certificate
	// logoutKey authenticates the IDs of LogoutRequests (see "LogoutRequest IDs").
	logoutKey []byte
	format    saml.NameIDFormat
	// ciphers are the data encryption algorithm URIs of cfg.DataCiphers.
	ciphers []string
	// mdCerts are the certificates of IDPMetadataSigningCerts.
	mdCerts []*x509.Certificate
	idp     atomic.Pointer[idpMetadata]
	// fetched is set by the first successful fetch of the metadata URL.
	fetched atomic.Bool
	// expiredSaid is the metadata whose expiry was last logged.
	expiredSaid atomic.Pointer[idpMetadata]
	// refusalSaid is the last refusal of fetched metadata logged, so that
	// the same refusal is not logged at every retry.
	refusalSaid atomic.Value
	// now is the clock validUntil is checked against; tests move it.
	now    func() time.Time
	logger *zap.Logger
}

// idpMetadata is IdP metadata as loaded: the IdP, and until when the
// metadata may be used (the earliest validUntil on its path; zero: no
// limit).
type idpMetadata struct {
	md         *saml.EntityDescriptor
	validUntil time.Time
}

// New validates cfg (see Config.Validate), loads the SP key pair and checks
// that the key matches the certificate, loads the metadata signing
// certificates, and reads cfg.IDPMetadataFile if set (refusing it as the URL's would be:
// a bad signature, an expired validUntil). It
// does no network I/O: with cfg.IDPMetadataURL, start Run to load the
// metadata. Errors name the setting at fault. A nil logger logs nothing.
func New(cfg Config, logger *zap.Logger) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	format, _ := cfg.nameIDFormat()
	ciphers, _ := dataCipherURIs(cfg.DataCiphers)
	p := &Provider{
		RetryFirst: time.Second,
		RetryMax:   time.Minute,
		HTTPClient: &http.Client{Timeout: 15 * time.Second},
		cfg:        cfg,
		format:     format,
		ciphers:    ciphers,
		now:        time.Now,
		logger:     logger,
	}
	if err := p.loadKeys(); err != nil {
		return nil, err
	}
	var err error
	if p.mdCerts, err = loadSigningCerts(cfg.IDPMetadataSigningCerts); err != nil {
		return nil, err
	}
	if cfg.IDPMetadataFile != "" {
		f, err := os.Open(cfg.IDPMetadataFile)
		if err != nil {
			return nil, fmt.Errorf("idp_metadata_file: %w", err)
		}
		var size int64
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		md, err := p.loadMetadata(f, size)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("idp_metadata_file: %s: %w", cfg.IDPMetadataFile, err)
		}
		p.idp.Store(md)
	}
	return p, nil
}

// loadKeys loads the SP key pair of the Config and checks that they match.
func (p *Provider) loadKeys() error {
	if p.cfg.SPCert == "" {
		return errors.New("sp_cert: required")
	}
	if p.cfg.SPKey == "" {
		return errors.New("sp_key: required")
	}
	var err error
	if p.cert, err = LoadCertificate(p.cfg.SPCert); err != nil {
		return fmt.Errorf("sp_cert: %w", err)
	}
	if p.key, err = LoadPrivateKey(p.cfg.SPKey); err != nil {
		return fmt.Errorf("sp_key: %w", err)
	}
	if !publicKeysEqual(p.key.Public(), p.cert.PublicKey) {
		return errors.New("sp_key: does not match the public key of sp_cert")
	}
	p.logoutKey, err = logoutIDKey(p.key)
	return err
}

// Loaded reports whether IdP metadata is loaded and not expired, that is
// whether logins can start and responses can be verified.
func (p *Provider) Loaded() bool {
	return p.current() != nil
}

// IDPEntityID is the entity ID of the IdP in the current metadata, or ""
// while none is loaded.
func (p *Provider) IDPEntityID() string {
	if md := p.current(); md != nil {
		return md.EntityID
	}
	return ""
}

// current is the IdP of the loaded metadata, or nil while none is loaded
// or the loaded one is past its validUntil (said once in the log, at
// warn: logins wait for fresh metadata).
func (p *Provider) current() *saml.EntityDescriptor {
	m := p.idp.Load()
	if m == nil {
		return nil
	}
	if !m.validUntil.IsZero() && !p.now().Before(m.validUntil) {
		if old := p.expiredSaid.Load(); old != m && p.expiredSaid.CompareAndSwap(old, m) {
			p.logger.Warn("IdP metadata expired; logins wait for fresh metadata",
				zap.String("entity_id", m.md.EntityID), zap.Time("valid_until", m.validUntil),
				zap.String("url", p.cfg.IDPMetadataURL), zap.String("file", p.cfg.IDPMetadataFile))
		}
		return nil
	}
	return m.md
}

// sloBindings are the bindings by which the IdP may reach <base>/saml/slo.
var sloBindings = []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding}

// endpoints are the SP's own URLs under a base URL.
type endpoints struct {
	acs, metadata, slo url.URL
}

// endpointsFor builds the SP's URLs under base.
func endpointsFor(base string) (endpoints, error) {
	var e endpoints
	for _, x := range []struct {
		dst  *url.URL
		path string
	}{{&e.acs, "/saml/acs"}, {&e.metadata, "/saml/metadata"}, {&e.slo, "/saml/slo"}} {
		u, err := url.Parse(base + x.path)
		if err != nil {
			return e, fmt.Errorf("base URL %q: %w", base, err)
		}
		*x.dst = *u
	}
	return e, nil
}

// library returns a crewjam/saml ServiceProvider for base, without IdP
// metadata: enough for the SP metadata.
func (p *Provider) library(base string) (*saml.ServiceProvider, error) {
	e, err := endpointsFor(base)
	if err != nil {
		return nil, err
	}
	return &saml.ServiceProvider{
		EntityID:          p.cfg.EntityID,
		Key:               p.key,
		Certificate:       p.cert,
		MetadataURL:       e.metadata,
		AcsURL:            e.acs,
		SloURL:            e.slo,
		LogoutBindings:    sloBindings,
		AuthnNameIDFormat: p.format,
		// verifyAssertion checks the audience itself, seeing every Audience
		// of a restriction where the library keeps only the last.
		ValidateAudienceRestriction: func(*saml.Assertion) error { return nil },
	}, nil
}

// forBase returns a crewjam/saml ServiceProvider whose URLs live under base
// and which trusts the current IdP metadata, or ErrNoMetadata.
func (p *Provider) forBase(base string) (*saml.ServiceProvider, error) {
	md := p.current()
	if md == nil {
		return nil, ErrNoMetadata
	}
	sp, err := p.library(base)
	if err != nil {
		return nil, err
	}
	sp.IDPMetadata = md
	return sp, nil
}
