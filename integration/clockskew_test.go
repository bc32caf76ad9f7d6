package integration

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// consoleMeClockBehind is how far behind Caddy's clock the real ConsoleMe's
// clock may be while it must still accept every token the module mints.
const consoleMeClockBehind = 5 * time.Second

// TestConsoleMeClockBehind runs the real ConsoleMe under libfaketime with
// its clock 5 s behind Caddy's, and checks that it accepts the tokens the
// module mints right away: the CLI token a poll collects, the browser's
// session cookie from the ACS, and the cookie the module puts on an mTLS
// request (from a certificate issued this second as well as an older one).
//
// ConsoleMe (with the PyJWT that Debian ships, 2.6) answers 500 to a token
// whose nbf or iat is after its own clock, so this holds only when the
// module mints both nbf and iat at least 5 s in the past (for mTLS: iat =
// min(certificate NotBefore, now - 5 s)).
func TestConsoleMeClockBehind(t *testing.T) {
	t.Parallel()
	caddyBinary(t)
	cm := startRealConsoleMe(t, realConsoleMeOptions{ClockOffset: -consoleMeClockBehind})

	// First prove that ConsoleMe's clock is behind ours, and by how much,
	// with tokens this test signs itself: one with nbf and iat 2 s ago is
	// still in ConsoleMe's future (500); one with nbf and iat exactly 5 s
	// ago, which is what the module must mint, is not (200).
	direct := func(nbfAgo time.Duration) int {
		now := time.Now()
		claims := consoleMeClaims(userAlice.Email, userAlice.Groups, now)
		claims["nbf"] = now.Add(-nbfAgo).Unix()
		claims["iat"] = now.Add(-nbfAgo).Unix()
		tok := signedToken(t, "HS256", cm.Secret(), claims)
		return call(t, http.MethodGet, cm.CM.URL+"/api/v1/get_roles?all=true", cookieHeader("consoleme_auth", tok), "").Status
	}
	if got := direct(2 * time.Second); got != http.StatusInternalServerError {
		t.Fatalf("a token valid from 2 s ago got %d from ConsoleMe, want 500: its clock is not behind ours (faketime not in effect)", got)
	}
	if got := direct(consoleMeClockBehind); got != http.StatusOK {
		t.Fatalf("a token valid from %v ago got %d from ConsoleMe, want 200: its clock is more than that behind", consoleMeClockBehind, got)
	}

	t.Run("cli-and-browser", func(t *testing.T) {
		e := newRealEnv(t, cm)
		b := newBrowser(t)
		c := e.generate(t, userAlice.Email, nil)
		e.login(t, b, userAlice, c.ChallengeURL)
		// The browser's session cookie, straight from the ACS.
		cookie := b.CookieValue(e.Base, e.cookieName())
		t.Run("browser-cookie", func(t *testing.T) {
			expectConsoleMeIdentity(t, plainSend, e.Base, cm, cookieHeader(e.cookieName(), cookie), userAlice)
		})
		p, f := e.openApproval(t, b, c.ChallengeURL, userAlice.Email, "127.0.0.1")
		e.approve(t, b, p, f)
		s := e.pollSuccess(t, c.PollingURL, nil, userAlice)
		t.Run("cli-token", func(t *testing.T) {
			expectConsoleMeIdentity(t, plainSend, e.Base, cm, cookieHeader(e.cookieName(), s.EncodedJWT), userAlice)
		})
	})

	t.Run("mtls", func(t *testing.T) {
		ca := newClientCA(t, "clock-skew client CA")
		p := freePorts(t, 3)
		httpPort, strictPort, mixedPort := p[0], p[1], p[2]
		startCaddy(t, mtlsCaddyfile(httpPort, strictPort, mixedPort, ca.writePEM(t, t.TempDir()), cm.Secret(), cm.Addr()))
		strict := fmt.Sprintf("https://localhost:%d", strictPort)
		// Not alice: ConsoleMe caches a user's groups for 60 s, and alice
		// has other groups above.
		user := idpUser{Email: "carol@example.com", Groups: []string{"aws-dev"}}
		issue := func(notBefore time.Time) tls.Certificate {
			return ca.issue(t, notBefore, notBefore.Add(24*time.Hour), func(c *x509.Certificate) {
				c.Subject = pkix.Name{CommonName: "Carol", OrganizationalUnit: user.Groups}
				c.EmailAddresses = []string{user.Email}
			})
		}
		old := issue(time.Now().Add(-time.Hour))
		if err := testbed.WaitFor(20*time.Second, 100*time.Millisecond, func() error {
			_, _, err := weepCall(mtlsClient(t, &old), http.MethodGet, strict+"/healthcheck", "")
			return err
		}); err != nil {
			t.Fatalf("%s not serving TLS: %v", strict, err)
		}
		send := func(cert tls.Certificate) sendFunc {
			c := mtlsClient(t, &cert)
			return func(t testing.TB, method, rawURL string, header http.Header) reply {
				t.Helper()
				code, body, err := weepCall(c, method, rawURL, "")
				if err != nil {
					t.Fatalf("%s %s: %v", method, rawURL, err)
				}
				return reply{Status: code, Body: body}
			}
		}
		t.Run("certificate-from-an-hour-ago", func(t *testing.T) {
			expectConsoleMeIdentity(t, send(old), strict, cm, nil, user)
		})
		t.Run("certificate-issued-now", func(t *testing.T) {
			// Short-lived certificates are issued right before use.
			expectConsoleMeIdentity(t, send(issue(time.Now().Truncate(time.Second))), strict, cm, nil, user)
		})
	})
}
