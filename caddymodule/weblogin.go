package consolemeauth

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// WebLoginConfig puts all of ConsoleMe behind the browser sign-in of the
// site's saml or oidc block: a browser without a valid consoleme_auth cookie
// is sent to the IdP and comes back to the page it asked for, so ConsoleMe
// itself needs no login configuration of its own.
type WebLoginConfig struct {
	// PublicPaths stay reachable without a session, as path.Match patterns
	// (e.g. /healthcheck, /static/*) or prefixes ending in a slash. The CLI
	// routes (/noauth/...) and the API routes Weep calls with its own
	// cookie are always public; ConsoleMe answers those itself.
	PublicPaths []string `json:"public_paths,omitempty"`

	// MaxSessionAge is the handler's max_session_age, accepted here too
	// (where earlier versions had it). Set one of the two.
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

// validate checks the web_login settings; defaults are applied already.
func (c *WebLoginConfig) validate(hasSignIn bool) error {
	if !hasSignIn {
		return errors.New("needs a saml or an oidc block to sign browsers in")
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

// isPublic reports whether the request's path needs no session. Exempt
// paths match whole segments of the path as the upstream will route it: a
// path with a dot segment or an encoded slash or backslash is never exempt,
// so no normalising hop behind us can turn an exemption into a bypass.
func (c *WebLoginConfig) isPublic(u *url.URL) bool {
	p := u.Path
	if hasDotSegment(p) || strings.Contains(p, "//") || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	if raw := strings.ToLower(u.EscapedPath()); strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
		return false
	}
	for _, w := range weepPaths {
		if underPath(p, w) {
			return true
		}
	}
	for _, pat := range c.PublicPaths {
		if underPath(p, pat) {
			return true
		}
		if ok, _ := path.Match(pat, p); ok {
			return true
		}
	}
	return false
}

// underPath reports whether p is prefix or lies below it, segment-wise: a
// prefix ending in a slash covers what is below it, any other covers itself
// and what is below it (/api/v1/get_roles covers /api/v1/get_roles/ but
// not /api/v1/get_rolesX).
func underPath(p, prefix string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(p, prefix)
	}
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// hasDotSegment reports whether p has a "." or ".." segment.
func hasDotSegment(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
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

// guardWebLogin lets a request with a session through (renewing its cookie
// when due), sends a browser without one to the IdP, and answers
// ConsoleMe's JavaScript with ConsoleMe's 403 redirect JSON. It reports
// whether it answered the request itself.
func (h *Handler) guardWebLogin(w http.ResponseWriter, r *http.Request) (bool, error) {
	if h.WebLogin.isPublic(r.URL) {
		return false, nil
	}
	now := h.now()
	if ss := h.sessions.read(r, now); ss != nil {
		// The group policy and the revocations were checked by read
		// (and before, for every request, by ServeHTTP).
		setUser(r, ss.email)
		if r.Method == http.MethodGet && !isXHR(r) {
			h.sessions.renewIfDue(w, r, ss, now)
		}
		return false, nil
	}
	// No session, an invalid one, or one whose IdP sign-in is too old.
	if isXHR(r) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return true, h.unauthenticatedXHR(w, r)
	}
	return true, h.startLogin(w, r, r.URL.RequestURI())
}

// unauthenticatedXHR answers ConsoleMe's JavaScript (or a form post)
// without a session as ConsoleMe does: 403 with a redirect to sign in.
func (h *Handler) unauthenticatedXHR(w http.ResponseWriter, r *http.Request) error {
	loginURL := h.baseURL(r) + h.loginPath() + "?return_to=" + url.QueryEscape(r.URL.RequestURI())
	return writeJSON(w, http.StatusForbidden, apiRedirect{
		Type:        "redirect",
		RedirectURL: loginURL,
		Reason:      "unauthenticated",
		Message:     "User is not authenticated. Redirect to authenticate",
	})
}

// serveSLO is where the IdP sends the browser back after a single logout
// (its LogoutResponse), or starts one itself (a LogoutRequest). A
// LogoutResponse the IdP signed, or a request from this site, clears the
// session and tells the user they are signed out; anything else (another
// site's form or link, an unsigned or forged response, an IdP-initiated
// LogoutRequest) signs nobody out and gets the page whose button posts the
// logout from this site, as a cross-site /logout does.
func (h *Handler) serveSLO(w http.ResponseWriter, r *http.Request) error {
	if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxACSBody)
	_ = r.ParseForm()
	confirmed := false
	if r.Form.Get("SAMLResponse") != "" {
		err := h.sp.ValidateLogoutResponse(r, h.baseURL(r))
		if err != nil {
			h.debug(r, "IdP logout response not validated", zap.Error(err))
		}
		confirmed = err == nil
	}
	if !confirmed && !h.fromThisSite(r) {
		return h.confirmLogout(w, r)
	}
	h.endSession(w, r)
	return h.page(w, r, http.StatusOK, "Signed out", "You are signed out of ConsoleMe.")
}

// endSession signs the browser out: its session is revoked, so that its
// token is refused everywhere at once (not only deleted from this
// browser), and the cookie is cleared. It returns the session ended, if
// there was one.
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) *session {
	now := h.now()
	id := h.sessions.read(r, now)
	h.sessions.clear(w, r)
	if id == nil {
		return nil
	}
	h.logger.Info("logout", zap.String("user", id.email), zap.String("remote_ip", clientIP(r)))
	if id.id != "" {
		if err := h.revokeSession(r.Context(), id.id, revokedByLogout, now, zap.String("user", id.email)); err != nil {
			h.logger.Warn("the revocation of a signed-out session was not stored; this instance refuses it, others may not", zap.Error(err))
		}
	}
	return id
}

