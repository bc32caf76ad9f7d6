package consolemeauth

import (
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/revocation"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/token"
)

// How a session was obtained: the token's auth_method claim.
const (
	// methodIdP is a browser that signed in at the identity provider.
	methodIdP = "idp"
	// methodChallenge is a CLI that collected an approved challenge.
	methodChallenge = "challenge"
	// methodCertificate is one proxied request with a verified client
	// certificate; such a token is never a browser session.
	methodCertificate = "certificate"
)

// maxCookieSize is the largest cookie (name=value) browsers keep; a larger
// consoleme_auth cookie would be dropped silently.
const maxCookieSize = 4096

// tooManyGroups tells a user why their token does not fit in a cookie.
const tooManyGroups = "You belong to too many groups for a ConsoleMe token to fit in a browser cookie. Ask your administrator to set groups_filter."

// errTokenTooLarge means a token would not fit in a browser cookie.
var errTokenTooLarge = errors.New("the token is too large for a cookie")

// session is a verified consoleme_auth token: who, how they signed in, and
// when they last signed in at the identity provider.
type session struct {
	id       string // the sid claim; empty for a token minted elsewhere
	email    string
	groups   []string
	method   string
	authTime time.Time
	expires  time.Time
}

// sessions owns the consoleme_auth cookie and every rule about it: reading
// and verifying it, how old a session may be, issuing it after an IdP
// login, renewing it, clearing it, its size, and the tokens minted for a
// CLI or a client certificate. No other code reads or writes the cookie.
//
// Every token it mints carries auth_time, the last IdP sign-in, and never
// expires later than auth_time + max_session_age, so no chain of approve →
// collect → use as a browser cookie → renew keeps anyone signed in past
// max_session_age. A certificate token is never accepted as a session.
type sessions struct {
	cookie      string
	codec       *token.Codec // jwt_expiration
	certCodec   *token.Codec // mtls token_lifetime; nil without mtls
	maxAge      time.Duration
	renewBefore time.Duration
	base        *url.URL // public_url, nil when unset
	logger      *zap.Logger
	policy      *policy
	// revoked is the site's revocation list; records is where live
	// sessions are recorded (both shared by the site's instances in this
	// process). Nil in tests that need neither.
	revoked *revocation.List
	records store.SessionStore
	seen    *tokenMemory
}

// read returns the first cookie that is a usable session at now, or nil:
// a valid token of this site, not minted for a certificate, whose last IdP
// sign-in is no older than max_session_age, and not revoked.
func (s *sessions) read(r *http.Request, now time.Time) *session {
	for value := range cookieValues(r.Header, s.cookie) {
		id := s.verified(value, now)
		switch {
		case id == nil:
			s.ignore(r, "invalid token", nil)
		case id.Method == methodCertificate:
			s.ignore(r, "token minted for a client certificate", nil)
		case now.Sub(id.AuthTime) > s.maxAge:
			s.ignore(r, "last sign-in older than max_session_age", nil)
		default:
			// A revoked session is no session. One whose groups the
			// policy refuses still is, so that the validator can say
			// why it refuses: nothing is minted for it (admit again)
			// and ServeHTTP passes none of its requests on.
			if ref := s.admitToken(id, now); ref != nil && !ref.policy {
				s.ignore(r, ref.reason, nil)
				continue
			}
			return &session{id: id.SessionID, email: id.Email, groups: id.Groups, method: id.Method, authTime: id.AuthTime, expires: id.Expires}
		}
	}
	return nil
}

func (s *sessions) ignore(r *http.Request, why string, err error) {
	debugLog(s.logger, r, "ignoring session cookie", zap.String("reason", why), zap.Error(err))
}

