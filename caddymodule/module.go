// Package consolemeauth is a Caddy HTTP handler that sits in front of an
// unchanged Netflix ConsoleMe and answers ConsoleMe's CLI challenge login
// (the flow Weep uses) itself, authenticating the browser with SAML 2.0 and
// minting the HS256 JWT that ConsoleMe accepts as its consoleme_auth cookie.
// Every request that is not one of its routes goes to the next handler
// (normally reverse_proxy to ConsoleMe) untouched.
package consolemeauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/token"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults of the optional settings.
const (
	DefaultCookieName    = "consoleme_auth"
	DefaultJWTExpiration = time.Hour
	DefaultEmailClaim    = "email"
	DefaultGroupsClaim   = "groups"
	DefaultChallengeTTL  = 2 * time.Minute
	DefaultMaxPending    = 10000
	// expiredGrace is how long an expired challenge is still answered as
	// "expired" (as ConsoleMe does) before it is forgotten ("unknown").
	expiredGrace = time.Minute
	// loginTTL bounds how long a user may take at the IdP.
	loginTTL = 10 * time.Minute
)

// Handler answers ConsoleMe's CLI challenge routes and its SAML endpoints and
// passes every other request on:
//
//	GET  /noauth/v1/challenge_generator/{user}   new challenge (CLI)
//	GET  /noauth/v1/challenge_poller/{token}     pending … success once (CLI)
//	GET  /challenge_validator/{token}            SAML login if needed, approval page (browser)
//	POST /challenge_validator/{token}            approve (browser form)
//	GET, POST /api/v2/challenge_validator/{token} ConsoleMe's JSON API (ConsoleMe's own UI)
//	GET  /saml/metadata                          SP metadata (only with a saml block)
//	POST /saml/acs                               assertion consumer (only with a saml block)
//
// The colon spellings of ConsoleMe's docs (challenge:generator,
// challenge:poller, challenge:validator) are accepted too. The client IP is
// Caddy's (it honours the server's trusted_proxies), never a header parsed here.
type Handler struct {
	// JWTSecret is ConsoleMe's jwt_secret: the HS256 key of every token this
	// handler mints and of the consoleme_auth cookies it accepts. Required.
	// Placeholders such as {env.CONSOLEME_JWT_SECRET} or {file./path} are
	// expanded at provision. It is never logged.
	JWTSecret string `json:"jwt_secret,omitempty"`

	// PublicURL is the base of the challenge_url and polling_url handed to
	// the CLI and of the SAML endpoints, e.g. https://consoleme.example.com
	// (ConsoleMe's `url`). Default: the scheme and host of each request. Set
	// it behind a TLS terminator or load balancer.
	PublicURL string `json:"public_url,omitempty"`

	// CookieName is ConsoleMe's auth_cookie_name, returned to the CLI as
	// cookie_name and set in the browser. Default: consoleme_auth.
	CookieName string `json:"cookie_name,omitempty"`

	// JWTExpiration is the lifetime of minted tokens and of the browser
	// cookie (ConsoleMe's jwt.expiration_minutes). Default: 1h.
	JWTExpiration caddy.Duration `json:"jwt_expiration,omitempty"`

	// EmailClaim is the JWT claim that holds the user's email (ConsoleMe's
	// jwt.attributes.email). Default: email.
	EmailClaim string `json:"email_claim,omitempty"`

	// GroupsClaim is the JWT claim that holds the user's groups as a list of
	// strings (ConsoleMe's jwt.attributes.groups). Default: groups.
	GroupsClaim string `json:"groups_claim,omitempty"`

	// ChallengeTTL is how long a challenge can be approved and collected.
	// Default: 2m (ConsoleMe's fixed value; Weep polls for 2 minutes).
	ChallengeTTL caddy.Duration `json:"challenge_ttl,omitempty"`

	// MaxPending bounds the challenges (and SAML logins in progress) the
	// memory store keeps; beyond it the generator answers 503 with
	// Retry-After instead of growing without limit. Default: 10000.
	MaxPending int `json:"max_pending,omitempty"`

	// DisableValidatorIPCheck lets a browser at another IP than the CLI's
	// approve a challenge (ConsoleMe's
	// challenge_url.request_ip_must_match_challenge_creation_ip: false).
	// The approval page then warns about the mismatch. Default: false.
	DisableValidatorIPCheck bool `json:"disable_validator_ip_check,omitempty"`

	// DisablePollerIPCheck lets a poller at another IP than the generator's
	// collect the token. ConsoleMe always checks; only turn this off when the
	// CLI's address changes between calls. Default: false.
	DisablePollerIPCheck bool `json:"disable_poller_ip_check,omitempty"`

	// UserMatch is how the signed-in user must equal the challenge's user:
	// exact (default, as ConsoleMe) or case_insensitive.
	UserMatch string `json:"user_match,omitempty"`

	// AllowedGroups, when set, lets only members of at least one of these
	// groups approve a challenge (get a CLI token). Default: everyone.
	AllowedGroups []string `json:"allowed_groups,omitempty"`

	// DeniedGroups refuses CLI tokens to members of any of these groups,
	// even when they are in AllowedGroups.
	DeniedGroups []string `json:"denied_groups,omitempty"`

	// GroupsFilter keeps only the groups that fully match one of these
	// regular expressions in minted tokens and the browser cookie, so the
	// consoleme_auth cookie stays under the browsers' 4 KB limit. The group
	// policies above see the filtered groups. A token that would still not
	// fit is refused with a clear message. Default: all groups.
	GroupsFilter []string `json:"groups_filter,omitempty"`

	// GeneratorRateLimit limits generator calls per client IP; beyond it the
	// generator answers 429 with Retry-After. Weep calls it once per login.
	// Default: 30 per 1m. An empty limit ({}) turns it off.
	GeneratorRateLimit *RateLimit `json:"generator_rate_limit,omitempty"`

	// PollerRateLimit limits poller calls per client IP (429 with
	// Retry-After beyond it). Weep polls every 3 s, 20 per minute, so the
	// default leaves room for several users behind one NAT address.
	// Default: 300 per 1m. An empty limit ({}) turns it off.
	PollerRateLimit *RateLimit `json:"poller_rate_limit,omitempty"`

	// Store is where challenges live. Default: the embedded memory store.
	Store *StoreConfig `json:"store,omitempty"`

	// MTLS turns a verified client certificate (Caddy's tls client_auth)
	// into a ConsoleMe session on every proxied request that carries one,
	// so Weep's authentication_method: mtls works against an unchanged
	// ConsoleMe. Default: off.
	MTLS *MTLSConfig `json:"mtls,omitempty"`

	// SAML authenticates browsers at the validator. Without it, only a
	// browser that already carries a valid consoleme_auth cookie (from
	// ConsoleMe's own login) can approve, and /saml/* is passed through.
	SAML *SAMLConfig `json:"saml,omitempty"`

	logger  *zap.Logger
	minter  *token.Minter
	store   store.Store
	release func() error
	base    *url.URL // parsed PublicURL, nil when unset
	csrfKey []byte
	sp      *serviceProvider
	mtls    *mtlsMapper
	now     func() time.Time
	genRL   *ipLimiter
	pollRL  *ipLimiter
	policy  policy
}

