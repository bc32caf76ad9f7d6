package consolemeauth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// Sources of the user name and of the groups of a client certificate.
const (
	MTLSUserSANEmail = "san_email"
	MTLSUserSANURI   = "san_uri"
	MTLSUserCN       = "cn"

	MTLSGroupsOU     = "ou"
	MTLSGroupsStatic = "static"
	MTLSGroupsNone   = "none"

	// DefaultMTLSTokenLifetime is the lifetime of a token minted from a
	// client certificate. It only has to outlive one proxied request.
	DefaultMTLSTokenLifetime = 5 * time.Minute
)

// MTLSConfig turns a client certificate that Caddy has verified into a
// ConsoleMe session, so that Weep's `authentication_method: mtls` works
// against an unchanged open-source ConsoleMe, which cannot read client
// certificates itself.
//
// Caddy terminates TLS and verifies the certificate against the site's
// `tls { client_auth { mode require_and_verify (or verify_if_given);
// trust_pool ... } }`; only a certificate with a verified chain (so a CA trust
// pool, not a bare trusted leaf) is used. For every request that carries one
// and is not one of the handler's own routes, the handler maps the leaf
// certificate to a user and groups, mints a short-lived ConsoleMe JWT and
// puts it on the proxied request as the consoleme_auth cookie (cookie_name),
// replacing any such cookie the client sent; other cookies are kept. The
// token's iat is the certificate's NotBefore, so ConsoleMe's "certificate too
// old" rule (now − iat against the role's maximum certificate age; Weep's
// error 905) measures the certificate's age. Nothing is cached: Caddy
// verifies the certificate on every connection, so an expired or no longer
// trusted certificate stops working at once.
//
// The groups pass through groups_filter, and the handler's allowed_groups and
// denied_groups apply as they do to challenge approvals. A certificate that
// cannot be mapped to a user, or whose groups the policy refuses, gets a 403
// JSON error `{"status": "error", "code": ..., "message": ...}`, the shape
// Weep reports, and the request never reaches ConsoleMe. Requests without a
// verified client certificate are not touched.
//
// The handler sets the placeholder {http.auth.user.id} to the mapped user,
// so access logs can name who made each request.
type MTLSConfig struct {
	// User is where the ConsoleMe user (the JWT's email claim) comes from:
	//
	//   - san_email: the first email address among the certificate's
	//     subject alternative names;
	//   - san_uri: the first URI subject alternative name (the first that
	//     starts with URIPrefix, when set). The user is the rest of the URI
	//     after URIPrefix; without URIPrefix it is the address of a mailto:
	//     URI, or else the last segment of the URI's path, so
	//     spiffe://example.org/user/alice gives alice;
	//   - cn: the subject's common name.
	//
	// Default: san_email.
	User string `json:"user,omitempty"`

	// URIPrefix restricts the san_uri source to URIs that start with this
	// prefix, e.g. spiffe://example.org/user/, and takes the user from what
	// follows it. Only valid with user san_uri. Default: none.
	URIPrefix string `json:"uri_prefix,omitempty"`

	// Domain is appended as "@<domain>" to a user that has no "@" (from a
	// CN or a URI), so ConsoleMe sees an email address: alice becomes
	// alice@example.com. Users that already hold an "@" are kept as they
	// are. Default: none, the user is used as found.
	Domain string `json:"domain,omitempty"`

	// Groups is where the user's groups (the JWT's groups claim) come from:
	//
	//   - ou: the subject's organizational unit (OU) values, in order;
	//   - static: StaticGroups, looked up by the mapped user (after
	//     Domain); a user not listed has no groups;
	//   - none: no groups.
	//
	// Default: static when StaticGroups is set, ou otherwise.
	Groups string `json:"groups,omitempty"`

	// StaticGroups maps users (as ConsoleMe sees them, after Domain) to
	// their groups, for groups static.
	StaticGroups map[string][]string `json:"static_groups,omitempty"`

	// TokenLifetime is the lifetime (exp − now) of each token minted from a
	// certificate. A token is minted for every request and ConsoleMe never
	// hands it back, so it only has to outlive one request. Default: 5m.
	TokenLifetime caddy.Duration `json:"token_lifetime,omitempty"`
}

// certMapper is the provisioned MTLSConfig: how a verified certificate
// names a user and groups. It is read-only and safe for concurrent use.
type certMapper struct {
	user      string
	uriPrefix string
	domain    string
	groups    string
	static    map[string][]string
}

// validate checks the settings that need no placeholder expansion.
func (c *MTLSConfig) validate() error {
	switch c.User {
	case "", MTLSUserSANEmail, MTLSUserSANURI, MTLSUserCN:
	default:
		return fmt.Errorf("user: unknown source %q (want san_email, san_uri or cn)", c.User)
	}
	switch c.Groups {
	case "":
	case MTLSGroupsOU, MTLSGroupsNone:
		if len(c.StaticGroups) > 0 {
			return fmt.Errorf("static_groups: only used with groups static, not %s", c.Groups)
		}
	case MTLSGroupsStatic:
		if len(c.StaticGroups) == 0 {
			return errors.New("static_groups: maps no user, but groups is static")
		}
	default:
		return fmt.Errorf("groups: unknown source %q (want ou, static or none)", c.Groups)
	}
	for u, groups := range c.StaticGroups {
		if why := checkUser(u); why != "" {
			return fmt.Errorf("static_groups: %q: %s", u, why)
		}
		if slices.Contains(groups, "") {
			return fmt.Errorf("static_groups: %q: empty group name", u)
		}
	}
	if c.TokenLifetime < 0 {
		return errors.New("token_lifetime: must be positive")
	}
	return nil
}

