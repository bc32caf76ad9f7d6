package consolemeauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/token"
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

// refusal is why a validator request approves nothing: the reason for the
// log, ConsoleMe's message for its JSON API, and the page for a browser.
type refusal struct {
	reason  string
	message string
	status  int
	title   string
	text    string
}

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
		http.StatusForbidden, "Too many groups",
		"You belong to too many groups for a ConsoleMe token to fit in a browser cookie. Ask your administrator to set groups_filter."}
	refuseBadNonce = refusal{"invalid nonce", msgBadNonce, http.StatusForbidden, "Approval refused",
		"This approval could not be validated. Run your command again to get a new link."}
)

// checked is the outcome of the checks every validator request shares.
type checked struct {
	c       *store.Challenge
	id      *token.Identity
	groups  []string // id's groups after groups_filter: what gets minted
	ip      string
	refused *refusal
}

// check loads the challenge and applies ConsoleMe's checks in its order:
// known, unexpired, same user, then (when viewing) not viewed yet, then the
// IP. id may be nil: then only existence and expiry are checked.
func (h *Handler) check(r *http.Request, tok string, id *token.Identity, viewing bool) (*checked, error) {
	ck := &checked{id: id, ip: clientIP(r)}
	if id != nil {
		ck.groups = h.policy.filterGroups(id.Groups)
	}
	c, err := h.store.Get(r.Context(), tok)
	switch {
	case errors.Is(err, store.ErrNotFound):
		ck.refused = &refuseNotFound
		return ck, nil
	case err != nil:
		return nil, err
	}
	ck.c = c
	switch {
	case c.Expired(h.now()):
		ck.refused = &refuseExpired
	case id == nil:
	case !h.policy.sameUser(id.Email, c.User):
		ck.refused = &refuseOtherUser
	case h.policy.groupsRefusal(ck.groups) != "":
		ck.refused = &refuseGroups
	case !h.tokenFits(id.Email, ck.groups):
		ck.refused = &refuseTooLarge
	case viewing && c.Viewed:
		ck.refused = &refuseViewed
	case !h.DisableValidatorIPCheck && ck.ip != c.IP:
		ck.refused = &refuseOtherIP
	}
	return ck, nil
}

// logRefusal writes the audit line of a refused validator request.
func (h *Handler) logRefusal(ck *checked, tok string) {
	metrics.refused.WithLabelValues(ck.refused.reason).Inc()
	fields := []zap.Field{zap.String("reason", ck.refused.reason), zap.String("remote_ip", ck.ip),
		zap.String("challenge", shortToken(tok))}
	if ck.id != nil {
		fields = append(fields, zap.String("user", ck.id.Email))
	}
	if ck.c != nil {
		fields = append(fields, zap.String("challenge_user", ck.c.User), zap.String("challenge_ip", ck.c.IP))
	}
	h.logger.Info("challenge refused", fields...)
}

// identity returns the web identity carried by the browser's ConsoleMe
// cookie, or nil when it has none that verifies.
func (h *Handler) identity(r *http.Request) *token.Identity {
	for _, c := range r.CookiesNamed(h.CookieName) {
		if id, err := h.minter.Verify(c.Value, h.now()); err == nil {
			return id
		} else {
			h.debug(r, "ignoring cookie", zap.String("cookie", h.CookieName), zap.Error(err))
		}
	}
	return nil
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
	id := h.identity(r)
	ck, err := h.check(r, tok, id, true)
	if err != nil {
		return h.storePage(w, r, err)
	}
	if ck.refused == nil && id == nil {
		// The challenge is live: sign the browser in and come back here.
		if h.sp == nil {
			return h.page(w, r, http.StatusUnauthorized, "Sign in to ConsoleMe first",
				"Sign in to ConsoleMe in this browser, then open this challenge link again.")
		}
		return h.startLogin(w, r, "/challenge_validator/"+tok)
	}
	if ck.refused != nil {
		h.logRefusal(ck, tok)
		return h.page(w, r, ck.refused.status, ck.refused.title, ck.refused.text)
	}
	nonce := uuid.NewString()
	c, err := h.store.View(r.Context(), tok, nonce, h.now())
	if err != nil {
		return h.viewFailure(w, r, ck, tok, err, false)
	}
	h.logger.Info("challenge viewed", zap.String("user", id.Email), zap.String("remote_ip", ck.ip),
		zap.String("challenge", shortToken(tok)))
	return render(w, http.StatusOK, "approve", pageCSP, approvalPage{
		Title:      "Approve ConsoleMe credentials",
		User:       c.User,
		RequestIP:  c.IP,
		BrowserIP:  ck.ip,
		Created:    c.Created.UTC().Format(time.RFC1123),
		Age:        h.now().Sub(c.Created).Round(time.Second).String(),
		IPMismatch: ck.ip != c.IP,
		Action:     "/challenge_validator/" + tok,
		Nonce:      nonce,
		CSRF:       h.csrfToken(tok, nonce, id.Email),
	})
}

