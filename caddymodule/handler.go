package consolemeauth

import (
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/google/uuid"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// ServeHTTP answers the handler's own routes and passes every other request
// to next without touching it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	rt, arg := matchRoute(r.URL.Path, h.sp != nil)
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
	}
	if h.mtls != nil && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		if handled, err := h.applyMTLS(w, r); handled || err != nil {
			return err
		}
		return next.ServeHTTP(w, r) // the certificate is the session; web_login must not bounce or renew it
	}
	if h.WebLogin != nil {
		if r.URL.Path == "/logout" {
			return h.serveLogout(w, r)
		}
		if handled, err := h.guardWebLogin(w, r); handled || err != nil {
			return err
		}
	}
	return next.ServeHTTP(w, r)
}

// generatorReply is the generator's answer, field order as ConsoleMe's.
type generatorReply struct {
	ChallengeURL string `json:"challenge_url"`
	PollingURL   string `json:"polling_url"`
}

// serveGenerator makes a new challenge for the user in the path.
func (h *Handler) serveGenerator(w http.ResponseWriter, r *http.Request, user string) error {
	defer observe("generator", time.Now())
	if !allowMethods(w, r, http.MethodGet) {
		return nil
	}
	if !h.allowRate(w, r, h.genRL, "generator") {
		return nil
	}
	if why := checkUser(user); why != "" {
		h.debug(r, "refusing challenge request", zap.String("reason", why))
		return writeError(w, http.StatusBadRequest, "invalid_user", why)
	}
	ip := clientIP(r)
	now := h.now()
	c := &store.Challenge{
		Token:   uuid.NewString(),
		User:    user,
		IP:      ip,
		Created: now,
		Expires: now.Add(time.Duration(h.ChallengeTTL)),
		Status:  store.StatusPending,
	}
	if err := h.store.Create(r.Context(), c); err != nil {
		return h.storeFailure(w, r, err)
	}
	base := h.baseURL(r)
	metrics.created.Inc()
	h.logger.Info("challenge created",
		zap.String("user", user), zap.String("remote_ip", ip), zap.String("challenge", shortToken(c.Token)))
	return writeJSON(w, http.StatusOK, generatorReply{
		ChallengeURL: base + "/challenge_validator/" + c.Token,
		PollingURL:   base + "/noauth/v1/challenge_poller/" + c.Token,
	})
}

// pollReply is the poller's answer, field order as ConsoleMe's; everything
// but status is present only on success.
type pollReply struct {
	Status     string `json:"status"`
	CookieName string `json:"cookie_name,omitempty"`
	Expiration int64  `json:"expiration,omitempty"`
	EncodedJWT string `json:"encoded_jwt,omitempty"`
	User       string `json:"user,omitempty"`
}

// servePoller answers the CLI's poll: unknown, expired, unauthorized,
// pending, or (once) success with a fresh ConsoleMe JWT.
func (h *Handler) servePoller(w http.ResponseWriter, r *http.Request, tok string) error {
	defer observe("poller", time.Now())
	if !allowMethods(w, r, http.MethodGet) {
		return nil
	}
	if !h.allowRate(w, r, h.pollRL, "poller") {
		return nil
	}
	if !validToken(tok) {
		h.debug(r, "refusing poll", zap.String("reason", "malformed token"))
		return writeError(w, http.StatusBadRequest, "invalid_token", "the challenge token is malformed")
	}
	ip := clientIP(r)
	now := h.now()
	outcome, c, err := h.store.Poll(r.Context(), tok, ip, !h.DisablePollerIPCheck, now)
	if err != nil {
		return h.storeFailure(w, r, err)
	}
	if outcome != store.PollSuccess {
		switch outcome {
		case store.PollExpired:
			metrics.expired.Inc()
		case store.PollUnauthorized:
			metrics.refused.WithLabelValues("poller ip differs").Inc()
			h.logger.Info("poll refused", zap.String("reason", "client ip differs from the challenge's"),
				zap.String("remote_ip", ip), zap.String("challenge", shortToken(tok)))
		}
		return writeJSON(w, http.StatusOK, pollReply{Status: outcome.String()})
	}
	jwt, exp, err := h.minter.Mint(c.Approver, c.Groups, now)
	if err != nil {
		h.logger.Error("minting token", zap.Error(err))
		return writeError(w, http.StatusInternalServerError, "internal_error", "the token could not be minted")
	}
	metrics.collected.Inc()
	h.logger.Info("challenge collected",
		zap.String("user", c.Approver), zap.String("remote_ip", ip), zap.String("challenge", shortToken(tok)),
		zap.Time("expires", exp))
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, pollReply{
		Status:     "success",
		CookieName: h.CookieName,
		Expiration: exp.Unix(),
		EncodedJWT: jwt,
		User:       c.Approver,
	})
}

