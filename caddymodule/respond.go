package consolemeauth

import (
	"encoding/json"
	"errors"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// This file is the one place where refusals and failures become answers:
// JSON in ConsoleMe's wire format on the CLI and API routes, a page on the
// browser routes. The log level policy is here too: an ordinary bad request
// is logged at debug, a refusal worth auditing at info, a store outage once
// (by watchedStore) and per request at debug, only our own faults at error.

// refusal is why a request gets nothing: the reason for the log and the
// metric label, ConsoleMe's message for its JSON API, and the page for a
// browser.
type refusal struct {
	reason  string
	message string
	status  int
	title   string
	text    string
}

// failure is a store error as the client sees it.
type failure struct {
	status     int
	code, text string // JSON code and message
	title      string // page title
	page       string // page text
	retryAfter string // seconds, or ""
	level      zapcore.Level
}

// failureOf maps a store error to its answer: a full store or an
// unreachable backend is a 503 with Retry-After, anything else a 500.
func (h *Handler) failureOf(err error) failure {
	switch {
	case errors.Is(err, store.ErrFull):
		return failure{http.StatusServiceUnavailable, "too_many_pending", "too many challenges are pending; try again later",
			"Temporarily unavailable", "Please try again in a minute.", retryAfter(time.Duration(h.ChallengeTTL)), zapcore.WarnLevel}
	case errors.Is(err, store.ErrClientBusy):
		return failure{http.StatusTooManyRequests, "too_many_logins", "too many sign-ins are in progress from this address; try again later",
			"Too many sign-ins", "Too many sign-ins were started from your network address. Please try again in a few minutes.",
			retryAfter(loginTTL), zapcore.InfoLevel}
	case errors.Is(err, store.ErrUnavailable):
		return failure{http.StatusServiceUnavailable, "store_unavailable", "the challenge store is unavailable; try again later",
			"Temporarily unavailable", "Please try again in a minute.", "5", zapcore.DebugLevel}
	default:
		return failure{http.StatusInternalServerError, "internal_error", "internal error",
			"Internal error", "Something went wrong. Please try again.", "", zapcore.ErrorLevel}
	}
}

// storeFailure answers a store error on a CLI or API route with JSON.
func (h *Handler) storeFailure(w http.ResponseWriter, r *http.Request, err error) error {
	f := h.logFailure(r, err)
	if f.retryAfter != "" {
		w.Header().Set("Retry-After", f.retryAfter)
	}
	return writeError(w, f.status, f.code, f.text)
}

// storePage answers a store error on a browser route with a page.
func (h *Handler) storePage(w http.ResponseWriter, r *http.Request, err error) error {
	f := h.logFailure(r, err)
	if f.retryAfter != "" {
		w.Header().Set("Retry-After", f.retryAfter)
	}
	return h.page(w, r, f.status, f.title, f.page)
}

func (h *Handler) logFailure(r *http.Request, err error) failure {
	f := h.failureOf(err)
	if !errors.Is(err, store.ErrClientBusy) {
		metrics.storeErrors.Inc()
	}
	if ce := h.logger.Check(f.level, "challenge store"); ce != nil {
		ce.Write(zap.Error(err), zap.String("remote_ip", clientIP(r)))
	}
	return f
}

// refusePage counts and logs a refused challenge request and answers with
// its page.
func (h *Handler) refusePage(w http.ResponseWriter, r *http.Request, ref *refusal, fields ...zap.Field) error {
	metrics.refused.WithLabelValues(ref.reason).Inc()
	h.audit(r, "challenge refused", ref.reason, fields...)
	return h.page(w, r, ref.status, ref.title, ref.text)
}

// audit writes an info line for a refusal worth keeping.
func (h *Handler) audit(r *http.Request, msg, reason string, fields ...zap.Field) {
	h.logger.Info(msg, append([]zap.Field{zap.String("reason", reason), zap.String("remote_ip", clientIP(r))}, fields...)...)
}

// loginRefused answers an identity provider's answer (or a login) the
// module does not accept: counted, logged at info with its reason, and a
// page for the browser. via is signInSAML or signInOIDC.
func (h *Handler) loginRefused(w http.ResponseWriter, r *http.Request, via string, status int, reason, title, text string, fields ...zap.Field) error {
	countLogin(via, "refused")
	h.logger.Info(loginMessage(via, " refused"), append([]zap.Field{zap.String("reason", reason), zap.String("remote_ip", clientIP(r))}, fields...)...)
	return h.page(w, r, status, title, text)
}

// loginMessage is the audit message of a login by via: "SAML login" or
// "OIDC login", then suffix.
func loginMessage(via, suffix string) string {
	if via == signInOIDC {
		return "OIDC login" + suffix
	}
	return "SAML login" + suffix
}

// page answers a browser with an information or error page. When the
// site has handle_errors routes, an error status goes there instead (as
// caddyhttp.Error, whose message is the page's text), so operators can
// restyle it.
func (h *Handler) page(w http.ResponseWriter, r *http.Request, status int, title, message string) error {
	if status >= 400 && hasErrorRoutes(r) {
		return caddyhttp.Error(status, errors.New(title+": "+message))
	}
	return render(w, status, "message", pageCSP, messagePage{Title: title, Message: template.HTML(textEscaper.Replace(message))})
}

// hasErrorRoutes reports whether the request's server has handle_errors.
func hasErrorRoutes(r *http.Request) bool {
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	return ok && srv != nil && srv.Errors != nil && len(srv.Errors.Routes) > 0
}

// debug logs an ordinary bad request at debug level.
func (h *Handler) debug(r *http.Request, msg string, fields ...zap.Field) {
	debugLog(h.logger, r, msg, fields...)
}

func debugLog(logger *zap.Logger, r *http.Request, msg string, fields ...zap.Field) {
	if ce := logger.Check(zapcore.DebugLevel, msg); ce != nil {
		ce.Write(append(fields, zap.String("remote_ip", clientIP(r)), zap.String("uri", redactURI(r.URL.Path)))...)
	}
}

// retryAfter formats d as whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(int(math.Max(1, math.Ceil(d.Seconds()))))
}

