package testbed

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Caddyfile is a whole Caddyfile: the global options and the sites. String
// renders it in the layout `caddy fmt` writes; every value is quoted when
// Caddy would otherwise split it.
type Caddyfile struct {
	Global Global
	Sites  []Site
}

// Global is the global options block. The zero value is the test default:
// admin endpoint off, everything bound to 127.0.0.1.
type Global struct {
	// Admin is the admin endpoint's address; "" turns it off.
	Admin            string
	Debug            bool
	HTTPPort         int
	HTTPSPort        int
	AutoHTTPSOff     bool
	SkipInstallTrust bool
	// TrustedProxies are CIDR ranges for servers { trusted_proxies static },
	// ClientIPHeaders the headers Caddy reads the client IP from then.
	TrustedProxies  []string
	ClientIPHeaders []string
	// PersistConfigOff keeps Caddy from saving its config; StorageDir
	// moves its data (certificates, instance ID) out of the home
	// directory, and StorageCleanOff stops the cleaner writing there.
	PersistConfigOff bool
	StorageDir       string
	StorageCleanOff  bool
	GracePeriod      string
	LogLevel         string
}

// Site is one site block.
type Site struct {
	Address string
	TLS     *TLS
	// Auth is the consoleme_auth block, if any.
	Auth *Module
	// Respond answers every request with this body instead of proxying.
	Respond string
	// Upstreams are reverse_proxy's host:port upstreams, LBPolicy its
	// lb_policy.
	Upstreams []string
	LBPolicy  string
	// Routes are other routes of the site, written before the
	// consoleme_auth block, to show how the module combines with them.
	Routes []Route
}

// Route is a handle, handle_path or route block (or a bare respond) that
// answers a path with a fixed body.
type Route struct {
	Directive string // handle, handle_path, route or respond
	Path      string // its matcher, e.g. /docs/*
	Body      string // what it responds
}

// TLS is the site's tls directive.
type TLS struct {
	Internal bool
	// ClientAuthMode (require_and_verify, verify_if_given) and
	// ClientTrustPool (a PEM file) configure client certificates.
	ClientAuthMode  string
	ClientTrustPool string
}

// Module is the consoleme_auth directive; empty fields are left out, so the
// module's defaults apply.
type Module struct {
	JWTSecret               string
	PublicURL               string
	CookieName              string
	JWTExpiration           string
	EmailClaim              string
	GroupsClaim             string
	ChallengeTTL            string
	MaxPending              int
	Store                   string     // e.g. "memory" or "redis redis://..."
	StoreBlock              [][]string // lines of the store's block, each its words
	GeneratorRateLimit      string     // e.g. "off" or "30 1m"
	PollerRateLimit         string
	DisableValidatorIPCheck bool
	DisablePollerIPCheck    bool
	SiteName                string
	AllowedGroups           []string
	DeniedGroups            []string
	SAML                    *SAML
	OIDC                    *OIDC
	MTLS                    *MTLS
	WebLogin                *WebLogin
}

// OIDC is the module's oidc block.
type OIDC struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	GroupsClaim  string
}

// SAML is the module's saml block.
type SAML struct {
	IdPMetadataURL  string
	IdPMetadataFile string
	SPCert          string
	SPKey           string
	EntityID        string
	EmailAttribute  string
	GroupsAttribute string
	ClockSkew       string
	// SignAuthnRequests signs every AuthnRequest.
	SignAuthnRequests bool
}

// MTLS is the module's mtls block.
type MTLS struct {
	User   string // san_email, san_uri, cn
	Domain string
	Groups string // ou, static, none
	// StaticGroups maps a user to their groups.
	StaticGroups  map[string][]string
	TokenLifetime string
}

// WebLogin is the module's web_login block.
type WebLogin struct {
	PublicPaths   []string
	MaxSessionAge string
	RenewBefore   string
}

// writer renders directives, one per line, indented by block depth.
type writer struct {
	b     strings.Builder
	depth int
}

