package consolemeauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// The sessions page (/sessions): a signed-in user sees their live browser
// sessions and command-line tokens, and can end any one of them or all but
// the one of this browser. It shows only the user's own data, so another
// site may load it (it cannot read it: no CORS, no framing); every change is
// a form post from the page itself: same origin, and a CSRF token bound to
// the user and to this browser's session.

// sessionsPath is the page's path on every site.
const sessionsPath = "/sessions"

// The page's form actions.
const (
	sessionsEnd    = "end"    // end the session named by the session field
	sessionsOthers = "others" // end every session but this browser's
)

// How the page names what it did after a change (the ?done= query of the
// redirect back to it); the text is fixed here, never taken from the URL.
var sessionsDone = map[string]string{
	sessionsEnd:    "The session was signed out. Its token is refused from now on.",
	sessionsOthers: "Every other session was signed out, command-line tokens included. Their tokens are refused from now on.",
}

// sessionsPage is the data of the sessions page.
type sessionsPage struct {
	Title   string
	User    string
	Notice  string
	Rows    []sessionRow
	CSRF    string
	Current string // this browser's session id; empty for a token minted elsewhere
	Logout  bool   // web_login is on: /logout signs this browser out
}

// sessionRow is one session on the page.
type sessionRow struct {
	ID      string
	Method  string
	IP      string
	Created string
	Expires string
	Current bool
}

// serveSessions answers /sessions: GET shows the page, POST makes a change.
func (h *Handler) serveSessions(w http.ResponseWriter, r *http.Request) error {
	if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
		return nil
	}
	if r.Method == http.MethodPost {
		return h.sessionsForm(w, r)
	}
	now := h.now()
	id := h.sessions.read(r, now)
	if id == nil {
		if h.sp != nil || h.oidc != nil {
			return h.startLogin(w, r, sessionsPath)
		}
		return h.page(w, r, http.StatusUnauthorized, "Sign in to ConsoleMe first",
			"Sign in to ConsoleMe in this browser, then open this page again.")
	}
	setUser(r, id.email)
	list, err := h.sessions.records.ListSessions(r.Context(), id.email, now)
	if err != nil {
		return h.storePage(w, r, err)
	}
	return render(w, http.StatusOK, "sessions", pageCSP, sessionsPage{
		Title:   "Your sessions",
		User:    id.email,
		Notice:  sessionsDone[r.URL.Query().Get("done")],
		Rows:    sessionRows(id, list),
		CSRF:    h.sessionsCSRF(id),
		Current: id.id,
		Logout:  h.WebLogin != nil,
	})
}

// sessionRows lists the user's sessions for the page, this browser's
// first; when its own is not recorded (a token minted elsewhere, or a
// record dropped) it is shown from what its token says.
func sessionRows(id *session, list []store.Session) []sessionRow {
	rows := make([]sessionRow, 0, len(list)+1)
	cur := sessionRow{Method: methodLabel(id.method), IP: "unknown", Created: formatTime(id.authTime),
		Expires: formatTime(id.expires), Current: true, ID: id.id}
	for _, s := range list {
		row := sessionRow{ID: s.ID, Method: methodLabel(s.Method), IP: s.IP, Created: formatTime(s.Created), Expires: formatTime(s.Expires)}
		if id.id != "" && s.ID == id.id {
			row.Current = true
			cur = row
			continue
		}
		rows = append(rows, row)
	}
	return append([]sessionRow{cur}, rows...)
}

