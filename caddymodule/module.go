// Package consolemeauth is a Caddy HTTP handler that sits in front of an
// unchanged Netflix ConsoleMe and answers ConsoleMe's CLI challenge login
// (the flow Weep uses) itself, authenticating the browser with SAML 2.0 and
// minting the HS256 JWT that ConsoleMe accepts as its consoleme_auth cookie.
// Every request that is not one of its routes goes to the next handler
// (normally reverse_proxy to ConsoleMe) untouched.
package consolemeauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/redisstore"
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

	// WebLogin puts all of ConsoleMe behind the SAML login (opt-in), so
	// ConsoleMe needs no login configuration of its own. Needs SAML.
	WebLogin *WebLoginConfig `json:"web_login,omitempty"`

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
	// instances behind one load balancer share one Redis or Valkey).
	Type string `json:"type,omitempty"`

	// URL of the Redis server (redis only): redis://[[user]:password@]host[:port][/db],
	// rediss://... for TLS, or unix:///path/to/socket. Placeholders are
	// expanded. Default: redis://127.0.0.1:6379/0.
	URL string `json:"url,omitempty"`

	// Username and Password replace those in the URL (redis only), so the
	// password can come from a placeholder such as {env.REDIS_PASSWORD}.
	// Never logged.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`

	// KeyPrefix starts every Redis key; instances that share challenges
	// must use the same one. Default: consoleme_auth:
	KeyPrefix string `json:"key_prefix,omitempty"`

	// DialTimeout, ReadTimeout and WriteTimeout bound each Redis call, so
	// the challenge routes answer 503 quickly when Redis is down or slow.
	// Defaults: 2s, 1s, 1s.
	DialTimeout  caddy.Duration `json:"dial_timeout,omitempty"`
	ReadTimeout  caddy.Duration `json:"read_timeout,omitempty"`
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`

	// PoolSize is the number of Redis connections. Default: 10 per CPU.
	PoolSize int `json:"pool_size,omitempty"`

	// TLS uses TLS for a redis:// URL too (rediss:// always does).
	TLS bool `json:"tls,omitempty"`

	// InsecureSkipVerify accepts any Redis server certificate (tests only).
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
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

	h.store, h.release, err = h.Store.open(ctx, repl, h.MaxPending, h.logger)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	h.store = watchStore(h.store, h.logger)

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
	if h.WebLogin != nil {
		if err := h.WebLogin.provision(h); err != nil {
			return fmt.Errorf("web_login: %w", err)
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
		case "", "memory":
			if h.Store.URL != "" || h.Store.Password != "" || h.Store.KeyPrefix != "" {
				return errors.New("store: url, password and key_prefix are for the redis store")
			}
		case "redis":
			if h.Store.DialTimeout < 0 || h.Store.ReadTimeout < 0 || h.Store.WriteTimeout < 0 || h.Store.PoolSize < 0 {
				return errors.New("store: redis timeouts and pool_size must be positive")
			}
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
func (sc *StoreConfig) open(ctx caddy.Context, repl *caddy.Replacer, maxPending int, logger *zap.Logger) (store.Store, func() error, error) {
	switch sc.Type {
	case "redis":
		quietRedisClient(logger)
		rs, err := redisstore.New(redisstore.Options{
			URL:                repl.ReplaceAll(sc.URL, ""),
			Username:           repl.ReplaceAll(sc.Username, ""),
			Password:           repl.ReplaceAll(sc.Password, ""),
			KeyPrefix:          sc.KeyPrefix,
			DialTimeout:        time.Duration(sc.DialTimeout),
			ReadTimeout:        time.Duration(sc.ReadTimeout),
			WriteTimeout:       time.Duration(sc.WriteTimeout),
			PoolSize:           sc.PoolSize,
			TLS:                sc.TLS,
			InsecureSkipVerify: sc.InsecureSkipVerify,
			ExpiredGrace:       expiredGrace,
		})
		if err != nil {
			return nil, nil, err
		}
		// Start-up never waits for Redis, but says when it is not there.
		go func() {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := rs.Ping(pctx); err != nil && ctx.Err() == nil {
				logger.Warn("redis store not reachable at start-up; challenge routes answer 503 until it is", zap.Error(err))
			}
		}()
		return rs, rs.Close, nil
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

var redisLoggerOnce sync.Once

// quietRedisClient sends the Redis client's own log lines (one per failed
// dial during an outage) to debug level: the outage itself is logged once
// by watchedStore. The client's logger is process-wide, hence once.
func quietRedisClient(logger *zap.Logger) {
	redisLoggerOnce.Do(func() { redis.SetLogger(redisLogger{logger.Named("redis")}) })
}

type redisLogger struct{ l *zap.Logger }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	if ce := r.l.Check(zapcore.DebugLevel, "redis client"); ce != nil {
		ce.Write(zap.String("detail", fmt.Sprintf(format, v...)))
	}
}

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