// allowMethods answers 405 (JSON) with Allow unless r's method is one of
// methods. HEAD is not implied by GET: our GETs change state (a challenge
// is made, a page viewed once), as ConsoleMe's Tornado handlers answer.
func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	allow := ""
	for _, m := range methods {
		if r.Method == m {
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
	return writeBody(w, status, b)
}

// lengths holds the decimal forms of the body lengths most answers have,
// so that writing Content-Length does not allocate.
var lengths = func() (l [1024]string) {
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

// contentLength is n in decimal.
func contentLength(n int) string {
	if n >= 0 && n < len(lengths) {
		return lengths[n]
	}
	return strconv.Itoa(n)
}

// writeBody writes the JSON body b with writeJSON's headers. The three
// header values share one allocation; each is a slice of its own, so that
// changing one (a header directive may) leaves the others alone.
func writeBody(w http.ResponseWriter, status int, b []byte) error {
	v := make([]string, 3)
	v[0], v[1], v[2] = "application/json; charset=UTF-8", "nosniff", contentLength(len(b))
	hdr := w.Header()
	hdr["Content-Type"], hdr["X-Content-Type-Options"], hdr["Content-Length"] = v[0:1:1], v[1:2:2], v[2:3:3]
	w.WriteHeader(status)
	_, err := w.Write(b)
	return err
}

// writeGenerator writes the generator's answer (a generatorReply) for the
// challenge token at base. It is the busiest answer, so it is written by
// hand rather than through reflection, byte for byte as encoding/json
// writes it; base and token are plain URL characters (json.Marshal, which
// escapes others, writes anything else). base is not kept.
func writeGenerator(w http.ResponseWriter, base []byte, token string) error {
	const (
		open      = `{"challenge_url":"`
		validator = `/challenge_validator/`
		middle    = `","polling_url":"`
		poller    = `/noauth/v1/challenge_poller/`
		end       = `"}`
	)
	if !plainJSON(base) || !plainJSON(token) {
		return writeJSON(w, http.StatusOK, generatorReply{
			ChallengeURL: string(base) + validator + token,
			PollingURL:   string(base) + poller + token,
		})
	}
	b := make([]byte, 0, len(open)+len(validator)+len(middle)+len(poller)+len(end)+2*(len(base)+len(token)))
	b = append(b, open...)
	b = append(append(append(b, base...), validator...), token...)
	b = append(b, middle...)
	b = append(append(append(b, base...), poller...), token...)
	b = append(b, end...)
	return writeBody(w, http.StatusOK, b)
}

// plainJSON reports whether encoding/json writes s as it is, between
// quotes: printable ASCII other than the quote, the backslash and the
// characters it escapes for HTML (<, >, &).
func plainJSON[T string | []byte](s T) bool {
	for i := range len(s) {
		switch c := s[i]; {
		case c < 0x20, c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
