package consolemeauth

import (
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// The SAML endpoints: glue between HTTP and the Caddy-free service provider
// in package samlauth, which makes every check of a response.

// serveMetadata answers GET /saml/metadata with the SP metadata.
func (h *Handler) serveMetadata(w http.ResponseWriter, r *http.Request) error {
	if !allowMethods(w, r, http.MethodGet) {
		return nil
	}
	b, err := h.sp.Metadata(h.baseURL(r))
	if err != nil {
		return writeError(w, http.StatusInternalServerError, "internal_error", "building SP metadata failed")
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Header().Set("Cache-Control", "no-cache")
	_, err = w.Write(append([]byte(xml.Header), b...))
	return err
}

// serveLogin starts a login that returns to return_to (GET /saml/login or
// /oidc/login).
func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) error {
	if !allowMethods(w, r, http.MethodGet) {
		return nil
	}
	return h.startLogin(w, r, safeReturnPath(r.URL.Query().Get("return_to")))
}

// startLogin sends the browser to the IdP with a fresh AuthnRequest whose ID
// is remembered (one-time) under a random RelayState, so the ACS can check
// InResponseTo without any cookie surviving the IdP's cross-site POST.
//
// Every way of starting a login (the validator without a session,
// /saml/login, web_login) comes here, and spends the client's login budget.
func (h *Handler) startLogin(w http.ResponseWriter, r *http.Request, returnPath string) error {
	now := h.now()
	client := clientKey(clientIP(r), h.IPv6Prefix)
	if ok, wait := h.loginRL.allow(client, now); !ok {
		h.debug(r, "rate limited", zap.String("route", "login"), zap.Duration("wait", wait))
		w.Header().Set("Retry-After", retryAfter(wait))
		return h.page(w, r, http.StatusTooManyRequests, "Too many sign-ins",
			"Too many sign-ins were started from your network address. Please try again in a minute.")
	}
	if h.oidc != nil {
		return h.startOIDCLogin(w, r, returnPath, client, now)
	}
	// Just after start-up the first fetch of the IdP metadata may still be
	// under way: wait for it a moment rather than fail the login.
	awaitLoaded(r, h.sp.Loaded)
	relay := randomID()
	rd, err := h.sp.AuthnRequest(h.baseURL(r), relay)
	if errors.Is(err, samlauth.ErrNoMetadata) {
		return h.page(w, r, http.StatusServiceUnavailable, "Sign-in unavailable",
			"The identity provider is not reachable right now. Please try again in a minute.")
	}
	if err != nil {
		h.logger.Error("making SAML AuthnRequest", zap.Error(err))
		return h.page(w, r, http.StatusInternalServerError, "Sign-in failed", "The sign-in request could not be made.")
	}
	state := &store.LoginState{RequestID: rd.RequestID, ReturnPath: returnPath, Created: now, Client: client}
	if err := h.states.SaveLogin(r.Context(), relay, state, now.Add(loginTTL), now); err != nil {
		return h.storePage(w, r, err)
	}
	h.debug(r, "starting SAML login", zap.String("idp", rd.IDPEntityID))
	return h.sendToIdP(w, r, rd)
}

// sendToIdP sends the browser to the IdP with a request: a redirect by the
// HTTP-Redirect binding, or a page that posts the form by the HTTP-POST one.
func (h *Handler) sendToIdP(w http.ResponseWriter, r *http.Request, rd *samlauth.Redirect) error {
	if rd.Form == nil {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, rd.URL, http.StatusFound)
		return nil
	}
	return h.postForm(w, rd.URL, rd.Form)
}

// How a browser signs in at the identity provider, in logs and metrics.
const (
	signInSAML = "saml"
	signInOIDC = "oidc"
)

// metadataWait is how long a login waits for IdP metadata still loading.
const metadataWait = 3 * time.Second

// maxACSBody bounds the ACS form: generous for responses with many groups.
const maxACSBody = 1 << 20

