package consolemeauth

import (
	"encoding/json"
	"net/http"

	"github.com/google/uuid"
	"go.uber.org/zap"
)

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
	now := h.now()
	id := h.sessions.read(r, now)
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
			h.audit(r, "challenge refused", refuseCrossSite.reason, zap.String("challenge", shortToken(tok)))
			return writeError(w, http.StatusForbidden, "xsrf", refuseCrossSite.message)
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
	ck, err := h.check(r, tok, id, r.Method != http.MethodPost, now)
	if err != nil {
		return h.storeFailure(w, r, err)
	}
	if ck.refused != nil {
		return h.refuse(w, r, ck, tok, true)
	}
	if r.Method == http.MethodPost {
		if err := h.approve(r, ck, tok, nonce, now); err != nil {
			return h.viewFailure(w, r, ck, tok, err, true)
		}
		return writeJSON(w, http.StatusOK, apiMessage{Message: SuccessMessage})
	}
	nonce = uuid.NewString()
	c, err := h.states.View(r.Context(), tok, nonce, now)
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
