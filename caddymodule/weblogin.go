package consolemeauth

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/crewjam/saml"
	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/token"
)

// WebLoginConfig puts all of ConsoleMe behind the SAML login: a browser
// without a valid consoleme_auth cookie is sent to the IdP and comes back to
// the page it asked for, so ConsoleMe itself needs no SAML configuration.
type WebLoginConfig struct {
	// PublicPaths stay reachable without a session, as path.Match patterns
	// (e.g. /healthcheck, /static/*) or prefixes ending in a slash. The CLI
	// routes (/noauth/...) and the API routes Weep calls with its own
	// cookie are always public; ConsoleMe answers those itself.
	PublicPaths []string `json:"public_paths,omitempty"`

	// MaxSessionAge is how long after the IdP login a cookie may be renewed
	// without a new IdP round trip; after that the user logs in again.
	// Default: 12h.
	MaxSessionAge caddy.Duration `json:"max_session_age,omitempty"`

	// RenewBefore renews a cookie on a normal page load when it expires
	// within this time (and the session is younger than MaxSessionAge).
	// Default: a quarter of jwt_expiration.
	RenewBefore caddy.Duration `json:"renew_before,omitempty"`
}

// weepPaths are ConsoleMe's routes that Weep calls with its cookie (or
// mTLS) and that ConsoleMe's deployment docs exempt from web auth: they are
// never redirected to the IdP, ConsoleMe answers them itself.
var weepPaths = []string{
	"/noauth/",
	"/api/v1/get_credentials",
	"/api/v1/get_roles",
	"/api/v2/get_roles",
	"/api/v2/get_resource_url",
	"/api/v2/mtls/",
	"/api/v1/myheaders",
	"/api/v1/policies/typeahead",
}

func (c *WebLoginConfig) provision(h *Handler) error {
	if h.SAML == nil {
		return errors.New("needs a saml block to log browsers in")
	}
	if c.MaxSessionAge == 0 {
		c.MaxSessionAge = caddy.Duration(12 * time.Hour)
	}
	if c.RenewBefore == 0 {
		c.RenewBefore = h.JWTExpiration / 4
	}
	if c.MaxSessionAge < 0 || c.RenewBefore < 0 {
		return errors.New("max_session_age and renew_before must be positive")
	}
	for _, p := range c.PublicPaths {
		if !strings.HasPrefix(p, "/") {
			return errors.New("public_paths: " + p + " must start with /")
		}
		if _, err := path.Match(p, "/"); err != nil {
			return errors.New("public_paths: " + p + ": bad pattern")
		}
	}
	return nil
}

// isPublic reports whether p needs no session.
func (c *WebLoginConfig) isPublic(p string) bool {
	for _, w := range weepPaths {
		if strings.HasPrefix(p, w) {
			return true
		}
	}
	for _, pat := range c.PublicPaths {
		if strings.HasSuffix(pat, "/") && strings.HasPrefix(p, pat) {
			return true
		}
		if ok, _ := path.Match(pat, p); ok {
			return true
		}
	}
	return false
}

// isXHR tells a request from ConsoleMe's JavaScript, as ConsoleMe does
// (should_force_redirect): it gets a 403 JSON redirect instead of a 302.
func isXHR(r *http.Request) bool {
	return r.Header.Get("X-Requested-With") == "XMLHttpRequest" ||
		strings.Contains(r.Header.Get("Accept"), "application/json")
}

