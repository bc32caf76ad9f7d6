package consolemeauth

import (
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/crewjam/saml"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// The browser of the ACS tests, and how long one ACS answer may take. The
// IdP, the SP's names and the users are samltest's.
const (
	attackBrowserIP   = "192.0.2.10"
	attackACSDeadline = 30 * time.Second
)

// attackEnv is a SAML handler whose IdP key the test holds, and the
// handler's log, where every refusal must name its reason.
type attackEnv struct {
	h      *Handler
	idp    *samltest.IdP
	logs   *observer.ObservedLogs
	mdFile string
	spCert *x509.Certificate // the SP's certificate, to encrypt to
}

// newAttackEnv provisions a handler that reads the email from the "email"
// attribute and the groups from "groups"; mutate may change that.
func newAttackEnv(t testing.TB, mutate func(*SAMLConfig)) *attackEnv {
	t.Helper()
	dir := t.TempDir()
	e := &attackEnv{idp: samltest.NewIdP(t, dir, "idp")}
	e.mdFile = e.idp.MetadataFile(t, dir)
	e.h, e.logs, e.spCert = newAttackHandler(t, e.mdFile, mutate, nil)
	return e
}

// newAttackHandler provisions one handler (one "instance") trusting the IdP
// metadata in mdFile, with an observed log and the given store (memory when
// nil).
func newAttackHandler(t testing.TB, mdFile string, mutate func(*SAMLConfig), st *StoreConfig) (*Handler, *observer.ObservedLogs, *x509.Certificate) {
	t.Helper()
	sp := samltest.NewKeyPair(t, t.TempDir(), "sp")
	h := newTestHandler(t, func(h *Handler) {
		h.SAML = &SAMLConfig{IDPMetadataFile: mdFile, SPCert: sp.CertFile, SPKey: sp.KeyFile,
			EmailAttribute: "email", GroupsAttribute: "groups"}
		if mutate != nil {
			mutate(h.SAML)
		}
		h.Store = st
		// Every subtest starts its own login from the same address.
		h.GeneratorRateLimit = &RateLimit{Events: 1 << 20, Window: caddy.Duration(time.Minute)}
	})
	core, logs := observer.New(zapcore.DebugLevel)
	h.logger = zap.New(core)
	return h, logs, sp.Cert
}

// attackLogin is an SP-initiated login in progress: the challenge it returns
// to, the one-time RelayState and the ID of the AuthnRequest.
type attackLogin struct {
	token, relay, requestID string
}

// login makes a challenge and opens its link without a session, which sends
// the browser to the IdP; the AuthnRequest is decoded from the redirect.
func (e *attackEnv) login(t testing.TB) attackLogin {
	t.Helper()
	tok := generate(t, e.h, samltest.Victim, attackBrowserIP)
	rec, _ := serve(t, e.h, request("GET", "/challenge_validator/"+tok, attackBrowserIP, nil))
	if rec.Code != http.StatusFound {
		t.Fatalf("validator without a session: %d %s", rec.Code, rec.Body)
	}
	loc := rec.Header().Get("Location")
	var req saml.AuthnRequest
	samltest.DecodeRedirect(t, loc, "SAMLRequest", &req)
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	relay := u.Query().Get("RelayState")
	if req.ID == "" || relay == "" {
		t.Fatalf("no request ID or RelayState in %s", loc)
	}
	return attackLogin{token: tok, relay: relay, requestID: req.ID}
}

// response is the correct answer of the trusted IdP to l: the victim, in
// the group engineering, with her assertion signed and the response itself
// unsigned (the common setup).
func (e *attackEnv) response(l attackLogin) *samltest.Response {
	return e.idp.Response(l.requestID, samltest.Victim, "engineering")
}

// attackACSResult is one answer of the ACS.
type attackACSResult struct {
	rec    *httptest.ResponseRecorder
	passed bool
	err    error
	panic  any
}

// post sends a SAMLResponse (and the RelayState, unless empty) to the ACS,
// turning a panic or an answer that takes longer than attackACSDeadline
// into a test failure.
func (e *attackEnv) post(t testing.TB, relay string, samlXML []byte) *httptest.ResponseRecorder {
	t.Helper()
	form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(samlXML)}}
	if relay != "" {
		form.Set("RelayState", relay)
	}
	e.logs.TakeAll()
	r := request("POST", "/saml/acs", attackBrowserIP, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	done := make(chan attackACSResult, 1)
	go func() {
		var res attackACSResult
		defer func() {
			if p := recover(); p != nil {
				res.panic = p
			}
			done <- res
		}()
		res.rec = httptest.NewRecorder()
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
			res.passed = true
			w.WriteHeader(299)
			return nil
		})
		res.err = e.h.ServeHTTP(res.rec, r, next)
	}()
	select {
	case res := <-done:
		switch {
		case res.panic != nil:
			t.Fatalf("the ACS panicked: %v", res.panic)
		case res.err != nil:
			t.Fatalf("the ACS returned an error instead of an answer: %v", res.err)
		case res.passed:
			t.Fatal("the ACS passed the request on to the next handler")
		}
		return res.rec
	case <-time.After(attackACSDeadline):
		t.Fatalf("the ACS did not answer within %s", attackACSDeadline)
		return nil
	}
}