// provision applies the defaults and expands placeholders in Domain and
// URIPrefix.
func (c *MTLSConfig) provision(repl *caddy.Replacer) (*certMapper, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	m := &certMapper{
		user:      c.User,
		uriPrefix: repl.ReplaceAll(c.URIPrefix, ""),
		domain:    strings.TrimPrefix(repl.ReplaceAll(c.Domain, ""), "@"),
		groups:    c.Groups,
		static:    c.StaticGroups,
	}
	if m.user == "" {
		m.user = MTLSUserSANEmail
	}
	if m.groups == "" {
		m.groups = MTLSGroupsOU
		if len(m.static) > 0 {
			m.groups = MTLSGroupsStatic
		}
	}
	if m.uriPrefix != "" && m.user != MTLSUserSANURI {
		return nil, fmt.Errorf("uri_prefix: only applies to user san_uri, not %s", m.user)
	}
	if c.Domain != "" && (m.domain == "" || strings.ContainsAny(m.domain, "@ \t\r\n/")) {
		return nil, fmt.Errorf("domain: %q is not a domain name", c.Domain)
	}
	return m, nil
}

// errUnmappable says why a certificate names no usable user; its text is
// shown to the client.
type errUnmappable struct{ reason string }

func (e errUnmappable) Error() string { return e.reason }

// userAndGroups maps a verified leaf certificate to a ConsoleMe user and groups
// (before the handler's group policy).
func (m *certMapper) userAndGroups(cert *x509.Certificate) (string, []string, error) {
	var user string
	switch m.user {
	case MTLSUserSANEmail:
		if len(cert.EmailAddresses) == 0 {
			return "", nil, errUnmappable{"the certificate has no email address among its subject alternative names"}
		}
		user = cert.EmailAddresses[0]
	case MTLSUserSANURI:
		u, err := m.userFromURIs(cert.URIs)
		if err != nil {
			return "", nil, err
		}
		user = u
	case MTLSUserCN:
		user = cert.Subject.CommonName
		if user == "" {
			return "", nil, errUnmappable{"the certificate's subject has no common name"}
		}
	}
	if user == "" {
		return "", nil, errUnmappable{"the certificate names an empty user"}
	}
	if m.domain != "" && !strings.Contains(user, "@") {
		user += "@" + m.domain
	}
	if why := checkUser(user); why != "" {
		return "", nil, errUnmappable{"the certificate names no usable user: " + strings.TrimPrefix(why, "the ")}
	}

	groups := []string{}
	switch m.groups {
	case MTLSGroupsOU:
		for _, ou := range cert.Subject.OrganizationalUnit {
			if ou != "" {
				groups = append(groups, ou)
			}
		}
	case MTLSGroupsStatic:
		groups = append(groups, m.static[user]...)
	}
	return user, groups, nil
}

// userFromURIs picks the user from the certificate's URI SANs.
func (m *certMapper) userFromURIs(uris []*url.URL) (string, error) {
	if m.uriPrefix != "" {
		for _, u := range uris {
			if s := u.String(); strings.HasPrefix(s, m.uriPrefix) {
				if rest := strings.TrimPrefix(s, m.uriPrefix); rest != "" {
					return rest, nil
				}
			}
		}
		return "", errUnmappable{"the certificate has no URI subject alternative name under " + m.uriPrefix}
	}
	if len(uris) == 0 {
		return "", errUnmappable{"the certificate has no URI subject alternative name"}
	}
	u := uris[0]
	if u.Scheme == "mailto" {
		addr, err := url.PathUnescape(u.Opaque)
		if err != nil || addr == "" {
			return "", errUnmappable{"the certificate's mailto URI holds no address"}
		}
		return addr, nil
	}
	p := strings.TrimRight(u.Path, "/")
	if last := p[strings.LastIndexByte(p, '/')+1:]; last != "" {
		return last, nil
	}
	return "", errUnmappable{"the certificate's URI subject alternative name has no path to take a user from"}
}

// applyCertificate authenticates a proxied request by its verified client
// certificate: the request goes upstream with a session token minted for
// the certificate's user. It reports handled when it has answered the
// request itself (a certificate it refuses).
func (h *Handler) applyCertificate(w http.ResponseWriter, r *http.Request, cert *x509.Certificate) (handled bool, err error) {
	user, groups, err := h.mtls.userAndGroups(cert)
	if err != nil {
		h.audit(r, "mtls certificate refused", err.Error(),
			zap.String("subject", cert.Subject.String()), zap.String("serial", cert.SerialNumber.String()))
		return true, writeError(w, http.StatusForbidden, "invalid_certificate",
			"client certificate not accepted: "+err.Error())
	}
	groups = h.policy.filterGroups(groups)
	ref, err := h.sessions.forwardCertificate(r, user, groups, cert.NotBefore, h.now())
	if ref != nil {
		h.audit(r, "mtls certificate refused", ref.reason, zap.String("user", user), zap.String("serial", cert.SerialNumber.String()))
		if ref.policy {
			return true, writeError(w, http.StatusForbidden, "group_policy",
				"client certificate not accepted: "+user+" is refused by the "+ref.reason)
		}
		return true, writeError(w, http.StatusForbidden, "user_blocked",
			"client certificate not accepted: "+user+"'s access is suspended")
	}
	if err != nil {
		h.logger.Error("minting certificate token", zap.Error(err))
		return true, writeError(w, http.StatusInternalServerError, "internal_error", "the token could not be minted")
	}
	setUser(r, user)
	h.debug(r, "mtls session", zap.String("user", user), zap.Int("groups", len(groups)),
		zap.String("serial", cert.SerialNumber.String()))
	return false, nil
}
