package consolemeauth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// applyDefaults fills in every setting left unset.
func (h *Handler) applyDefaults() {
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
	if h.MaxSessionAge == 0 && h.WebLogin != nil {
		h.MaxSessionAge = h.WebLogin.MaxSessionAge
	}
	if h.MaxSessionAge == 0 {
		h.MaxSessionAge = caddy.Duration(DefaultMaxSessionAge)
	}
	if h.WebLogin != nil && h.WebLogin.RenewBefore == 0 {
		h.WebLogin.RenewBefore = h.JWTExpiration / 4
	}
	if h.Store == nil {
		h.Store = &StoreConfig{Type: "memory"}
	}
	if h.GeneratorRateLimit == nil {
		rl := DefaultGeneratorRateLimit
		h.GeneratorRateLimit = &rl
	}
	if h.LoginRateLimit == nil {
		rl := DefaultLoginRateLimit
		h.LoginRateLimit = &rl
	}
	if h.IPv6Prefix == 0 {
		h.IPv6Prefix = DefaultIPv6Prefix
	}
	if h.MaxLoginsPerClient == 0 {
		h.MaxLoginsPerClient = DefaultMaxLoginsPerClient
	}
	if h.PollerRateLimit == nil {
		rl := DefaultPollerRateLimit
		h.PollerRateLimit = &rl
	}
}

// Validate checks the configuration and each sub-configuration; it changes
// nothing.
func (h *Handler) Validate() error {
	return h.inSite(h.validate())
}

func (h *Handler) validate() error {
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
	if h.MaxSessionAge < 0 {
		return errors.New("max_session_age: must be positive")
	}
	if h.IPv6Prefix < 0 || h.IPv6Prefix > 128 {
		return errors.New("ipv6_prefix: must be between 1 and 128")
	}
	if h.MaxLoginsPerClient < 0 {
		return errors.New("max_logins_per_client: must be positive")
	}
	for name, rl := range map[string]*RateLimit{"generator_rate_limit": h.GeneratorRateLimit,
		"poller_rate_limit": h.PollerRateLimit, "login_rate_limit": h.LoginRateLimit} {
		if err := rl.validate(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if !validCookieName(h.CookieName) {
		return fmt.Errorf("cookie_name: %q is not a valid cookie name", h.CookieName)
	}
	if h.Store != nil {
		if err := h.Store.validate(); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	if h.WebLogin != nil {
		if h.WebLogin.MaxSessionAge != 0 && h.MaxSessionAge != 0 && h.WebLogin.MaxSessionAge != h.MaxSessionAge {
			return errors.New("web_login: max_session_age: differs from the handler's max_session_age; set only one")
		}
		if err := h.WebLogin.validate(h.SAML != nil || h.OIDC != nil); err != nil {
			return fmt.Errorf("web_login: %w", err)
		}
	}
	if h.SAML != nil && h.OIDC != nil {
		return errors.New("saml and oidc: give a site one way to sign in, not both")
	}
	if h.SAML != nil {
		if err := h.SAML.validate(); err != nil {
			return fmt.Errorf("saml: %w", err)
		}
	}
	if h.OIDC != nil {
		if err := h.OIDC.validate(); err != nil {
			return fmt.Errorf("oidc: %w", err)
		}
	}
	if h.MTLS != nil {
		if err := h.MTLS.validate(); err != nil {
			return fmt.Errorf("mtls: %w", err)
		}
	}
	return nil
}

// expand replaces the placeholders in a setting's value. A value made only
// of placeholders that expands to nothing is an error that names them, so
// an unset environment variable is not reported as a missing setting.
func expand(repl *caddy.Replacer, name, value string) (string, error) {
	out := repl.ReplaceAll(value, "")
	if out == "" && value != "" {
		return "", fmt.Errorf("%s: %s expanded to nothing (is the variable or file empty or unset?)", name, value)
	}
	return out, nil
}

// parsePublicURL accepts an absolute http(s) URL with a host and no path,
// query or fragment (a trailing slash is dropped): the module's routes and
// the URLs it hands out live at the site's root.
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
	if strings.TrimRight(u.Path, "/") != "" {
		return nil, fmt.Errorf("%q has a path, but the module's routes live at the root of the site: give only the scheme and host", s)
	}
	u.Path, u.RawPath = "", ""
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