// guardWebLogin lets a request with a valid session through (renewing its
// cookie when due), sends a browser without one to the IdP, and answers
// ConsoleMe's JavaScript with ConsoleMe's 403 redirect JSON. It reports
// whether it answered the request itself.
func (h *Handler) guardWebLogin(w http.ResponseWriter, r *http.Request) (bool, error) {
	wl := h.WebLogin
	if wl.isPublic(r.URL.Path) {
		return false, nil
	}
	id := h.identity(r)
	now := h.now()
	if id != nil && now.Sub(id.IssuedAt) <= time.Duration(wl.MaxSessionAge) {
		groups := h.policy.filterGroups(id.Groups)
		if why := h.policy.groupsRefusal(groups); why != "" {
			h.logger.Info("web login refused", zap.String("user", id.Email), zap.String("reason", why))
			if isXHR(r) {
				return true, writeError(w, http.StatusForbidden, "forbidden", "your groups do not allow access to ConsoleMe")
			}
			return true, h.page(w, r, http.StatusForbidden, "Not allowed",
				"Your groups do not allow access to ConsoleMe. Ask your administrator for access.")
		}
		if id.Expires.Sub(now) < time.Duration(wl.RenewBefore) && r.Method == http.MethodGet && !isXHR(r) {
			h.renewSession(w, r, id, now)
		}
		return false, nil
	}
	// No session, an invalid one, or one too old to renew.
	loginURL := h.baseURL(r) + "/saml/login?return_to=" + url.QueryEscape(r.URL.RequestURI())
	if isXHR(r) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return true, writeJSON(w, http.StatusForbidden, apiRedirect{
			Type:        "redirect",
			RedirectURL: loginURL,
			Reason:      "unauthenticated",
			Message:     "User is not authenticated. Redirect to authenticate",
		})
	}
	if !h.allowRate(w, r, h.genRL, "web_login") {
		return true, nil
	}
	return true, h.startLogin(w, r, r.URL.RequestURI())
}

// renewSession mints a fresh cookie for the same identity, keeping the
// original login time as iat, and hands it to ConsoleMe on this request too.
func (h *Handler) renewSession(w http.ResponseWriter, r *http.Request, id *token.Identity, now time.Time) {
	jwt, exp, err := h.minter.MintAt(id.Email, h.policy.filterGroups(id.Groups), id.IssuedAt, now)
	if err != nil {
		return
	}
	h.setSessionCookie(w, r, jwt, exp)
	replaceCookie(r.Header, h.CookieName, jwt)
	h.debug(r, "session renewed", zap.String("user", id.Email))
}

// serveLogin starts a SAML login that returns to return_to (GET /saml/login).
func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) error {
	if !allowMethods(w, r, http.MethodGet) {
		return nil
	}
	if !h.allowRate(w, r, h.genRL, "login") {
		return nil
	}
	return h.startLogin(w, r, safeReturnPath(r.URL.Query().Get("return_to")))
}

// serveSLO is where the IdP sends the browser back after a single logout
// (its LogoutResponse), or starts one itself (a LogoutRequest): either way
// the session cookie is cleared and the user is told they are signed out.
func (h *Handler) serveSLO(w http.ResponseWriter, r *http.Request) error {
	if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxACSBody)
	_ = r.ParseForm()
	h.clearSessionCookie(w, r)
	if sp, err := h.sp.forBase(h.baseURL(r)); err == nil && r.Form.Get("SAMLResponse") != "" {
		if err := sp.ValidateLogoutResponseRequest(r); err != nil {
			h.debug(r, "IdP logout response not validated", zap.Error(err))
		}
	}
	return h.page(w, r, http.StatusOK, "Signed out", "You are signed out of ConsoleMe.")
}

// serveLogout clears the session and, when the IdP has a single-logout
// endpoint, sends the browser there too (GET /logout).
func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) error {
	if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
		return nil
	}
	id := h.identity(r)
	h.clearSessionCookie(w, r)
	if id != nil {
		h.logger.Info("logout", zap.String("user", id.Email), zap.String("remote_ip", clientIP(r)))
	}
	if sp, err := h.sp.forBase(h.baseURL(r)); err == nil && id != nil {
		if sp.GetSLOBindingLocation(saml.HTTPRedirectBinding) != "" {
			if u, err := sp.MakeRedirectLogoutRequest(id.Email, ""); err == nil {
				w.Header().Set("Cache-Control", "no-store")
				http.Redirect(w, r, u.String(), http.StatusFound)
				return nil
			}
		}
	}
	return h.page(w, r, http.StatusOK, "Signed out", "You are signed out of ConsoleMe.")
}
