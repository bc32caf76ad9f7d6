package consolemeauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI serves the operators' session endpoints on Caddy's admin
// endpoint (its listener, origin checks and access control apply; nothing
// is added to the sites):
//
//	POST /consoleme-auth/revoke     end sessions, block or unblock a user
//	GET  /consoleme-auth/sessions   the live sessions of a user
//
// `caddy consoleme-auth revoke` and `caddy consoleme-auth sessions` call
// them, as `caddy reload` calls /load. Caddy loads the module by itself.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.consoleme_auth",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes returns the admin routes.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/consoleme-auth/revoke", Handler: caddy.AdminHandlerFunc(serveAdminRevoke)},
		{Pattern: "/consoleme-auth/sessions", Handler: caddy.AdminHandlerFunc(serveAdminSessions)},
	}
}

// live holds the provisioned handlers, so that the admin endpoints reach
// the running sites.
var live = struct {
	sync.Mutex
	handlers []*Handler
}{}

func register(h *Handler) {
	live.Lock()
	defer live.Unlock()
	live.handlers = append(live.handlers, h)
}

func unregister(h *Handler) {
	live.Lock()
	defer live.Unlock()
	live.handlers = slices.DeleteFunc(live.handlers, func(x *Handler) bool { return x == h })
}

// sitesFor returns one handler per site (the latest provisioned: the
// instances of a site share their sessions), those matching site when it
// is set (its address, its public_url, or the host of its public_url).
func sitesFor(site string) []*Handler {
	live.Lock()
	defer live.Unlock()
	seen := map[string]bool{}
	var out []*Handler
	for i := len(live.handlers) - 1; i >= 0; i-- {
		h := live.handlers[i]
		if site != "" && !h.isSite(site) {
			continue
		}
		if key := h.sessionKey(); !seen[key] {
			seen[key] = true
			out = append(out, h)
		}
	}
	slices.Reverse(out)
	return out
}

// isSite reports whether name names this site.
func (h *Handler) isSite(name string) bool {
	if name == h.Site || (h.PublicURL != "" && name == h.PublicURL) {
		return true
	}
	return h.base != nil && name == h.base.Host
}

// siteName is how the admin answers name a site.
func (h *Handler) adminSiteName() string {
	switch {
	case h.PublicURL != "":
		return h.PublicURL
	case h.Site != "":
		return h.Site
	}
	return "(unnamed site)"
}

// RevokeRequest is the body of POST /consoleme-auth/revoke. Give a user,
// a session, or both.
type RevokeRequest struct {
	// User: every session of the user begun before now is ended.
	User string `json:"user,omitempty"`
	// Session: this one session is ended.
	Session string `json:"session,omitempty"`
	// Block (with User): the user also gets no new token (sign-in,
	// approval, client certificate) for this long, e.g. "24h".
	Block string `json:"block,omitempty"`
	// Unblock (with User): lift a block; nothing else is revoked.
	Unblock bool `json:"unblock,omitempty"`
	// Site limits the call to one site (its address, public_url or host).
	Site string `json:"site,omitempty"`
}

// RevokeResult is what was done on one site.
type RevokeResult struct {
	Site         string     `json:"site"`
	User         string     `json:"user,omitempty"`
	Session      string     `json:"session,omitempty"`
	RevokedAt    time.Time  `json:"revoked_at"`
	BlockedUntil *time.Time `json:"blocked_until,omitempty"`
	Unblocked    bool       `json:"unblocked,omitempty"`
}

// maxAdminBody bounds an admin request body.
const maxAdminBody = 64 << 10

func badAdminRequest(msg string) error {
	return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: errors.New(msg), Message: msg}
}

func serveAdminRevoke(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed; use POST")}
	}
	var req RevokeRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return badAdminRequest("the body is not a revoke request: " + err.Error())
	}
	block, err := req.check()
	if err != nil {
		return badAdminRequest(err.Error())
	}
	sites := sitesFor(req.Site)
	if len(sites) == 0 {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("no consoleme_auth site matches"), Message: "no consoleme_auth site matches " + fmt.Sprintf("%q", req.Site)}
	}
	var results []RevokeResult
	for _, h := range sites {
		res, err := h.adminRevoke(r, req, block)
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err,
				Message: "site " + h.adminSiteName() + ": " + err.Error() + " (this instance enforces it; others may not)"}
		}
		results = append(results, res)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"revoked": results})
}

// check validates a revoke request and returns its block duration.
func (req *RevokeRequest) check() (time.Duration, error) {
	if req.User == "" && req.Session == "" {
		return 0, errors.New("give a user, a session, or both")
	}
	if req.User != "" {
		if why := checkUser(req.User); why != "" {
			return 0, errors.New(why)
		}
	}
	if req.Session != "" && !validSessionID(req.Session) {
		return 0, errors.New("the session id is malformed")
	}
	if (req.Block != "" || req.Unblock) && req.User == "" {
		return 0, errors.New("block and unblock need a user")
	}
	if req.Block != "" && req.Unblock {
		return 0, errors.New("block and unblock are exclusive")
	}
	if req.Block == "" {
		return 0, nil
	}
	d, err := caddy.ParseDuration(req.Block)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("block %q: want a positive duration such as 24h", req.Block)
	}
	return d, nil
}

// adminRevoke carries out a revoke request on this site.
func (h *Handler) adminRevoke(r *http.Request, req RevokeRequest, block time.Duration) (RevokeResult, error) {
	now := h.now()
	res := RevokeResult{Site: h.adminSiteName(), User: req.User, Session: req.Session, RevokedAt: now}
	who := zap.String("admin_remote", r.RemoteAddr)
	var errs []error
	if req.Unblock {
		res.Unblocked = true
		return res, h.unblock(r.Context(), req.User, revokedByAdmin, now)
	}
	if req.Session != "" {
		errs = append(errs, h.revokeSession(r.Context(), req.Session, revokedByAdmin, now, who))
	}
	if req.User != "" {
		errs = append(errs, h.revokeUser(r.Context(), req.User, "", revokedByAdmin, now, who))
	}
	if block > 0 {
		until := now.Add(block)
		res.BlockedUntil = &until
		errs = append(errs, h.block(r.Context(), req.User, revokedByAdmin, now, block))
	}
	return res, errors.Join(errs...)
}

// SiteSessions lists a user's sessions on one site.
type SiteSessions struct {
	Site     string          `json:"site"`
	Sessions []store.Session `json:"sessions"`
	// BlockedUntil is set while the user is blocked on the site.
	BlockedUntil *time.Time `json:"blocked_until,omitempty"`
}

func serveAdminSessions(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed; use GET")}
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badAdminRequest("the query is malformed")
	}
	user := q.Get("user")
	if why := checkUser(user); why != "" {
		return badAdminRequest(why)
	}
	sites := sitesFor(q.Get("site"))
	if len(sites) == 0 {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("no consoleme_auth site matches")}
	}
	out := []SiteSessions{}
	for _, h := range sites {
		now := h.now()
		list, err := h.sessions.records.ListSessions(r.Context(), user, now)
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err, Message: "site " + h.adminSiteName() + ": " + err.Error()}
		}
		s := SiteSessions{Site: h.adminSiteName(), Sessions: list}
		if s.Sessions == nil {
			s.Sessions = []store.Session{}
		}
		if until, ok := h.sessions.revoked.Blocked(user, now); ok {
			s.BlockedUntil = &until
		}
		out = append(out, s)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"user": user, "sites": out})
}

// Interface guards
var (
	_ caddy.Module      = (*AdminAPI)(nil)
	_ caddy.AdminRouter = (*AdminAPI)(nil)
)