// Default rate limits per client IP.
var (
	DefaultGeneratorRateLimit = RateLimit{Events: 30, Window: caddy.Duration(time.Minute)}
	DefaultPollerRateLimit    = RateLimit{Events: 300, Window: caddy.Duration(time.Minute)}
)

// StoreConfig selects the challenge store.
type StoreConfig struct {
	// Type is "memory" (default; one Caddy instance) or "redis" (several
	// instances behind one load balancer share one Redis).
	Type string `json:"type,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.consoleme_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets up the handler: defaults, placeholders, the token minter,
// the store and the SAML service provider. It does no network I/O; IdP
// metadata from a URL is fetched in the background.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.now = time.Now
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	repl := caddy.NewReplacer()
	h.JWTSecret = repl.ReplaceAll(h.JWTSecret, "")
	h.PublicURL = repl.ReplaceAll(h.PublicURL, "")
	if h.CookieName == "" {
		h.CookieName = DefaultCookieName
	}
	if h.JWTExpiration == 0 {
		h.JWTExpiration = caddy.Duration(DefaultJWTExpiration)
	}
	if h.EmailClaim == "" {
		h.EmailClaim = DefaultEmailClaim
	}
	if h.GroupsClaim == "" {
		h.GroupsClaim = DefaultGroupsClaim
	}
	if h.ChallengeTTL == 0 {
		h.ChallengeTTL = caddy.Duration(DefaultChallengeTTL)
	}
	if h.MaxPending == 0 {
		h.MaxPending = DefaultMaxPending
	}
	if h.Store == nil {
		h.Store = &StoreConfig{Type: "memory"}
	}
	if h.GeneratorRateLimit == nil {
		rl := DefaultGeneratorRateLimit
		h.GeneratorRateLimit = &rl
	}
	if h.PollerRateLimit == nil {
		rl := DefaultPollerRateLimit
		h.PollerRateLimit = &rl
	}
	if err := h.Validate(); err != nil {
		return err
	}
	if err := h.compilePolicy(); err != nil {
		return err
	}
	h.genRL = newIPLimiter(*h.GeneratorRateLimit, maxTrackedIPs)
	h.pollRL = newIPLimiter(*h.PollerRateLimit, maxTrackedIPs)

	var err error
	h.minter, err = token.NewMinter(h.JWTSecret, h.EmailClaim, h.GroupsClaim, time.Duration(h.JWTExpiration))
	if err != nil {
		return fmt.Errorf("jwt settings: %w", err)
	}
	mac := hmac.New(sha256.New, []byte(h.JWTSecret))
	mac.Write([]byte("consoleme_auth approval form"))
	h.csrfKey = mac.Sum(nil)

	if h.PublicURL != "" {
		h.base, err = parsePublicURL(h.PublicURL)
		if err != nil {
			return fmt.Errorf("public_url: %w", err)
		}
	}

	h.store, h.release, err = h.Store.open(h.MaxPending)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}

	if h.MTLS != nil {
		h.mtls, err = h.MTLS.provision(repl)
		if err != nil {
			return fmt.Errorf("mtls: %w", err)
		}
	}
	if h.SAML != nil {
		h.sp, err = h.SAML.provision(ctx, repl, h.logger)
		if err != nil {
			return fmt.Errorf("saml: %w", err)
		}
	}
	return nil
}

// Validate checks the configuration; it changes nothing.
func (h *Handler) Validate() error {
	if h.JWTSecret == "" {
		return errors.New("jwt_secret: required (ConsoleMe's jwt_secret)")
	}
	if h.JWTExpiration < 0 {
		return errors.New("jwt_expiration: must be positive")
	}
	if h.ChallengeTTL < 0 {
		return errors.New("challenge_ttl: must be positive")
	}
	if h.MaxPending < 0 {
		return errors.New("max_pending: must be positive")
	}
	for name, rl := range map[string]*RateLimit{"generator_rate_limit": h.GeneratorRateLimit, "poller_rate_limit": h.PollerRateLimit} {
		if rl != nil && (rl.Events < 0 || rl.Window < 0 || (rl.Events > 0 && rl.Window == 0)) {
			return fmt.Errorf("%s: events and window must be positive", name)
		}
	}
	if !validCookieName(h.CookieName) {
		return fmt.Errorf("cookie_name: %q is not a valid cookie name", h.CookieName)
	}
	if h.Store != nil {
		switch h.Store.Type {
		case "", "memory", "redis":
		default:
			return fmt.Errorf("store: unknown type %q (want memory or redis)", h.Store.Type)
		}
	}
	return nil
}

// Cleanup releases the store.
func (h *Handler) Cleanup() error {
	if h.release != nil {
		return h.release()
	}
	return nil
}

// open returns the configured store and the function that releases it.
func (sc *StoreConfig) open(maxPending int) (store.Store, func() error, error) {
	switch sc.Type {
	case "", "memory":
		// One memory store per bound, shared across config reloads so that
		// a reload does not forget the challenges in flight.
		key := fmt.Sprintf("memory/%d", maxPending)
		v, _, err := memoryStores.LoadOrNew(key, func() (caddy.Destructor, error) {
			return memoryStore{store.NewMemory(maxPending, expiredGrace)}, nil
		})
		if err != nil {
			return nil, nil, err
		}
		return v.(memoryStore).Memory, func() error {
			_, err := memoryStores.Delete(key)
			return err
		}, nil
	default:
		return nil, nil, fmt.Errorf("store type %q is not available", sc.Type)
	}
}

var memoryStores = caddy.NewUsagePool()

// memoryStore adapts the memory store to caddy.Destructor for the pool.
type memoryStore struct{ *store.Memory }

func (m memoryStore) Destruct() error { return m.Close() }

// parsePublicURL accepts an absolute http(s) URL with a host and no query or
// fragment, and drops a trailing slash.
func parsePublicURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parsing %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q must be an absolute http or https URL", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%q must not have user info, a query or a fragment", s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// validCookieName reports whether name is an RFC 6265 token.
func validCookieName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r) {
			return false
		}
	}
	return true
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
