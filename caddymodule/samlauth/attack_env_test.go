package samlauth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// How long one Verify may take.
const (
	attackDeadline = 30 * time.Second
	// hostileXMLDeadline bounds the answer to a parser attack; a correct
	// refusal takes milliseconds even under the race detector.
	hostileXMLDeadline = 5 * time.Second
)

// attackEnv is a Provider whose IdP key the test holds, an impostor key, and
// the replay guard Verify consumes assertion IDs in.
type attackEnv struct {
	p        *Provider
	idp      *samltest.IdP
	impostor *samltest.IdP
	guard    ReplayGuard
	mdFile   string
	deadline time.Duration // for one Verify; attackDeadline when zero
}

// newAttackEnv makes a Provider that reads the email from the "email"
// attribute and the groups from "groups"; mutate may change that.
func newAttackEnv(t testing.TB, mutate func(*Config)) *attackEnv {
	t.Helper()
	dir := t.TempDir()
	e := &attackEnv{idp: samltest.NewIdP(t, dir, "idp"), impostor: samltest.NewIdP(t, dir, "impostor"), guard: newMemGuard()}
	e.mdFile = e.idp.MetadataFile(t, dir)
	e.p = newAttackProvider(t, e.mdFile, mutate)
	return e
}

// newAttackProvider makes one Provider (one "instance") trusting the IdP
// metadata in mdFile, with its own SP key pair.
func newAttackProvider(t testing.TB, mdFile string, mutate func(*Config)) *Provider {
	t.Helper()
	cfg := spConfig(t, mdFile)
	if mutate != nil {
		mutate(&cfg)
	}
	return mustNew(t, cfg)
}

// attackLogin is an SP-initiated login in progress: the ID of its
// AuthnRequest (which the glue keeps under the relay state).
type attackLogin struct {
	requestID string
}

// login starts a login and checks that the AuthnRequest in the redirect
// carries the ID AuthnRequest returned.
func (e *attackEnv) login(t testing.TB) attackLogin {
	t.Helper()
	r, err := e.p.AuthnRequest(samltest.SPBaseURL, "relay-"+samltest.NewID())
	if err != nil {
		t.Fatalf("AuthnRequest: %v", err)
	}
	req := decodeRedirectRequest(t, r.URL)
	if req.ID == "" || req.ID != r.RequestID {
		t.Fatalf("AuthnRequest ID %q, Redirect.RequestID %q", req.ID, r.RequestID)
	}
	return attackLogin{requestID: r.RequestID}
}

// decodeRedirectRequest inflates the AuthnRequest of an HTTP-Redirect URL.
func decodeRedirectRequest(t testing.TB, location string) *saml.AuthnRequest {
	t.Helper()
	var req saml.AuthnRequest
	samltest.DecodeRedirect(t, location, "SAMLRequest", &req)
	return &req
}

// attackClock returns now and the library's current tolerances, which other
// tests may have widened (they are process-wide).
func attackClock() (now time.Time, skew, issueDelay time.Duration) {
	skew, issueDelay = Tolerances()
	return time.Now().UTC(), skew, issueDelay
}

// response is the correct answer of the trusted IdP to l: the victim, in
// the group engineering, with her assertion signed and the response itself
// unsigned (the common setup).
func (e *attackEnv) response(l attackLogin) *samltest.Response {
	return e.idp.Response(l.requestID, samltest.Victim, "engineering")
}

// verify hands raw to Verify for l, turning a panic or an answer slower
// than e.deadline into a test failure.
func (e *attackEnv) verify(t testing.TB, l attackLogin, raw []byte) (*Identity, error) {
	t.Helper()
	type result struct {
		id    *Identity
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		var res result
		defer func() {
			res.panic = recover()
			done <- res
		}()
		res.id, res.err = e.p.Verify(t.Context(), raw, samltest.SPBaseURL, l.requestID, e.guard, time.Now())
	}()
	deadline := e.deadline
	if deadline == 0 {
		deadline = attackDeadline
	}
	select {
	case res := <-done:
		if res.panic != nil {
			t.Fatalf("Verify panicked: %v", res.panic)
		}
		return res.id, res.err
	case <-time.After(deadline):
		t.Fatalf("Verify did not answer within %s", deadline)
		return nil, nil
	}
}

// expectLogin checks that Verify accepted the response for email, in the
// groups the IdP sent ([engineering]), issued by the trusted IdP.
func expectLogin(t testing.TB, id *Identity, err error, email string) {
	t.Helper()
	if err != nil {
		t.Fatalf("a correct response was refused: %v", err)
	}
	samltest.ExpectUser(t, id.Email, id.Groups, email, "engineering")
	if id.Issuer != samltest.IdPEntityID || id.AssertionID == "" {
		t.Errorf("issuer %q, assertion ID %q", id.Issuer, id.AssertionID)
	}
}

// expectRefused checks that Verify refused with a *Refusal whose Message is
// set and, when reason is not empty, whose Reason contains it or one of its
// "|"-separated alternatives (so that the refusal has the cause the attack
// is about).
func expectRefused(t testing.TB, id *Identity, err error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("ACCEPTED: identity %+v", id)
	}
	if id != nil {
		t.Errorf("an identity came with the refusal: %+v", id)
	}
	var ref *Refusal
	if !errors.As(err, &ref) {
		t.Fatalf("error %v (%T), want a *Refusal", err, err)
	}
	if ref.Message == "" {
		t.Error("the refusal has no message for the user")
	}
	if reason == "" {
		return
	}
	for _, want := range strings.Split(reason, "|") {
		if strings.Contains(strings.ToLower(ref.Reason), strings.ToLower(want)) {
			return
		}
	}
	t.Errorf("refused, but not for %q; reason: %q", reason, ref.Reason)
}