// methodLabel names how a session was obtained.
func methodLabel(method string) string {
	switch method {
	case methodIdP:
		return "Browser sign-in"
	case methodChallenge:
		return "Command-line token"
	}
	return "Browser session"
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// sessionsForm handles the page's POST: from this site only, with the
// page's CSRF token, by a signed-in user, about their own sessions.
func (h *Handler) sessionsForm(w http.ResponseWriter, r *http.Request) error {
	if !h.sameOrigin(r) {
		h.audit(r, "sessions page change refused", "cross-site post")
		return h.page(w, r, http.StatusForbidden, "Change refused", "Changes to your sessions must come from the sessions page itself.")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		h.debug(r, "refusing sessions page change", zap.String("reason", "unreadable form"), zap.Error(err))
		return h.page(w, r, http.StatusBadRequest, "Change refused", "The form could not be read.")
	}
	now := h.now()
	id := h.sessions.read(r, now)
	if id == nil {
		return h.page(w, r, http.StatusUnauthorized, "Signed out",
			"Your ConsoleMe session is missing or has expired. Sign in again, then open "+sessionsPath+" again.")
	}
	setUser(r, id.email)
	if !hmac.Equal([]byte(r.PostForm.Get("csrf_token")), []byte(h.sessionsCSRF(id))) {
		h.audit(r, "sessions page change refused", "invalid csrf token", zap.String("user", id.email))
		return h.page(w, r, http.StatusForbidden, "Change refused", "This form could not be validated. Open "+sessionsPath+" again and retry.")
	}
	switch action := r.PostForm.Get("action"); action {
	case sessionsEnd:
		return h.endOneSession(w, r, id, r.PostForm.Get("session"), now)
	case sessionsOthers:
		if id.id == "" {
			// Without a session id, "everyone else" cannot spare
			// this browser.
			return h.page(w, r, http.StatusConflict, "Sign in again first",
				"This browser's session was not started by this site, so it cannot be told apart from the others. Sign in again, then retry.")
		}
		err := h.revokeUser(r.Context(), id.email, id.id, revokedBySessions, now, zap.String("remote_ip", clientIP(r)))
		if err != nil {
			return h.storePage(w, r, err)
		}
		return h.sessionsDone(w, r, action)
	default:
		h.debug(r, "refusing sessions page change", zap.String("reason", "unknown action"))
		return h.page(w, r, http.StatusBadRequest, "Change refused", "The form asked for nothing this page does.")
	}
}

// endOneSession ends one of the user's recorded sessions; this browser's
// own is signed out as by /logout, without the identity provider.
func (h *Handler) endOneSession(w http.ResponseWriter, r *http.Request, id *session, sid string, now time.Time) error {
	if id.id != "" && sid == id.id {
		h.endSession(w, r)
		return h.page(w, r, http.StatusOK, "Signed out", "You are signed out of ConsoleMe in this browser.")
	}
	if !validSessionID(sid) {
		h.debug(r, "refusing sessions page change", zap.String("reason", "malformed session id"))
		return h.page(w, r, http.StatusBadRequest, "Change refused", "The form named no valid session.")
	}
	list, err := h.sessions.records.ListSessions(r.Context(), id.email, now)
	if err != nil {
		return h.storePage(w, r, err)
	}
	for _, s := range list {
		if s.ID == sid {
			if err := h.revokeSession(r.Context(), sid, revokedBySessions, now,
				zap.String("user", id.email), zap.String("remote_ip", clientIP(r))); err != nil {
				return h.storePage(w, r, err)
			}
			return h.sessionsDone(w, r, sessionsEnd)
		}
	}
	// Not one of theirs (or already ended): nothing changes, and the
	// answer does not tell another user's session from an unknown one.
	h.audit(r, "sessions page change refused", "not a session of the user", zap.String("user", id.email))
	return h.page(w, r, http.StatusNotFound, "Session not found",
		"That session is not one of your live sessions. It may have ended already.")
}

// sessionsDone sends the browser back to the page after a change, so that
// reloading it repeats nothing.
func (h *Handler) sessionsDone(w http.ResponseWriter, r *http.Request, action string) error {
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, sessionsPath+"?done="+action, http.StatusSeeOther)
	return nil
}

// sessionsCSRF binds the page's forms to the user and to this browser's
// session (its sign-in time when the token has no session id): a form
// copied from another session or user does not validate. Its label keeps
// it apart from the approval form's token, whose first field is always a
// challenge token.
func (h *Handler) sessionsCSRF(id *session) string {
	mac := hmac.New(sha256.New, h.csrfKey)
	mac.Write([]byte("sessions page"))
	mac.Write([]byte{0})
	mac.Write([]byte(id.email))
	mac.Write([]byte{0})
	mac.Write([]byte(id.id))
	mac.Write([]byte{0})
	mac.Write([]byte(strconv.FormatInt(id.authTime.Unix(), 10)))
	return hex.EncodeToString(mac.Sum(nil))
}
