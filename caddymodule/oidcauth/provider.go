package oidcauth

import (
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// ErrNotLoaded is returned by the calls that need the provider's discovery
// document and keys while none are loaded yet (the first fetch has not
// succeeded). It is temporary: answer "try again in a minute".
var ErrNotLoaded = errors.New("the OpenID provider's discovery document is not loaded yet")

// Provider is a configured OpenID Connect relying party: the settings of
// its Config, the client key for private_key_jwt, and the last good copy
// of the provider's discovery document and keys. Its methods are safe for
// concurrent use; the exported fields must be set before Run.
type Provider struct {
	// RetryFirst is the wait after the first failed fetch of the discovery
	// document or the JWKS; it doubles after each further failure up to
	// RetryMax and starts over after a success. New sets 1 s and 1 min;
	// tests shorten them.
	RetryFirst, RetryMax time.Duration

	// HTTPClient makes every request to the provider: discovery, JWKS,
	// token and userinfo. Its Timeout bounds one request. New sets a client
	// with a 15 s timeout.
	HTTPClient *http.Client

	cfg    Config
	key    crypto.Signer // for private_key_jwt, else nil
	keyID  string
	state  atomic.Pointer[discovered]
	logger *zap.Logger
}

// discovered is one consistent view of the provider: its endpoints, the
// algorithms it signs ID tokens with and its keys.
type discovered struct {
	op         *oidc.Provider // endpoints and userinfo
	issuer     string
	endpoint   oauth2.Endpoint
	userinfo   string
	endSession string
	issParam   bool // the callback carries iss (RFC 9207)
	algs       []string
	keys       *keyCache
}

// New validates cfg (see Config.Validate) and loads the client key of
// private_key_jwt. It does no network I/O: start Run to load the
// provider's discovery document and keys. Errors name the setting at
// fault. A nil logger logs nothing.
func New(cfg Config, logger *zap.Logger) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	p := &Provider{
		RetryFirst: time.Second,
		RetryMax:   time.Minute,
		HTTPClient: &http.Client{Timeout: 15 * time.Second},
		cfg:        cfg,
		logger:     logger,
	}
	if cfg.PrivateKeyFile != "" {
		key, err := loadPrivateKey(cfg.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("private_key_file: %w", err)
		}
		p.key = key
		p.keyID = cfg.PrivateKeyID
		if p.keyID == "" {
			if p.keyID, err = thumbprint(key.Public()); err != nil {
				return nil, fmt.Errorf("private_key_file: %w", err)
			}
		}
	}
	return p, nil
}

// Loaded reports whether the discovery document and keys are loaded, that
// is whether logins can start and callbacks can be verified.
func (p *Provider) Loaded() bool {
	return p.state.Load() != nil
}

// Issuer is the configured issuer identifier.
func (p *Provider) Issuer() string {
	return p.cfg.Issuer
}

// current returns the loaded view of the provider, or ErrNotLoaded.
func (p *Provider) current() (*discovered, error) {
	d := p.state.Load()
	if d == nil {
		return nil, ErrNotLoaded
	}
	return d, nil
}

// CallbackPath is the path, under the base URL, of the redirect URI the
// provider sends the browser back to. Register <base>/oidc/callback as a
// redirect URI of the client at the provider.
const CallbackPath = "/oidc/callback"

// oauth2Config is the OAuth 2.0 view of the client for a login at base.
func (p *Provider) oauth2Config(d *discovered, base string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     p.cfg.ClientID,
		ClientSecret: p.cfg.ClientSecret,
		Endpoint:     d.endpoint,
		RedirectURL:  base + CallbackPath,
		Scopes:       p.cfg.scopes(),
	}
}
