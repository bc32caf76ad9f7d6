package consolemeauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// ConsoleMe's messages (consoleme/handlers/v2/challenge.py,
// consoleme/lib/challenge.py), which its UI renders as Markdown.
const (
	msgNoChallenges  = "Unable to find a matching challenge URL. This usually means that it has expired. Please try requesting a new challenge URL."
	msgNotFound      = "The requested challenge URL was not found. Please try requesting a new challenge URL."
	msgExpired       = "This challenge URL has expired. Please try requesting a new challenge URL."
	msgOtherUser     = "This challenge URL is associated with a different user. Ensure that your client configuration is specifying the correct user."
	msgViewed        = "This unique challenge URL has already been viewed. Please try requesting a new challenge URL."
	msgBadNonce      = "Unable to validate challenge URL. The Nonce you've submitted is invalid."
	msgOtherIPShort  = "Your originating IP doesn't match the IP the challenge was created with."
	msgOtherIPDetail = msgOtherIPShort + " If you are developing locally, this is probably because your CLI (Weep) made an IPv6 " +
		"request, and your web browser made an IPv4 request. Or visa-versa. If this is the case, set the local configuration for " +
		"**challenge_url.request_ip_must_match_challenge_creation_ip** to **false**."
)

var (
	refuseNotFound = refusal{"unknown challenge", msgNotFound, http.StatusNotFound, "Challenge not found",
		"This challenge link is not known. It may have been used already. Run your command again to get a new link."}
	refuseExpired = refusal{"expired challenge", msgExpired, http.StatusGone, "Challenge expired",
		"This challenge link has expired. Run your command again to get a new link."}
	refuseOtherUser = refusal{"different user", msgOtherUser, http.StatusForbidden, "Different user",
		"This challenge was requested for another user than the one you are signed in as. Check the user name your command-line client uses."}
	refuseViewed = refusal{"already viewed", msgViewed, http.StatusConflict, "Link already used",
		"This challenge link has already been viewed, and can be viewed only once. Run your command again to get a new link."}
	refuseOtherIP = refusal{"client ip differs from the challenge's", msgOtherIPDetail, http.StatusForbidden, "Different network address",
		"Your browser's IP address does not match the IP address that requested this challenge, so it cannot be approved here. " +
			"Approve it from the same network as your command-line client."}
	refuseGroups = refusal{"group policy", "You are not allowed to request ConsoleMe credentials from the command line. Ask your administrator for access.",
		http.StatusForbidden, "Not allowed",
		"Your groups do not allow command-line credentials for ConsoleMe. Ask your administrator for access."}
	refuseTooLarge = refusal{"token too large", "You belong to too many groups for a ConsoleMe token to fit in a cookie. Ask your administrator to set groups_filter.",
		http.StatusForbidden, "Too many groups", tooManyGroups}
	refuseBadNonce = refusal{"invalid nonce", msgBadNonce, http.StatusForbidden, "Approval refused",
		"This approval could not be validated. Run your command again to get a new link."}
	refuseCrossSite = refusal{"cross-site approval", "'_xsrf' argument missing from POST", http.StatusForbidden, "Approval refused",
		"Approvals must come from the approval page itself."}
	refuseCSRF = refusal{"invalid csrf token", msgBadNonce, http.StatusForbidden, "Approval refused",
		"This approval could not be validated. Run your command again to get a new link."}
	refuseApproved = refusal{"already approved", "This challenge URL has already been approved.", http.StatusConflict, "Already approved",
		"This request has already been approved; nothing was changed. Return to your terminal."}
)

// checked is the outcome of the checks every validator request shares.
type checked struct {
	c       *store.Challenge
	id      *session
	groups  []string // id's groups after groups_filter: what gets minted
	ip      string
	refused *refusal
}

// check loads the challenge and applies ConsoleMe's checks in its order:
// known, unexpired, same user, then (when viewing) not viewed yet, then the
// IP. id may be nil: then only existence and expiry are checked.
func (h *Handler) check(r *http.Request, tok string, id *session, viewing bool, now time.Time) (*checked, error) {
	ck := &checked{id: id, ip: clientIP(r)}
	if id != nil {
		ck.groups = h.policy.filterGroups(id.groups)
		setUser(r, id.email)
	}
	c, err := h.states.Get(r.Context(), tok, now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		ck.refused = &refuseNotFound
		return ck, nil
	case err != nil:
		return nil, err
	}
	ck.c = c
	switch {
	case c.Expired(now):
		ck.refused = &refuseExpired
	case id == nil:
	case !h.policy.sameUser(id.email, c.User):
		ck.refused = &refuseOtherUser
	case h.policy.groupsRefusal(ck.groups) != "":
		ck.refused = &refuseGroups
	case !h.sessions.fits(id.email, ck.groups, now):
		ck.refused = &refuseTooLarge
	case viewing && c.Viewed:
		ck.refused = &refuseViewed
	case c.Status == store.StatusSuccess:
		ck.refused = &refuseApproved
	case !h.DisableValidatorIPCheck && ck.ip != c.IP:
		ck.refused = &refuseOtherIP
	}
	return ck, nil
}

