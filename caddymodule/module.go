// Package consolemeauth is a Caddy HTTP handler that sits in front of an
// unchanged Netflix ConsoleMe and answers ConsoleMe's CLI challenge login
// (the flow Weep uses) itself, signing the browser in at an identity
// provider with SAML 2.0 or OpenID Connect and minting the HS256 JWT that
// ConsoleMe accepts as its consoleme_auth cookie. With web_login the same
// sign-in guards all of ConsoleMe's web UI, and with mtls a verified client
// certificate becomes a ConsoleMe session. Every other request goes to the
// next handler (normally reverse_proxy to ConsoleMe) untouched.
package consolemeauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/oidcauth"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth"
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
	DefaultMaxSessionAge = 12 * time.Hour
	// DefaultMaxLoginsPerClient bounds the logins in progress per client.
	DefaultMaxLoginsPerClient = 100
	// expiredGrace is how long an expired challenge is still answered as
	// "expired" (as ConsoleMe does) before it is forgotten ("unknown").
	expiredGrace = time.Minute
	// loginTTL bounds how long a user may take at the IdP.
	loginTTL = 10 * time.Minute
)

// Handler answers ConsoleMe's CLI challenge routes and the sign-in
// endpoints and passes every other request on:
//
//	GET  /noauth/v1/challenge_generator/{user}   new challenge (CLI)
//	GET  /noauth/v1/challenge_poller/{token}     pending … success once (CLI)
//	GET  /challenge_validator/{token}            sign-in if needed, approval page (browser)
//	POST /challenge_validator/{token}            approve or cancel (browser form)
//	GET, POST /api/v2/challenge_validator/{token} ConsoleMe's JSON API (ConsoleMe's own UI)
//	GET  /saml/metadata                          SP metadata (only with a saml block)
//	POST /saml/acs                               assertion consumer (only with a saml block)
//	GET  /saml/login?return_to=/path             start a SAML sign-in (only with a saml block)
//	GET, POST /saml/slo                          single-logout return (only with a saml block)
//	GET  /oidc/login?return_to=/path             start an OpenID Connect sign-in (only with an oidc block)
//	GET  /oidc/callback                          the provider's redirect back (only with an oidc block)
//	GET, POST /logout                            sign out, at the IdP too when it can (only with web_login)
//	GET, POST /sessions                          the user's sessions: list, sign one or all others out (browser)
//
// docs/architecture.md lists every answer of each route.
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

	// Site names this site in configuration errors; the Caddyfile adapter
	// sets it to the site block's address. It changes nothing else.
	Site string `json:"site,omitempty"`

	// SiteName is how the approval page names this site, so that a user
	// can tell a link to it from a phishing link, e.g. "ConsoleMe
	// (production)". Default: the host of public_url, else of the request.
	SiteName string `json:"site_name,omitempty"`

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
	// Retry-After instead of growing without limit. A pending challenge
	// costs about 120 bytes of memory. Default: 10000.
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

	// MaxSessionAge is how long after a user's last sign-in at the IdP their
	// session counts: it may approve challenges, pass web_login and be
	// renewed only until then, and no token minted for it (browser cookie,
	// renewal or CLI token) expires later; after that the user signs in at
	// the IdP again, so group changes there apply. Default: 12h.
	MaxSessionAge caddy.Duration `json:"max_session_age,omitempty"`

	// IPv6Prefix is how many leading bits of an IPv6 client address name
	// one client for the per-client limits below (an IPv4 address is always
	// one client): a /64 is what one host or subscriber usually has, so
	// counting whole addresses would let one client use billions. Default:
	// 64.
	IPv6Prefix int `json:"ipv6_prefix,omitempty"`

	// LoginRateLimit limits how often one client may start a SAML login
	// (the validator without a session, /saml/login and web_login's
	// redirects); beyond it the browser gets a 429 page with Retry-After.
	// It is separate from the generator's budget, so an office behind one
	// address does not lose the web UI because its CLI users logged in.
	// Default: 60 per 1m. An empty limit ({}) turns it off.
	LoginRateLimit *RateLimit `json:"login_rate_limit,omitempty"`

	// MaxLoginsPerClient bounds the SAML logins in progress (each kept up
	// to 10 minutes) that one client may hold, so that no client can fill
	// the store with login states and lock others out. Default: 100.
	MaxLoginsPerClient int `json:"max_logins_per_client,omitempty"`

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

	// WebLogin puts all of ConsoleMe behind the SAML login (opt-in), so
	// ConsoleMe needs no login configuration of its own. Needs SAML.
	WebLogin *WebLoginConfig `json:"web_login,omitempty"`

	// MTLS turns a verified client certificate (Caddy's tls client_auth)
	// into a ConsoleMe session on every proxied request that carries one,
	// so Weep's authentication_method: mtls works against an unchanged
	// ConsoleMe. Default: off.
	MTLS *MTLSConfig `json:"mtls,omitempty"`

	// OIDC authenticates browsers with OpenID Connect instead of SAML, at
	// the validator and for web_login. A site has a saml or an oidc block,
	// not both.
	OIDC *OIDCConfig `json:"oidc,omitempty"`

	// SAML authenticates browsers at the validator. Without it, only a
	// browser that already carries a valid consoleme_auth cookie (from
	// ConsoleMe's own login) can approve, and /saml/* is passed through.
	SAML *SAMLConfig `json:"saml,omitempty"`

	logger   *zap.Logger
	sessions *sessions
	states   store.Store // challenges, logins in progress and replay marks of this site
	release  func() error
	base     *url.URL // parsed PublicURL, nil when unset
	baseStr  string   // base as a string, made once
	csrfKey  []byte
	sp       *samlauth.Provider
	oidc     *oidcauth.Provider
	mtls     *certMapper
	now      func() time.Time
	genRL    *ipLimiter
	pollRL   *ipLimiter
	loginRL  *ipLimiter
	policy   policy
	// sessState is the site's session store and revocation list, shared
	// by its instances in this process; releaseSess lets go of it.
	sessState   *sessionState
	releaseSess func() error
}