// storeFailure answers a store error: a full store or an unreachable backend
// is a 503 with Retry-After; anything else is a 500.
func (h *Handler) storeFailure(w http.ResponseWriter, r *http.Request, err error) error {
	metrics.storeErrors.Inc()
	switch {
	case errors.Is(err, store.ErrFull):
		h.logger.Warn("challenge store full", zap.Int("max_pending", h.MaxPending), zap.String("remote_ip", clientIP(r)))
		w.Header().Set("Retry-After", retryAfter(time.Duration(h.ChallengeTTL)))
		return writeError(w, http.StatusServiceUnavailable, "too_many_pending",
			"too many challenges are pending; try again later")
	case errors.Is(err, store.ErrUnavailable):
		// Logged once per outage by watchedStore.
		h.debug(r, "challenge store unavailable", zap.Error(err))
		w.Header().Set("Retry-After", "5")
		return writeError(w, http.StatusServiceUnavailable, "store_unavailable",
			"the challenge store is unavailable; try again later")
	default:
		h.logger.Error("challenge store", zap.Error(err))
		return writeError(w, http.StatusInternalServerError, "internal_error", "internal error")
	}
}

// allowRate answers 429 with Retry-After when the client IP is over lim.
func (h *Handler) allowRate(w http.ResponseWriter, r *http.Request, lim *ipLimiter, route string) bool {
	ip := clientIP(r)
	ok, wait := lim.allow(ip, h.now())
	if ok {
		return true
	}
	h.debug(r, "rate limited", zap.String("route", route), zap.Duration("wait", wait))
	w.Header().Set("Retry-After", retryAfter(wait))
	_ = writeError(w, http.StatusTooManyRequests, "rate_limited", "too many requests from this address; try again later")
	return false
}

// baseURL is public_url, or the request's own scheme and host.
func (h *Handler) baseURL(r *http.Request) string {
	if h.base != nil {
		return h.base.String()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// debug logs an ordinary bad request at debug level.
func (h *Handler) debug(r *http.Request, msg string, fields ...zap.Field) {
	if ce := h.logger.Check(zapcore.DebugLevel, msg); ce != nil {
		ce.Write(append(fields, zap.String("remote_ip", clientIP(r)), zap.String("uri", redactURI(r.URL.Path)))...)
	}
}

// clientIP is Caddy's idea of the client IP (honouring trusted_proxies), or
// the socket peer when the request did not come through a Caddy server.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// redactURI is a request path fit for the log: a challenge token in it is
// cut to its first characters, and the query is left out.
func redactURI(path string) string {
	rt, arg := matchRoute(path, false)
	if rt == routePoller || rt == routeValidator || rt == routeValidatorAPI {
		return strings.TrimSuffix(path, arg) + shortToken(arg) + "…"
	}
	return path
}

// shortToken is the part of a challenge token that is safe to log: enough to
// correlate log lines, too little to poll with.
func shortToken(t string) string {
	if len(t) > 8 {
		return t[:8]
	}
	return t
}

// retryAfter formats d as whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(int(math.Max(1, math.Ceil(d.Seconds()))))
}

// allowMethods answers 405 (JSON) unless r's method is one of methods; HEAD
// is allowed wherever GET is.
func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	allow := ""
	for _, m := range methods {
		if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
			return true
		}
		if allow != "" {
			allow += ", "
		}
		allow += m
	}
	w.Header().Set("Allow", allow)
	_ = writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method "+r.Method+" is not allowed here; use "+allow)
	return false
}

// errorReply is the JSON body of every error answer.
type errorReply struct {
	Status  string `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError writes a JSON error. The status field is the string "error",
// so that a Weep client decoding it as a poll reply keeps working.
func writeError(w http.ResponseWriter, status int, code, message string) error {
	return writeJSON(w, status, errorReply{Status: "error", Code: code, Message: message})
}

// writeJSON writes v as ConsoleMe does: application/json; charset=UTF-8.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json; charset=UTF-8")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}