// refuse answers a refused validator request: the audit line, then a page
// or (api) ConsoleMe's JSON message.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, ck *checked, tok string, api bool) error {
	fields := []zap.Field{zap.String("challenge", shortToken(tok))}
	if ck.id != nil {
		fields = append(fields, zap.String("user", ck.id.email))
	}
	if ck.c != nil {
		fields = append(fields, zap.String("challenge_user", ck.c.User), zap.String("challenge_ip", ck.c.IP))
	}
	if api {
		metrics.refused.WithLabelValues(ck.refused.reason).Inc()
		h.audit(r, "challenge refused", ck.refused.reason, fields...)
		msg := ck.refused.message
		if r.Method == http.MethodPost && ck.refused == &refuseOtherIP {
			msg = msgOtherIPShort
		}
		return writeJSON(w, http.StatusOK, apiMessage{Message: msg})
	}
	ref := ck.refused
	if ref == &refuseOtherIP && ck.c != nil {
		withIPs := *ref
		withIPs.text = fmt.Sprintf("This request came from the IP address %s, but your browser's IP address is %s, so it cannot be approved here. "+
			"If you did not run the command yourself from that address, this link may be a phishing attempt: "+
			"do not approve it, and report it to your security team.", ck.c.IP, ck.ip)
		ref = &withIPs
	}
	return h.refusePage(w, r, ref, fields...)
}

// serveValidator is the browser's page: sign in if needed, show the request,
// approve it with a CSRF-protected form post.
func (h *Handler) serveValidator(w http.ResponseWriter, r *http.Request, tok string) error {
	if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
		return nil
	}
	if !validToken(tok) {
		h.debug(r, "refusing validator request", zap.String("reason", "malformed token"))
		return h.page(w, r, http.StatusBadRequest, "Invalid link", "This challenge link is malformed. Copy it again from your terminal.")
	}
	if r.Method == http.MethodPost {
		return h.approveForm(w, r, tok)
	}
	now := h.now()
	id := h.sessions.read(r, now)
	ck, err := h.check(r, tok, id, true, now)
	if err != nil {
		return h.storePage(w, r, err)
	}
	if ck.refused == nil && id == nil {
		// The challenge is live: sign the browser in (again, when its
		// session is too old) and come back here.
		if h.sp == nil && h.oidc == nil {
			return h.page(w, r, http.StatusUnauthorized, "Sign in to ConsoleMe first",
				"Sign in to ConsoleMe in this browser, then open this challenge link again.")
		}
		return h.startLogin(w, r, "/challenge_validator/"+tok)
	}
	if ck.refused != nil {
		return h.refuse(w, r, ck, tok, false)
	}
	nonce := uuid.NewString()
	c, err := h.states.View(r.Context(), tok, nonce, now)
	if err != nil {
		return h.viewFailure(w, r, ck, tok, err, false)
	}
	h.logger.Info("challenge viewed", zap.String("user", id.email), zap.String("remote_ip", ck.ip),
		zap.String("challenge", shortToken(tok)))
	return render(w, http.StatusOK, "approve", pageCSP, approvalPage{
		Title:      "Approve ConsoleMe credentials",
		Site:       h.siteName(r),
		Lifetime:   humanDuration(time.Duration(h.JWTExpiration)),
		User:       c.User,
		RequestIP:  c.IP,
		BrowserIP:  ck.ip,
		Created:    c.Created.UTC().Format(time.RFC1123),
		Age:        now.Sub(c.Created).Round(time.Second).String(),
		IPMismatch: ck.ip != c.IP,
		Action:     "/challenge_validator/" + tok,
		Nonce:      nonce,
		CSRF:       h.csrfToken(tok, nonce, id.email),
	})
}

// maxFormBody bounds the approval form.
const maxFormBody = 16 << 10

// approveForm handles the approval page's POST.
func (h *Handler) approveForm(w http.ResponseWriter, r *http.Request, tok string) error {
	if !h.sameOrigin(r) {
		return h.refusePage(w, r, &refuseCrossSite, zap.String("challenge", shortToken(tok)))
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		h.debug(r, "refusing approval", zap.String("reason", "unreadable form"), zap.Error(err))
		return h.page(w, r, http.StatusBadRequest, "Approval refused", "The approval form could not be read.")
	}
	now := h.now()
	id := h.sessions.read(r, now)
	if id == nil {
		return h.page(w, r, http.StatusUnauthorized, "Signed out",
			"Your ConsoleMe session is missing or has expired. Open the challenge link from your terminal again.")
	}
	nonce := r.PostForm.Get("nonce")
	if !hmac.Equal([]byte(r.PostForm.Get("csrf_token")), []byte(h.csrfToken(tok, nonce, id.email))) {
		return h.refusePage(w, r, &refuseCSRF, zap.String("user", id.email), zap.String("challenge", shortToken(tok)))
	}
	ck, err := h.check(r, tok, id, false, now)
	if err != nil {
		return h.storePage(w, r, err)
	}
	if ck.refused != nil {
		return h.refuse(w, r, ck, tok, false)
	}
	if r.PostForm.Get("decision") == "cancel" {
		return h.cancel(w, r, ck, tok, now)
	}
	if err := h.approve(r, ck, tok, nonce, now); err != nil {
		return h.viewFailure(w, r, ck, tok, err, false)
	}
	return render(w, http.StatusOK, "message", pageCSP, messagePage{Title: "Approved",
		Message: template.HTML(textEscaper.Replace(SuccessMessage)),
		Detail:  "Return to your terminal: your command receives its credentials there within a few seconds.",
		Link:    sessionsPath, LinkText: "Review your sessions"})
}