// fromThisSite reports whether a logout request came from this site or
// from the user (typed, bookmarked), not from another site's link, image
// or form.
func (h *Handler) fromThisSite(r *http.Request) bool {
	return sameSiteRequest(r) && (r.Method != http.MethodPost || h.sameOrigin(r))
}

// confirmLogout answers a logout another site asked for: nobody is signed
// out; the page's button posts the logout from this site.
func (h *Handler) confirmLogout(w http.ResponseWriter, r *http.Request) error {
	h.debug(r, "cross-site logout asked for confirmation")
	return render(w, http.StatusOK, "logout", onwardCSP, messagePage{Title: "Sign out of ConsoleMe?"})
}

// serveLogout clears the session and, when the IdP has a single-logout
// endpoint, sends the browser there too (GET or POST /logout). A request
// another site made (an image tag, a cross-site form) signs nobody out: it
// gets a page whose button posts the logout from this site.
func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) error {
	if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
		return nil
	}
	if !h.fromThisSite(r) {
		return h.confirmLogout(w, r)
	}
	id := h.endSession(w, r)
	if id != nil {
		if sent, err := h.idpLogout(w, r, id.email); sent || err != nil {
			return err
		}
	}
	return h.page(w, r, http.StatusOK, "Signed out", "You are signed out of ConsoleMe.")
}

// sameSiteRequest reports whether the browser says the request came from
// this site or from the user (typed, bookmarked); browsers that send no
// Sec-Fetch-Site are trusted, as they predate the header.
func sameSiteRequest(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// loginPath is where a browser starts a login: /oidc/login or /saml/login.
func (h *Handler) loginPath() string {
	if h.oidc != nil {
		return "/oidc/login"
	}
	return "/saml/login"
}

// idpLogout sends the browser to sign out at the identity provider too,
// when it offers that: a redirect to the OpenID provider's end-session
// endpoint, or a LogoutRequest by the SAML IdP's HTTP-Redirect endpoint
// (else its HTTP-POST one, as a form the browser submits). It reports
// whether it answered.
func (h *Handler) idpLogout(w http.ResponseWriter, r *http.Request, user string) (bool, error) {
	base := h.baseURL(r)
	if h.oidc != nil {
		u, ok := h.oidc.LogoutURL(base+"/", "")
		if ok {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, u, http.StatusFound)
		}
		return ok, nil
	}
	rd, err := h.sp.Logout(base, user, "")
	if err != nil {
		return false, nil
	}
	return true, h.sendToIdP(w, r, rd)
}