// Default rate limits per client IP.
var (
	DefaultGeneratorRateLimit = RateLimit{Events: 30, Window: caddy.Duration(time.Minute)}
	DefaultLoginRateLimit     = RateLimit{Events: 60, Window: caddy.Duration(time.Minute)}
	DefaultPollerRateLimit    = RateLimit{Events: 300, Window: caddy.Duration(time.Minute)}
)

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.consoleme_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets up the handler: defaults, placeholders, the session
// codecs, the store and the SAML service provider. It does no network I/O;
// IdP metadata from a URL is fetched in the background.
func (h *Handler) Provision(ctx caddy.Context) error {
	return h.inSite(h.provision(ctx))
}

// inSite names the site in a configuration error, when it is known.
func (h *Handler) inSite(err error) error {
	if err == nil || h.Site == "" {
		return err
	}
	return fmt.Errorf("site %s: %w", h.Site, err)
}

func (h *Handler) provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.now = time.Now
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	repl := caddy.NewReplacer()
	var err error
	if h.JWTSecret, err = expand(repl, "jwt_secret", h.JWTSecret); err != nil {
		return err
	}
	if h.PublicURL, err = expand(repl, "public_url", h.PublicURL); err != nil {
		return err
	}
	h.applyDefaults()
	if err := h.validate(); err != nil {
		return err
	}
	if err := h.compilePolicy(); err != nil {
		return err
	}
	h.genRL = newIPLimiter(*h.GeneratorRateLimit, maxTrackedIPs)
	h.pollRL = newIPLimiter(*h.PollerRateLimit, maxTrackedIPs)
	h.loginRL = newIPLimiter(*h.LoginRateLimit, maxTrackedIPs)
	if h.PublicURL != "" {
		if h.base, err = parsePublicURL(h.PublicURL); err != nil {
			return fmt.Errorf("public_url: %w", err)
		}
		h.baseStr = h.base.String()
	}
	if h.sessions, err = h.newSessions(); err != nil {
		return err
	}
	mac := hmac.New(sha256.New, []byte(h.JWTSecret))
	mac.Write([]byte("consoleme_auth approval form"))
	h.csrfKey = mac.Sum(nil)

	if h.MTLS != nil {
		if h.mtls, err = h.MTLS.provision(repl); err != nil {
			return fmt.Errorf("mtls: %w", err)
		}
	}
	if h.SAML != nil {
		if h.sp, err = h.SAML.provision(ctx, repl, h.logger); err != nil {
			return fmt.Errorf("saml: %w", err)
		}
	}
	if h.OIDC != nil {
		if h.oidc, err = h.OIDC.provision(ctx, repl, h.logger); err != nil {
			return fmt.Errorf("oidc: %w", err)
		}
	}
	h.states, h.release, err = h.Store.open(ctx, repl, h.siteKey(), storeBounds{h.MaxPending, h.MaxLoginsPerClient}, h.logger)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	h.states = watchStore(h.states, h.logger)
	h.sessState, h.releaseSess, err = h.Store.openSessions(repl, h.sessionKey(), h.logger)
	if err != nil {
		return fmt.Errorf("store: sessions: %w", err)
	}
	h.sessions.revoked, h.sessions.records = h.sessState.list, h.sessState.store
	register(h)
	return nil
}

// newSessions builds the session rules from the settings.
func (h *Handler) newSessions() (*sessions, error) {
	s := &sessions{cookie: h.CookieName, maxAge: time.Duration(h.MaxSessionAge), base: h.base, logger: h.logger,
		policy: &h.policy, seen: newTokenMemory()}
	var err error
	if s.codec, err = token.NewCodec(h.JWTSecret, h.EmailClaim, h.GroupsClaim, time.Duration(h.JWTExpiration)); err != nil {
		return nil, fmt.Errorf("jwt settings: %w", err)
	}
	if h.WebLogin != nil {
		s.renewBefore = time.Duration(h.WebLogin.RenewBefore)
	}
	if h.MTLS != nil {
		lifetime := time.Duration(h.MTLS.TokenLifetime)
		if lifetime == 0 {
			lifetime = DefaultMTLSTokenLifetime
		}
		if s.certCodec, err = token.NewCodec(h.JWTSecret, h.EmailClaim, h.GroupsClaim, lifetime); err != nil {
			return nil, fmt.Errorf("mtls: %w", err)
		}
	}
	return s, nil
}

// Cleanup releases the stores.
func (h *Handler) Cleanup() error {
	unregister(h)
	var errs []error
	if h.release != nil {
		errs = append(errs, h.release())
	}
	if h.releaseSess != nil {
		errs = append(errs, h.releaseSess())
	}
	return errors.Join(errs...)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