// cancel answers "This wasn't me": the challenge is deleted, so its poller
// answers as for an unknown challenge, and the cancellation is audited.
func (h *Handler) cancel(w http.ResponseWriter, r *http.Request, ck *checked, tok string, now time.Time) error {
	if err := h.states.Cancel(r.Context(), tok, now); err != nil {
		return h.viewFailure(w, r, ck, tok, err, false)
	}
	metrics.cancelled.Inc()
	h.logger.Info("challenge cancelled", zap.String("user", ck.id.email), zap.String("remote_ip", ck.ip),
		zap.String("challenge_ip", ck.c.IP), zap.String("challenge", shortToken(tok)))
	return h.page(w, r, http.StatusOK, "Request cancelled",
		"The request was cancelled: the command-line client gets no credentials. If you did not start it, report it to your security team.")
}

// siteName is how the approval page names this site, so that a user can
// spot a link to the wrong one: site_name, or public_url's host, or the
// request's host.
func (h *Handler) siteName(r *http.Request) string {
	switch {
	case h.SiteName != "":
		return h.SiteName
	case h.base != nil:
		return h.base.Host
	}
	return r.Host
}

// humanDuration writes d as "1 hour", "90 minutes", or Go's notation.
func humanDuration(d time.Duration) string {
	switch {
	case d == time.Hour:
		return "1 hour"
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}

// approve records the approval of a checked challenge and audits it.
func (h *Handler) approve(r *http.Request, ck *checked, tok, nonce string, now time.Time) error {
	err := h.states.Approve(r.Context(), tok, nonce, store.Approval{
		Approver: ck.id.email, Groups: ck.groups, AuthTime: ck.id.authTime,
	}, now)
	if err != nil {
		return err
	}
	metrics.approved.Inc()
	h.logger.Info("challenge approved", zap.String("user", ck.id.email), zap.Int("groups", len(ck.id.groups)),
		zap.String("remote_ip", ck.ip), zap.String("challenge_ip", ck.c.IP), zap.String("challenge", shortToken(tok)),
		zap.Time("auth_time", ck.id.authTime))
	return nil
}

// viewFailure answers a View or Approve that lost a race or failed.
func (h *Handler) viewFailure(w http.ResponseWriter, r *http.Request, ck *checked, tok string, err error, api bool) error {
	var ref *refusal
	switch {
	case errors.Is(err, store.ErrNotFound):
		ref = &refuseNotFound
	case errors.Is(err, store.ErrExpired):
		ref = &refuseExpired
	case errors.Is(err, store.ErrAlreadyViewed):
		ref = &refuseViewed
	case errors.Is(err, store.ErrAlreadyApproved):
		ref = &refuseApproved
	case errors.Is(err, store.ErrBadNonce):
		ref = &refuseBadNonce
	case api:
		return h.storeFailure(w, r, err)
	default:
		return h.storePage(w, r, err)
	}
	ck.refused = ref
	return h.refuse(w, r, ck, tok, api)
}

// csrfToken binds an approval form to the challenge, its one-time nonce and
// the signed-in user.
func (h *Handler) csrfToken(tok, nonce, email string) string {
	mac := hmac.New(sha256.New, h.csrfKey)
	mac.Write([]byte(tok))
	mac.Write([]byte{0})
	mac.Write([]byte(nonce))
	mac.Write([]byte{0})
	mac.Write([]byte(email))
	return hex.EncodeToString(mac.Sum(nil))
}

// sameOrigin refuses requests a browser marks as cross-site, and any whose
// Origin is not this site's.
func (h *Handler) sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if origin == "null" {
		// Our pages send Referrer-Policy: no-referrer, under which
		// browsers post forms with Origin: null even to their own
		// origin; Sec-Fetch-Site (checked above) still tells a
		// cross-site post, and the form's CSRF token is checked anyway.
		return true
	}
	u, err := url.Parse(h.baseURL(r))
	if err != nil {
		return false
	}
	return strings.EqualFold(origin, u.Scheme+"://"+u.Host)
}
