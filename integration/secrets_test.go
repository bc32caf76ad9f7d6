package integration

import (
	"encoding/base64"
	"os"
	"strings"
	"testing"
)

// TestNoSecretsInLogs runs a whole login with Caddy logging at debug level,
// including refused requests, and checks that the JWT secret, the SP key,
// the JWTs and the SAML assertion never appear in the log.
func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	e := newRealEnv(t, sharedRealConsoleMe(t), func(c *moduleConfig) { c.Debug = true })
	ch := e.generate(t, userAlice.Email, nil)
	b := newBrowser(t)
	hops := e.login(t, b, userAlice, ch.ChallengeURL)
	p, f := e.openApproval(t, b, ch.ChallengeURL, userAlice.Email, "127.0.0.1")
	e.approve(t, b, p, f)
	s := e.pollSuccess(t, ch.PollingURL, nil, userAlice)
	// Some refusals, which log at debug and info.
	e.poll(t, ch.PollingURL, nil)
	b.SetCookie(e.Base, e.cookieName(), s.EncodedJWT+"tampered")
	b.Get(e.Base + "/challenge_validator/" + ch.Token)
	e.upstreamIdentity(t, s.EncodedJWT, userAlice)

	form, _ := formWithField(hops.IdPResponse, "SAMLResponse")
	samlResponse := form.Hidden()["SAMLResponse"]
	assertionXML, _ := base64.StdEncoding.DecodeString(samlResponse)
	key, err := os.ReadFile(e.Config.SPKey)
	if err != nil {
		t.Fatal(err)
	}
	keyBody := strings.Split(string(key), "\n")[2] // a line from the middle of the PEM
	out := e.Caddy.Output()
	if !strings.Contains(out, `"level":"debug"`) {
		t.Fatal("debug logging is not on; the test would prove nothing")
	}
	for name, secret := range map[string]string{
		"jwt secret":           e.Secret,
		"minted JWT":           s.EncodedJWT,
		"JWT signature":        s.EncodedJWT[strings.LastIndex(s.EncodedJWT, ".")+1:],
		"session cookie":       hops.ACS.Cookie(e.cookieName()).Value,
		"SAMLResponse":         samlResponse[:64],
		"assertion signature":  signatureValue(string(assertionXML)),
		"SP key":               keyBody,
		"full challenge token": ch.Token,
	} {
		if secret == "" {
			t.Errorf("%s: nothing to look for", name)
			continue
		}
		if strings.Contains(out, secret) {
			t.Errorf("the log contains the %s", name)
		}
	}
}

// signatureValue returns the first SignatureValue in a SAML document.
func signatureValue(doc string) string {
	_, rest, ok := strings.Cut(doc, "SignatureValue>")
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, "<")
	return strings.TrimSpace(v)
}