// serveACS consumes the IdP's POSTed response: the RelayState must name a
// login we started (each only once), then samlauth verifies the response
// against that login's AuthnRequest (signature, audience, destination,
// recipient, validity window, replay, ...). Then the browser gets the
// consoleme_auth cookie and goes back to where the login started.
func (h *Handler) serveACS(w http.ResponseWriter, r *http.Request) error {
	if !allowMethods(w, r, http.MethodPost) {
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxACSBody)
	if err := r.ParseForm(); err != nil {
		h.debug(r, "refusing SAML response", zap.String("reason", "unreadable form"), zap.Error(err))
		return h.page(w, r, http.StatusBadRequest, "Sign-in failed", "The identity provider's answer could not be read.")
	}
	if r.PostForm.Get("SAMLart") != "" {
		return h.page(w, r, http.StatusBadRequest, "Sign-in failed", "The SAML artifact binding is not supported; configure the IdP to POST the response.")
	}
	relay := r.PostForm.Get("RelayState")
	samlResponse := r.PostForm.Get("SAMLResponse")
	if samlResponse == "" {
		h.debug(r, "refusing SAML response", zap.String("reason", "no SAMLResponse"))
		return h.page(w, r, http.StatusBadRequest, "Sign-in failed", "The request carries no SAML response.")
	}
	raw, err := samlauth.DecodeBase64Loose(samlResponse)
	if err != nil {
		h.debug(r, "refusing SAML response", zap.String("reason", "invalid base64"))
		return h.page(w, r, http.StatusBadRequest, "Sign-in failed", "The SAML response is not valid base64.")
	}
	if !validToken(relay) { // ours are randomID()s: anything else names no login of ours
		return h.loginRefused(w, r, signInSAML, http.StatusBadRequest, "no login in progress (IdP-initiated or missing RelayState)",
			"Sign-in failed", samlauth.MessageNotStarted)
	}
	now := h.now()
	state, err := h.states.TakeLogin(r.Context(), relay, now)
	if errors.Is(err, store.ErrNotFound) {
		return h.loginRefused(w, r, signInSAML, http.StatusBadRequest, "unknown, expired or already used RelayState",
			"Sign-in failed", "This sign-in has expired or was already used. Open the challenge link from your terminal again.")
	}
	if err != nil {
		return h.storePage(w, r, err)
	}
	id, err := h.sp.Verify(r.Context(), raw, h.baseURL(r), state.RequestID, h.states, now)
	var refused *samlauth.Refusal
	switch {
	case errors.As(err, &refused):
		var fields []zap.Field
		if refused.Message == samlauth.MessageNoEmail {
			fields = append(fields, zap.String("email_attribute", h.SAML.EmailAttribute))
		}
		return h.loginRefused(w, r, signInSAML, http.StatusForbidden, refused.Reason, "Sign-in failed", refused.Message, fields...)
	case errors.Is(err, samlauth.ErrNoMetadata):
		return h.page(w, r, http.StatusServiceUnavailable, "Sign-in unavailable",
			"The identity provider's metadata is not loaded. Please try again in a minute.")
	case err != nil:
		return h.storePage(w, r, err)
	}
	return h.signIn(w, r, signInSAML, id.Email, h.policy.filterGroups(id.Groups), id.Issuer, state.ReturnPath, now)
}

// safeReturnPath allows only a local absolute path; anything else goes to /.
func safeReturnPath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") ||
		strings.ContainsAny(p, "\r\n\t\\") {
		return "/"
	}
	if u, err := url.Parse(p); err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return p
}

// signIn finishes an IdP login: the session cookie, the audit line, and back
// to where the login started. A token too large for a cookie is refused.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, via, email string, groups []string, idp, returnPath string, now time.Time) error {
	ref, err := h.sessions.issue(w, r, email, groups, now)
	if ref != nil {
		title, text := refusalText(ref)
		return h.loginRefused(w, r, via, http.StatusForbidden, ref.reason, title, text, zap.String("user", email))
	}
	if err != nil {
		if errors.Is(err, errTokenTooLarge) {
			return h.loginRefused(w, r, via, http.StatusForbidden, "token too large for a cookie", "Too many groups", tooManyGroups,
				zap.String("user", email), zap.Int("groups", len(groups)))
		}
		h.logger.Error("minting token", zap.Error(err))
		return h.page(w, r, http.StatusInternalServerError, "Sign-in failed", "The session could not be created.")
	}
	countLogin(via, "success")
	setUser(r, email)
	h.logger.Info(loginMessage(via, ""), zap.String("user", email), zap.Int("groups", len(groups)),
		zap.String("idp", idp), zap.String("remote_ip", clientIP(r)))
	http.Redirect(w, r, safeReturnPath(returnPath), http.StatusSeeOther)
	return nil
}