// issue gives a browser that just signed in at the IdP its session cookie,
// a new session, when admit allows it: it returns the refusal otherwise,
// and errTokenTooLarge when the groups make the cookie too large.
func (s *sessions) issue(w http.ResponseWriter, r *http.Request, email string, groups []string, now time.Time) (*tokenRefusal, error) {
	if ref := s.admit(email, groups, revocation.Token{AuthTime: now}, false, now); ref != nil {
		return ref, nil
	}
	sid := newSessionID()
	jwt, exp, err := s.codec.MintSubject(token.Subject{
		Email: email, Groups: groups, Method: methodIdP, AuthTime: now, NotAfter: now.Add(s.maxAge), SessionID: sid,
	}, now, now)
	if err != nil {
		return nil, err
	}
	if !s.fitsCookie(jwt) {
		return nil, errTokenTooLarge
	}
	s.set(w, r, jwt, exp, now)
	s.record(r, &store.Session{ID: sid, User: email, Method: methodIdP, IP: clientIP(r), Created: now, Expires: exp}, now)
	return nil, nil
}

// renewIfDue gives a session that expires within renew_before a fresh
// cookie with the same sign-in time (so it still ends at max_session_age)
// and the same session id, and hands it to the upstream on this request
// too.
func (s *sessions) renewIfDue(w http.ResponseWriter, r *http.Request, ss *session, now time.Time) {
	if ss.expires.Sub(now) >= s.renewBefore {
		return
	}
	jwt, exp, err := s.codec.MintSubject(token.Subject{
		Email: ss.email, Groups: ss.groups, Method: ss.method, AuthTime: ss.authTime, NotAfter: ss.authTime.Add(s.maxAge),
		SessionID: ss.id,
	}, ss.authTime, now)
	if err != nil || !exp.After(ss.expires) || !s.fitsCookie(jwt) {
		return
	}
	s.set(w, r, jwt, exp, now)
	replaceCookie(r.Header, s.cookie, jwt)
	if ss.id != "" {
		s.record(r, &store.Session{ID: ss.id, User: ss.email, Method: ss.method, IP: clientIP(r), Created: ss.authTime, Expires: exp}, now)
	}
	debugLog(s.logger, r, "session renewed", zap.String("user", ss.email))
}

// forChallenge mints the token the poller hands to the CLI for an approved
// challenge, a session of its own: the approver's sign-in time rides along,
// and admit is asked again (a revocation or a policy change since the
// approval stops it).
func (s *sessions) forChallenge(r *http.Request, c *store.Challenge, now time.Time) (string, time.Time, *tokenRefusal, error) {
	// The approver's sign-in time is their token's auth_time, a whole
	// second, and is compared by the second, as their token is: a sign-in
	// just after a revocation, in its second, may approve and collect.
	authTime, whole := c.AuthTime, true
	if authTime.IsZero() {
		authTime, whole = c.Created, false
	}
	if ref := s.admit(c.Approver, c.Groups, revocation.Token{AuthTime: authTime, Whole: whole}, false, now); ref != nil {
		return "", time.Time{}, ref, nil
	}
	sid := newSessionID()
	jwt, exp, err := s.codec.MintSubject(token.Subject{
		Email: c.Approver, Groups: c.Groups, Method: methodChallenge, AuthTime: authTime, NotAfter: authTime.Add(s.maxAge),
		SessionID: sid,
	}, now, now)
	if err != nil {
		return "", time.Time{}, nil, err
	}
	s.record(r, &store.Session{ID: sid, User: c.Approver, Method: methodChallenge, IP: clientIP(r), Created: now, Expires: exp}, now)
	return jwt, exp, nil, nil
}

// forwardCertificate puts a token for a client certificate's user on the
// proxied request as the session cookie, replacing any the client sent.
// Its iat and auth_time are the certificate's NotBefore (ConsoleMe measures
// a certificate's age by iat), never later than now.
func (s *sessions) forwardCertificate(r *http.Request, user string, groups []string, notBefore, now time.Time) (*tokenRefusal, error) {
	if ref := s.admit(user, groups, revocation.Token{}, true, now); ref != nil {
		return ref, nil
	}
	issued := notBefore
	if issued.After(now) {
		issued = now
	}
	jwt, _, err := s.certCodec.MintSubject(token.Subject{
		Email: user, Groups: groups, Method: methodCertificate, AuthTime: issued,
	}, issued, now)
	if err != nil {
		return nil, fmt.Errorf("minting certificate token: %w", err)
	}
	replaceCookie(r.Header, s.cookie, jwt)
	return nil, nil
}

