package consolemeauth

import (
	"net/http"
	"strings"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/revocation"
)

// refusalText is what a browser is told when admit refuses a sign-in.
func refusalText(ref *tokenRefusal) (title, text string) {
	if ref.policy {
		return "Not allowed", "Your groups do not allow access to ConsoleMe. Ask your administrator for access."
	}
	if ref.reason == revocation.ReasonBlocked {
		return "Access suspended", "Your access to ConsoleMe is suspended. Ask your administrator."
	}
	return "Signed out", "Your session was ended. Please sign in again."
}

// invalidJWT is ConsoleMe's own answer to a token it does not accept on
// its API (handlers/base.py): Weep deletes its cached token on it and
// tells the user to sign in again.
type invalidJWT struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// isNavigation tells a browser loading a page from an API or CLI call.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if isXHR(r) {
		return false
	}
	return r.Header.Get("Sec-Fetch-Mode") == "navigate" || strings.Contains(r.Header.Get("Accept"), "text/html")
}

// refuseToken answers a request whose token the proxy refuses; it never
// reaches the upstream. The cookie is cleared. A page load is treated as
// signed out (web_login sends it to sign in again; a refusal by the group
// policy gets its page); ConsoleMe's JavaScript under web_login gets what
// an unauthenticated call gets; any other call (Weep, scripts) gets
// ConsoleMe's invalid_jwt answer.
func (h *Handler) refuseToken(w http.ResponseWriter, r *http.Request, ref *tokenRefusal) error {
	metrics.tokensRefused.WithLabelValues(ref.reason).Inc()
	h.audit(r, "token refused", ref.reason, zap.String("user", ref.user), zap.String("uri", redactURI(r.URL.Path)))
	h.sessions.clear(w, r)
	switch {
	case isNavigation(r) && ref.policy:
		title, text := refusalText(ref)
		return h.page(w, r, http.StatusForbidden, title, text)
	case isNavigation(r) && h.WebLogin != nil && (h.sp != nil || h.oidc != nil):
		return h.startLogin(w, r, r.URL.RequestURI())
	case isNavigation(r):
		// Without web_login, the upstream has its own login: load the
		// page again, now without the token.
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, r.URL.RequestURI(), http.StatusSeeOther)
		return nil
	case isXHR(r) && h.WebLogin != nil && ref.policy:
		return writeError(w, http.StatusForbidden, "forbidden", "your groups do not allow access to ConsoleMe")
	case isXHR(r) && h.WebLogin != nil:
		return h.unauthenticatedXHR(w, r)
	}
	return writeJSON(w, http.StatusForbidden, invalidJWT{
		Code: "invalid_jwt", Message: "JWT is invalid or has expired.", RequestID: uuid.NewString(),
	})
}