// sessionCookie returns the consoleme_auth cookie an answer sets, if any.
func (e *attackEnv) sessionCookie(rec *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range rec.Result().Cookies() {
		if c.Name == e.h.CookieName {
			return c
		}
	}
	return nil
}

// expectLogin checks that the ACS logged email in: a 303 back to the
// challenge and a session cookie whose JWT the minter accepts for email.
func (e *attackEnv) expectLogin(t testing.TB, rec *httptest.ResponseRecorder, l attackLogin, email string) {
	t.Helper()
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("a correct response was refused: %d; logged reasons: %q", rec.Code, e.loggedReasons())
	}
	if loc := rec.Header().Get("Location"); loc != "/challenge_validator/"+l.token {
		t.Errorf("Location %q, want the challenge", loc)
	}
	c := e.sessionCookie(rec)
	if c == nil {
		t.Fatalf("no %s cookie; headers %v", e.h.CookieName, rec.Header())
	}
	id, err := e.h.sessions.codec.Verify(c.Value, time.Now())
	if err != nil {
		t.Fatalf("the session JWT does not verify: %v", err)
	}
	samltest.ExpectUser(t, id.Email, id.Groups, email, "engineering")
}

// expectRefused checks that the ACS refused: a 4xx page, no session cookie,
// and, when reason is not empty, a logged refusal whose reason contains it
// or one of its "|"-separated alternatives (so that the refusal has the
// cause the attack is about).
func (e *attackEnv) expectRefused(t testing.TB, rec *httptest.ResponseRecorder, reason string) {
	t.Helper()
	if c := e.sessionCookie(rec); c != nil {
		who := "an unreadable token"
		if id, err := e.h.sessions.codec.Verify(c.Value, time.Now()); err == nil {
			who = id.Email
		}
		t.Fatalf("ACCEPTED: status %d, session cookie for %s", rec.Code, who)
	}
	if rec.Code < 400 || rec.Code > 499 {
		t.Fatalf("status %d, want a 4xx refusal: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") && !strings.HasPrefix(ct, "application/json") {
		t.Errorf("refusal Content-Type %q", ct)
	}
	if reason == "" {
		return
	}
	reasons := e.loggedReasons()
	for _, r := range reasons {
		for _, want := range strings.Split(reason, "|") {
			if strings.Contains(strings.ToLower(r), strings.ToLower(want)) {
				return
			}
		}
	}
	t.Errorf("refused, but not for %q; logged reasons: %q", reason, reasons)
}

// loggedReasons lists the "reason" fields logged since the last post.
func (e *attackEnv) loggedReasons() []string {
	var out []string
	for _, entry := range e.logs.All() {
		for _, f := range entry.Context {
			if f.Key == "reason" {
				out = append(out, f.String)
			}
		}
	}
	return out
}

// TestSAMLAttackControl proves that the responses the attack tests start
// from are accepted, so that each refusal below is due to its one change.
func TestSAMLAttackControl(t *testing.T) {
	e := newAttackEnv(t, nil)
	skew, delay := samlauth.Tolerances()
	for _, tc := range samltest.Accepted(e.spCert, skew, delay) {
		t.Run(tc.Name, func(t *testing.T) {
			l := e.login(t)
			r := e.response(l)
			tc.Edit(r)
			e.expectLogin(t, e.post(t, l.relay, r.XML(t)), l, samltest.Victim)
		})
	}
}

// TestSAMLAttackReplay covers replays: of the whole POST, of an old
// assertion in a new login, of an assertion ID the IdP signed again, and
// across two instances sharing one store.
func TestSAMLAttackReplay(t *testing.T) {
	e := newAttackEnv(t, nil)

	l1 := e.login(t)
	first := e.response(l1)
	firstXML := first.XML(t)
	e.expectLogin(t, e.post(t, l1.relay, firstXML), l1, samltest.Victim)

	// The very same POST again: its RelayState was used up.
	t.Run("same response twice", func(t *testing.T) {
		e.expectRefused(t, e.post(t, l1.relay, firstXML), "RelayState")
	})

	// The captured response with the RelayState of a new login: it answers
	// the old AuthnRequest.
	t.Run("old response in a new login", func(t *testing.T) {
		l2 := e.login(t)
		e.expectRefused(t, e.post(t, l2.relay, firstXML), "InResponseTo")
	})

	// The IdP signs the same assertion ID again for a new login (a buggy or
	// compromised IdP, or a replay cache test): the ID is accepted only once.
	t.Run("same assertion ID for a new login", func(t *testing.T) {
		l3 := e.login(t)
		r := e.response(l3)
		r.Assertion.ID = first.Assertion.ID
		e.expectRefused(t, e.post(t, l3.relay, r.XML(t)), "replayed")
	})

	// Two instances share one store: a login started on one completes on the
	// other, and neither accepts what the other consumed.
	t.Run("across instances sharing a store", func(t *testing.T) {
		b := &attackEnv{idp: e.idp, mdFile: e.mdFile}
		b.h, b.logs, b.spCert = newAttackHandler(t, e.mdFile, nil, nil)
		b.h.states = e.h.states
		attackReplayAcrossInstances(t, e, b)
		b.expectRefused(t, b.post(t, l1.relay, firstXML), "RelayState")
	})
}

// TestSAMLAttackReplayRedis runs the cross-instance replays with two
// handlers provisioned with the Redis store on one redis-server.
func TestSAMLAttackReplayRedis(t *testing.T) {
	redisURL := startAttackRedis(t)
	dir := t.TempDir()
	idp := samltest.NewIdP(t, dir, "idp")
	md := idp.MetadataFile(t, dir)
	st := &StoreConfig{Type: "redis", URL: redisURL, KeyPrefix: "attack" + samltest.NewID() + ":"}
	instance := func() *attackEnv {
		e := &attackEnv{idp: idp, mdFile: md}
		e.h, e.logs, e.spCert = newAttackHandler(t, md, nil, st)
		return e
	}
	attackReplayAcrossInstances(t, instance(), instance())
}

// attackReplayAcrossInstances checks two instances a and b that share a
// store: a login started at a completes at b, and an assertion ID consumed at
// one is refused at the other (re-signed by the IdP for a new login there).
func attackReplayAcrossInstances(t *testing.T, a, b *attackEnv) {
	t.Helper()
	la := a.login(t)
	ra := a.response(la)
	raXML := ra.XML(t)
	b.expectLogin(t, b.post(t, la.relay, raXML), la, samltest.Victim)

	// The same POST at the other instance: the RelayState is used up.
	a.expectRefused(t, a.post(t, la.relay, raXML), "RelayState")

	lb := b.login(t)
	rb := b.response(lb)
	rb.Assertion.ID = ra.Assertion.ID
	a.expectRefused(t, a.post(t, lb.relay, rb.XML(t)), "replayed")

	lc := a.login(t)
	rc := a.response(lc)
	rc.Assertion.ID = ra.Assertion.ID
	b.expectRefused(t, b.post(t, lc.relay, rc.XML(t)), "replayed")
}

// startAttackRedis starts a redis-server of this test on a unix socket (no
// TCP port) and returns its URL. Without the binary the test is skipped,
// unless CI is "true".
func startAttackRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not found: %v", err)
		}
		t.Skipf("redis-server not found: %v", err)
	}
	// A short directory: unix socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "cmredis")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(bin, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no", "--dir", dir)
	logFile, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			n, _ := c.Read(buf)
			c.Close()
			if strings.HasPrefix(string(buf[:n]), "+PONG") {
				return "unix://" + sock
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logFile.Name())
			t.Fatalf("redis-server did not answer PING within 10s: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