// maxFormBody bounds the approval form.
const maxFormBody = 16 << 10

// approveForm handles the approval page's POST.
func (h *Handler) approveForm(w http.ResponseWriter, r *http.Request, tok string) error {
	if !h.sameOrigin(r) {
		h.logger.Info("challenge refused", zap.String("reason", "cross-site approval"),
			zap.String("remote_ip", clientIP(r)), zap.String("challenge", shortToken(tok)))
		return h.page(w, r, http.StatusForbidden, "Approval refused", "Approvals must come from the approval page itself.")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		h.debug(r, "refusing approval", zap.String("reason", "unreadable form"), zap.Error(err))
		return h.page(w, r, http.StatusBadRequest, "Approval refused", "The approval form could not be read.")
	}
	id := h.identity(r)
	if id == nil {
		return h.page(w, r, http.StatusUnauthorized, "Signed out",
			"Your ConsoleMe session is missing or has expired. Open the challenge link from your terminal again.")
	}
	nonce := r.PostForm.Get("nonce")
	if !hmac.Equal([]byte(r.PostForm.Get("csrf_token")), []byte(h.csrfToken(tok, nonce, id.Email))) {
		h.logger.Info("challenge refused", zap.String("reason", "invalid csrf token"), zap.String("user", id.Email),
			zap.String("remote_ip", clientIP(r)), zap.String("challenge", shortToken(tok)))
		return h.page(w, r, http.StatusForbidden, "Approval refused", "This approval could not be validated. Run your command again to get a new link.")
	}
	ck, err := h.check(r, tok, id, false)
	if err != nil {
		return h.storePage(w, r, err)
	}
	if ck.refused != nil {
		h.logRefusal(ck, tok)
		return h.page(w, r, ck.refused.status, ck.refused.title, ck.refused.text)
	}
	if err := h.store.Approve(r.Context(), tok, nonce, id.Email, ck.groups, h.now()); err != nil {
		return h.viewFailure(w, r, ck, tok, err, false)
	}
	h.logApproval(ck, tok)
	return h.page(w, r, http.StatusOK, "Approved", SuccessMessage)
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
	case errors.Is(err, store.ErrBadNonce):
		ref = &refuseBadNonce
	default:
		if api {
			return h.storeFailure(w, r, err)
		}
		return h.storePage(w, r, err)
	}
	ck.refused = ref
	h.logRefusal(ck, tok)
	if api {
		return writeJSON(w, http.StatusOK, apiMessage{Message: ref.message})
	}
	return h.page(w, r, ref.status, ref.title, ref.text)
}

func (h *Handler) logApproval(ck *checked, tok string) {
	metrics.approved.Inc()
	h.logger.Info("challenge approved", zap.String("user", ck.id.Email), zap.Int("groups", len(ck.id.Groups)),
		zap.String("remote_ip", ck.ip), zap.String("challenge_ip", ck.c.IP), zap.String("challenge", shortToken(tok)))
}