func (w *writer) line(words ...string) {
	w.b.WriteString(strings.Repeat("\t", w.depth))
	w.b.WriteString(strings.Join(words, " "))
	w.b.WriteByte('\n')
}

// opt writes "name value" when value is set.
func (w *writer) opt(name, value string) {
	if value != "" {
		w.line(name, Quote(value))
	}
}

func (w *writer) flag(name string, on bool) {
	if on {
		w.line(name)
	}
}

func (w *writer) open(words ...string) {
	w.line(append(words, "{")...)
	w.depth++
}

func (w *writer) close() {
	w.depth--
	w.line("}")
}

// Quote returns s as one Caddyfile token: as it is when it can be, else in
// backquotes, inside which everything is literal (backslashes included, so a
// Windows path survives), else in double quotes with its quotes escaped.
func Quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\"'`{}#\\") {
		return s
	}
	if !strings.Contains(s, "`") {
		return "`" + s + "`"
	}
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = Quote(s)
	}
	return out
}

// String renders the Caddyfile.
func (c Caddyfile) String() string {
	w := &writer{}
	g := c.Global
	w.open()
	if g.Admin == "" {
		w.line("admin off")
	} else {
		w.line("admin", Quote(g.Admin))
	}
	w.flag("persist_config off", g.PersistConfigOff)
	w.flag("debug", g.Debug)
	w.line("default_bind 127.0.0.1")
	w.flag("auto_https off", g.AutoHTTPSOff)
	w.flag("skip_install_trust", g.SkipInstallTrust)
	if g.HTTPPort != 0 {
		w.line("http_port", strconv.Itoa(g.HTTPPort))
	}
	if g.HTTPSPort != 0 {
		w.line("https_port", strconv.Itoa(g.HTTPSPort))
	}
	if g.StorageDir != "" {
		w.line("storage file_system", Quote(g.StorageDir))
	}
	w.flag("storage_clean_interval off", g.StorageCleanOff)
	w.opt("grace_period", g.GracePeriod)
	if len(g.TrustedProxies) > 0 || len(g.ClientIPHeaders) > 0 {
		w.open("servers")
		if len(g.TrustedProxies) > 0 {
			w.line(append([]string{"trusted_proxies static"}, quoteAll(g.TrustedProxies)...)...)
		}
		if len(g.ClientIPHeaders) > 0 {
			w.line(append([]string{"client_ip_headers"}, quoteAll(g.ClientIPHeaders)...)...)
		}
		w.close()
	}
	if g.LogLevel != "" {
		w.open("log")
		w.line("level", g.LogLevel)
		w.close()
	}
	w.close()
	for _, s := range c.Sites {
		w.b.WriteByte('\n')
		s.render(w)
	}
	return w.b.String()
}

func (s Site) render(w *writer) {
	w.open(s.Address)
	if t := s.TLS; t != nil {
		words := []string{"tls"}
		if t.Internal {
			words = append(words, "internal")
		}
		if t.ClientAuthMode == "" && t.ClientTrustPool == "" {
			w.line(words...)
		} else {
			w.open(words...)
			w.open("client_auth")
			w.opt("mode", t.ClientAuthMode)
			if t.ClientTrustPool != "" {
				w.line("trust_pool file", Quote(t.ClientTrustPool))
			}
			w.close()
			w.close()
		}
	}
	for _, r := range s.Routes {
		if r.Directive == "respond" {
			w.line("respond", r.Path, Quote(r.Body))
			continue
		}
		w.open(r.Directive, r.Path)
		w.line("respond", Quote(r.Body))
		w.close()
	}
	if s.Auth != nil {
		s.Auth.render(w)
	}
	switch {
	case s.Respond != "":
		w.line("respond", Quote(s.Respond))
	case len(s.Upstreams) > 0 && s.LBPolicy != "":
		w.open(append([]string{"reverse_proxy"}, s.Upstreams...)...)
		w.line("lb_policy", s.LBPolicy)
		w.close()
	case len(s.Upstreams) > 0:
		w.line(append([]string{"reverse_proxy"}, s.Upstreams...)...)
	}
	w.close()
}

