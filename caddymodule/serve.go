package consolemeauth

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// ServeHTTP answers the handler's own routes and passes every other request
// to next: with a verified client certificate (mtls) as that certificate's
// user, under web_login only with a session, and otherwise untouched,
// unless it carries a token the proxy refuses (revoked, or groups the
// policy refuses): such a token never reaches the upstream.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	rt, arg := matchRoute(r.URL.Path, h.sp != nil, h.oidc != nil)
	switch rt {
	case routeGenerator:
		return h.serveGenerator(w, r, arg)
	case routePoller:
		return h.servePoller(w, r, arg)
	case routeValidator:
		return h.serveValidator(w, r, arg)
	case routeValidatorAPI:
		return h.serveValidatorAPI(w, r, arg)
	case routeSAMLMetadata:
		return h.serveMetadata(w, r)
	case routeSAMLACS:
		return h.serveACS(w, r)
	case routeSAMLLogin:
		return h.serveLogin(w, r)
	case routeSAMLSLO:
		return h.serveSLO(w, r)
	case routeOIDCLogin:
		return h.serveLogin(w, r)
	case routeOIDCCallback:
		return h.serveOIDCCallback(w, r)
	case routeSessions:
		return h.serveSessions(w, r)
	}
	if h.mtls != nil {
		if cert := verifiedLeaf(r); cert != nil {
			// The certificate is the session; web_login must not
			// bounce or renew it.
			if handled, err := h.applyCertificate(w, r, cert); handled || err != nil {
				return err
			}
			return next.ServeHTTP(w, r)
		}
		h.sessions.dropCertificateTokens(r, h.now())
	}
	if h.WebLogin != nil && r.URL.Path == "/logout" {
		return h.serveLogout(w, r)
	}
	if ref := h.sessions.refused(r, h.now()); ref != nil {
		return h.refuseToken(w, r, ref)
	}
	if h.WebLogin != nil {
		if handled, err := h.guardWebLogin(w, r); handled || err != nil {
			return err
		}
	}
	return next.ServeHTTP(w, r)
}