// dropCertificateTokens removes from a request without a client
// certificate every session cookie minted for one: such a token may have
// been read back from the upstream (ConsoleMe echoes request headers) and
// must not work without the certificate.
func (s *sessions) dropCertificateTokens(r *http.Request, now time.Time) {
	for value := range cookieValues(r.Header, s.cookie) {
		if id := s.verified(value, now); id != nil && id.Method == methodCertificate {
			removeCookie(r.Header, s.cookie)
			debugLog(s.logger, r, "dropped a certificate token sent without the certificate", zap.String("user", id.Email))
			return
		}
	}
}

// fits reports whether a browser cookie for email and groups stays under
// the browsers' limit.
func (s *sessions) fits(email string, groups []string, now time.Time) bool {
	jwt, _, err := s.codec.MintSubject(token.Subject{
		Email: email, Groups: groups, Method: methodChallenge, AuthTime: now,
	}, now, now)
	return err == nil && s.fitsCookie(jwt)
}

func (s *sessions) fitsCookie(jwt string) bool {
	return len(s.cookie)+1+len(jwt) <= maxCookieSize
}

// set writes the session cookie.
func (s *sessions) set(w http.ResponseWriter, r *http.Request, jwt string, exp, now time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookie,
		Value:    jwt,
		Path:     "/",
		Expires:  exp,
		MaxAge:   int(exp.Sub(now).Seconds()),
		HttpOnly: true,
		Secure:   s.secure(r),
		SameSite: http.SameSiteLaxMode,
	})
}

// clear tells the browser to drop the session cookie.
func (s *sessions) clear(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: s.cookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
}

// secure reports whether cookies should be Secure: the site is https.
func (s *sessions) secure(r *http.Request) bool {
	if s.base != nil {
		return s.base.Scheme == "https"
	}
	return r.TLS != nil
}

// setUser names the user whose session the module verified in
// {http.auth.user.id}, so access logs can say who made each request.
func setUser(r *http.Request, user string) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.user.id", user)
	}
}

// replaceCookie removes every cookie called name from the Cookie header
// lines of hdr, keeps the other cookies byte for byte, and adds name=value.
// The result is a single Cookie line.
func replaceCookie(hdr http.Header, name, value string) {
	kept := otherCookies(hdr, name)
	hdr.Set("Cookie", strings.Join(append(kept, name+"="+value), "; "))
}

// removeCookie removes every cookie called name from hdr.
func removeCookie(hdr http.Header, name string) {
	kept := otherCookies(hdr, name)
	if len(kept) == 0 {
		hdr.Del("Cookie")
		return
	}
	hdr.Set("Cookie", strings.Join(kept, "; "))
}

// cookieValues yields the value of every cookie called name in hdr's
// Cookie lines, surrounding double quotes removed. It is more lenient than
// net/http (it does not drop a value with bytes RFC 6265 forbids), so that
// no value an upstream's laxer parser would read escapes the checks; a
// value that is not a token simply does not verify.
func cookieValues(hdr http.Header, name string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, line := range hdr["Cookie"] {
			for len(line) > 0 {
				var part string
				part, line, _ = strings.Cut(line, ";")
				n, v, ok := strings.Cut(part, "=")
				if !ok || textproto.TrimString(n) != name {
					continue
				}
				v = textproto.TrimString(v)
				if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				if !yield(v) {
					return
				}
			}
		}
	}
}

// otherCookies lists the cookies of hdr not called name, as sent.
func otherCookies(hdr http.Header, name string) []string {
	var kept []string
	for _, line := range hdr.Values("Cookie") {
		for part := range strings.SplitSeq(line, ";") {
			part = textproto.TrimString(part)
			if part == "" {
				continue
			}
			if n, _, _ := strings.Cut(part, "="); textproto.TrimString(n) == name {
				continue
			}
			kept = append(kept, part)
		}
	}
	return kept
}