// storePage answers a store failure with a page.
func (h *Handler) storePage(w http.ResponseWriter, r *http.Request, err error) error {
	metrics.storeErrors.Inc()
	if errors.Is(err, store.ErrFull) || errors.Is(err, store.ErrUnavailable) {
		h.debug(r, "challenge store", zap.Error(err))
		w.Header().Set("Retry-After", "5")
		return h.page(w, r, http.StatusServiceUnavailable, "Temporarily unavailable", "Please try again in a minute.")
	}
	h.logger.Error("challenge store", zap.Error(err))
	return h.page(w, r, http.StatusInternalServerError, "Internal error", "Something went wrong. Please try again.")
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

// apiMessage is the validator API's answer.
type apiMessage struct {
	Message           string `json:"message"`
	Nonce             string `json:"nonce,omitempty"`
	ShowApproveButton bool   `json:"show_approve_button,omitempty"`
}

// apiRedirect is ConsoleMe's 403 answer to an unauthenticated XHR.
type apiRedirect struct {
	Type        string `json:"type"`
	RedirectURL string `json:"redirect_url"`
	Reason      string `json:"reason"`
	Message     string `json:"message"`
}

// serveValidatorAPI is ConsoleMe's /api/v2/challenge_validator/{token}, for
// ConsoleMe's own UI: GET returns a nonce, POST {"nonce"} approves. Like
// ConsoleMe, refusals are 200 with a message.
func (h *Handler) serveValidatorAPI(w http.ResponseWriter, r *http.Request, tok string) error {
	if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
		return nil
	}
	if !validToken(tok) {
		h.debug(r, "refusing validator request", zap.String("reason", "malformed token"))
		return writeError(w, http.StatusBadRequest, "invalid_token", "the challenge token is malformed")
	}
	id := h.identity(r)
	if id == nil {
		return writeJSON(w, http.StatusForbidden, apiRedirect{
			Type:        "redirect",
			RedirectURL: h.baseURL(r) + "/challenge_validator/" + tok,
			Reason:      "unauthenticated",
			Message:     "User is not authenticated. Redirect to authenticate",
		})
	}
	var nonce string
	if r.Method == http.MethodPost {
		// Cross-site requests cannot set a custom header without a CORS
		// preflight, which nothing here answers; ConsoleMe's UI always
		// sends X-Xsrftoken.
		if !h.sameOrigin(r) || (r.Header.Get("X-Xsrftoken") == "" && r.Header.Get("X-Requested-With") == "") {
			h.logger.Info("challenge refused", zap.String("reason", "cross-site approval"),
				zap.String("remote_ip", clientIP(r)), zap.String("challenge", shortToken(tok)))
			return writeError(w, http.StatusForbidden, "xsrf", "'_xsrf' argument missing from POST")
		}
		var body struct {
			Nonce string `json:"nonce"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBody)).Decode(&body); err != nil {
			h.debug(r, "refusing approval", zap.String("reason", "malformed JSON body"))
			return writeError(w, http.StatusBadRequest, "invalid_body", `the body must be JSON {"nonce": "..."}`)
		}
		nonce = body.Nonce
	}
	ck, err := h.check(r, tok, id, r.Method != http.MethodPost)
	if err != nil {
		return h.storeFailure(w, r, err)
	}
	if ck.refused != nil {
		h.logRefusal(ck, tok)
		msg := ck.refused.message
		if r.Method == http.MethodPost && ck.refused == &refuseOtherIP {
			msg = msgOtherIPShort
		}
		return writeJSON(w, http.StatusOK, apiMessage{Message: msg})
	}
	if r.Method == http.MethodPost {
		if err := h.store.Approve(r.Context(), tok, nonce, id.Email, ck.groups, h.now()); err != nil {
			return h.viewFailure(w, r, ck, tok, err, true)
		}
		h.logApproval(ck, tok)
		return writeJSON(w, http.StatusOK, apiMessage{Message: SuccessMessage})
	}
	nonce = uuid.NewString()
	c, err := h.store.View(r.Context(), tok, nonce, h.now())
	if err != nil {
		return h.viewFailure(w, r, ck, tok, err, true)
	}
	return writeJSON(w, http.StatusOK, apiMessage{
		Message: "A user at **" + c.IP + "** has requested ConsoleMe credentials for **" + c.User + "**.\n\n" +
			"You must approve this request for credentials to be provided. " +
			"You will not be able to refresh or revisit this page after closing it.\n\n" +
			"If you did not create this request, please report it to your security team.",
		Nonce:             nonce,
		ShowApproveButton: true,
	})
}

// isNotFound reports whether a store error means "no such thing".
func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