// Block renders only the consoleme_auth directive, at the top level.
func (m Module) Block() string {
	w := &writer{}
	m.render(w)
	return w.b.String()
}

func (m Module) render(w *writer) {
	w.open("consoleme_auth")
	w.opt("jwt_secret", m.JWTSecret)
	w.opt("public_url", m.PublicURL)
	w.opt("site_name", m.SiteName)
	w.opt("cookie_name", m.CookieName)
	w.opt("jwt_expiration", m.JWTExpiration)
	w.opt("email_claim", m.EmailClaim)
	w.opt("groups_claim", m.GroupsClaim)
	w.opt("challenge_ttl", m.ChallengeTTL)
	if m.MaxPending > 0 {
		w.line("max_pending", strconv.Itoa(m.MaxPending))
	}
	if m.Store != "" {
		// The store's URL follows its type as a second token.
		words := append([]string{"store"}, quoteAll(strings.Fields(m.Store))...)
		if len(m.StoreBlock) == 0 {
			w.line(words...)
		} else {
			w.open(words...)
			for _, l := range m.StoreBlock {
				w.line(quoteAll(l)...)
			}
			w.close()
		}
	}
	if m.GeneratorRateLimit != "" {
		w.line(append([]string{"generator_rate_limit"}, strings.Fields(m.GeneratorRateLimit)...)...)
	}
	if m.PollerRateLimit != "" {
		w.line(append([]string{"poller_rate_limit"}, strings.Fields(m.PollerRateLimit)...)...)
	}
	w.flag("disable_validator_ip_check", m.DisableValidatorIPCheck)
	w.flag("disable_poller_ip_check", m.DisablePollerIPCheck)
	if len(m.AllowedGroups) > 0 {
		w.line(append([]string{"allowed_groups"}, quoteAll(m.AllowedGroups)...)...)
	}
	if len(m.DeniedGroups) > 0 {
		w.line(append([]string{"denied_groups"}, quoteAll(m.DeniedGroups)...)...)
	}
	if s := m.SAML; s != nil {
		w.open("saml")
		w.opt("idp_metadata_url", s.IdPMetadataURL)
		w.opt("idp_metadata_file", s.IdPMetadataFile)
		w.opt("sp_cert", s.SPCert)
		w.opt("sp_key", s.SPKey)
		w.opt("entity_id", s.EntityID)
		w.opt("email_attribute", s.EmailAttribute)
		w.opt("groups_attribute", s.GroupsAttribute)
		w.opt("clock_skew", s.ClockSkew)
		w.flag("sign_authn_requests", s.SignAuthnRequests)
		w.close()
	}
	if o := m.OIDC; o != nil {
		w.open("oidc")
		w.opt("issuer", o.Issuer)
		w.opt("client_id", o.ClientID)
		w.opt("client_secret", o.ClientSecret)
		w.opt("groups_claim", o.GroupsClaim)
		w.close()
	}
	if t := m.MTLS; t != nil {
		w.open("mtls")
		w.opt("user", t.User)
		w.opt("domain", t.Domain)
		w.opt("groups", t.Groups)
		for _, user := range sortedKeys(t.StaticGroups) {
			w.line(append([]string{"static_groups", Quote(user)}, quoteAll(t.StaticGroups[user])...)...)
		}
		w.opt("token_lifetime", t.TokenLifetime)
		w.close()
	}
	if l := m.WebLogin; l != nil {
		w.open("web_login")
		if len(l.PublicPaths) > 0 {
			w.line(append([]string{"public_paths"}, quoteAll(l.PublicPaths)...)...)
		}
		w.opt("max_session_age", l.MaxSessionAge)
		w.opt("renew_before", l.RenewBefore)
		w.close()
	}
	w.close()
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SiteAddress is http://127.0.0.1:<port>.
func SiteAddress(port int) string { return fmt.Sprintf("http://127.0.0.1:%d", port) }
