package consolemeauth

import (
	"net/http"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// generatorReply is the generator's answer, field order as ConsoleMe's.
type generatorReply struct {
	ChallengeURL string `json:"challenge_url"`
	PollingURL   string `json:"polling_url"`
}

// serveGenerator makes a new challenge for the user in the path.
func (h *Handler) serveGenerator(w http.ResponseWriter, r *http.Request, user string) error {
	defer observe(generatorDuration, time.Now())
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
	// The store chooses the token: random, written as a uuid; the memory
	// store's names its record, so that storing it reads no index.
	c := &store.Challenge{
		User:    user,
		IP:      ip,
		Created: now,
		Expires: now.Add(time.Duration(h.ChallengeTTL)),
		Status:  store.StatusPending,
	}
	if err := h.states.Create(r.Context(), c, now); err != nil {
		return h.storeFailure(w, r, err)
	}
	metrics.created.Inc()
	if ce := h.logger.Check(zapcore.InfoLevel, "challenge created"); ce != nil {
		ce.Write(zap.String("user", user), zap.String("remote_ip", ip), zap.String("challenge", shortToken(c.Token)))
	}
	var buf [128]byte
	return writeGenerator(w, h.appendBaseURL(buf[:0], r), c.Token)
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
	defer observe(pollerDuration, time.Now())
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
	outcome, c, err := h.states.Poll(r.Context(), tok, ip, !h.DisablePollerIPCheck, now)
	if err != nil {
		return h.storeFailure(w, r, err)
	}
	if outcome != store.PollSuccess {
		switch outcome {
		case store.PollExpired:
			metrics.expired.Inc()
		case store.PollUnauthorized:
			metrics.refused.WithLabelValues("poller ip differs").Inc()
			h.audit(r, "poll refused", "client ip differs from the challenge's", zap.String("challenge", shortToken(tok)))
		}
		return writeJSON(w, http.StatusOK, pollReply{Status: outcome.String()})
	}
	jwt, exp, ref, err := h.sessions.forChallenge(r, c, now)
	if ref != nil {
		metrics.refused.WithLabelValues(ref.reason).Inc()
		h.audit(r, "poll refused", ref.reason, zap.String("user", c.Approver), zap.String("challenge", shortToken(tok)))
		return writeJSON(w, http.StatusOK, pollReply{Status: store.PollUnauthorized.String()})
	}
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

// allowRate answers 429 JSON with Retry-After when the client is over lim.
func (h *Handler) allowRate(w http.ResponseWriter, r *http.Request, lim *ipLimiter, route string) bool {
	if lim == nil { // off
		return true
	}
	ok, wait := lim.allow(clientKey(clientIP(r), h.IPv6Prefix), h.now())
	if ok {
		return true
	}
	h.debug(r, "rate limited", zap.String("route", route), zap.Duration("wait", wait))
	w.Header().Set("Retry-After", retryAfter(wait))
	_ = writeError(w, http.StatusTooManyRequests, "rate_limited", "too many requests from this address; try again later")
	return false
}

// maxUserLen is the longest user name the generator accepts, in bytes.
const maxUserLen = 256

// checkUser returns why a user name from the generator path is refused, or "".
// ConsoleMe accepts anything; we refuse what cannot be a real user name and
// could only cause trouble in logs and pages.
func checkUser(u string) string {
	switch {
	case u == "":
		return "the user name is missing: call /noauth/v1/challenge_generator/{user}"
	case len(u) > maxUserLen:
		return "the user name is longer than 256 bytes"
	case !utf8.ValidString(u):
		return "the user name is not valid UTF-8"
	}
	for _, r := range u {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return "the user name contains a control character"
		}
	}
	return ""
}

// maxTokenLen is the longest challenge token accepted; ours are 36 bytes.
const maxTokenLen = 64

// validToken reports whether t matches ConsoleMe's token pattern
// [a-zA-Z0-9_-]+ and is not absurdly long.
func validToken(t string) bool {
	if t == "" || len(t) > maxTokenLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
