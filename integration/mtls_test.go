package integration

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/token"
	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
	"github.com/golang-jwt/jwt/v5"
)

// clientCA is the test bed's client-certificate CA with test helpers.
type clientCA struct{ testbed.CA }

// newClientCA makes a CA valid from a day ago for ten years.
func newClientCA(t *testing.T, name string) clientCA {
	t.Helper()
	ca, err := testbed.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return clientCA{ca}
}

// writePEM writes the CA certificate as a PEM file and returns its path.
func (ca clientCA) writePEM(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "client-ca.pem")
	if err := os.WriteFile(p, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue makes a client certificate valid from notBefore to notAfter with the
// names edit sets. NotBefore is whole seconds, as in the certificate.
func (ca clientCA) issue(t *testing.T, notBefore, notAfter time.Time, edit func(*x509.Certificate)) tls.Certificate {
	t.Helper()
	cert, err := ca.Issue(notBefore, notAfter, edit)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// mtlsClient is the test bed's HTTPS client presenting cert (none when nil)
// and reaching every host name at 127.0.0.1, where the test's Caddy listens.
// It does not check Caddy's certificate, which comes from Caddy's internal
// CA.
func mtlsClient(t *testing.T, cert *tls.Certificate) *testbed.Client {
	t.Helper()
	c := testbed.NewClient(testbed.ClientOptions{InsecureTLS: true, Cert: cert, Loopback: true, Timeout: 10 * time.Second})
	t.Cleanup(c.Close)
	return c
}

// weepCall sends a request as Weep's API client does (PROTOCOL.md section
// 8) and returns the status and body, or the transport error.
func weepCall(c *testbed.Client, method, rawURL, body string, cookies ...string) (int, []byte, error) {
	h := http.Header{
		"User-Agent":   {"weep/test Go-http-client/1.1"},
		"Content-Type": {"application/json"},
	}
	if len(cookies) > 0 {
		h["Cookie"] = cookies
	}
	r, err := c.Do(method, rawURL, h, body)
	return r.Status, r.Body, err
}

// mtlsCaddyfile is two sites in front of upstream: "strict" requires a
// client certificate from caPath and maps its SAN email and OU values;
// "mixed" verifies one if given and maps its CN plus a domain to a user
// with static groups. The sites are named localhost so that their TLS
// connection policies (matched by SNI) apply; clients dial 127.0.0.1.
func mtlsCaddyfile(httpPort, strictPort, mixedPort int, caPath, secret, upstream string) testbed.Caddyfile {
	return testbed.Caddyfile{
		Global: testbed.Global{SkipInstallTrust: true, HTTPPort: httpPort, HTTPSPort: strictPort},
		Sites: []testbed.Site{{
			Address: fmt.Sprintf("https://localhost:%d", strictPort),
			TLS:     &testbed.TLS{Internal: true, ClientAuthMode: "require_and_verify", ClientTrustPool: caPath},
			Auth: &testbed.Module{JWTSecret: secret, MTLS: &testbed.MTLS{
				User: "san_email", Groups: "ou",
			}},
			Upstreams: []string{upstream},
		}, {
			Address: fmt.Sprintf("https://localhost:%d", mixedPort),
			TLS:     &testbed.TLS{Internal: true, ClientAuthMode: "verify_if_given", ClientTrustPool: caPath},
			Auth: &testbed.Module{JWTSecret: secret, MTLS: &testbed.MTLS{
				User: "cn", Domain: "example.com",
				StaticGroups:  map[string][]string{"carol@example.com": {"aws-dev"}},
				TokenLifetime: "1m",
			}},
			Upstreams: []string{upstream},
		}},
	}
}

// TestMTLSWeep runs Weep's mTLS calls (authentication_method: mtls) through
// Caddy with client_auth to the real ConsoleMe, which only understands its
// consoleme_auth cookie. The recording proxy in front of ConsoleMe shows the
// cookie Caddy put on each request.
func TestMTLSWeep(t *testing.T) {
	t.Parallel()
	caddyBinary(t)
	cm := startRealConsoleMe(t)
	secret := cm.Secret()
	dir := t.TempDir()
	ca := newClientCA(t, "consoleme-auth test client CA")
	// Same name as the trusted CA, different key: only a real signature
	// check tells them apart.
	unknownCA := newClientCA(t, "consoleme-auth test client CA")

	now := time.Now()
	day := 24 * time.Hour
	aliceNotBefore := now.Add(-10 * day).Truncate(time.Second)
	alice := ca.issue(t, aliceNotBefore, now.Add(30*day), func(c *x509.Certificate) {
		c.Subject = pkix.Name{CommonName: "Alice", OrganizationalUnit: []string{"aws-dev", "aws-admins"}}
		c.EmailAddresses = []string{"alice@example.com"}
	})
	aliceMTLS := idpUser{Email: "alice@example.com", Groups: []string{"aws-dev", "aws-admins"}}
	carol := ca.issue(t, now.Add(-time.Hour), now.Add(day), func(c *x509.Certificate) {
		c.Subject = pkix.Name{CommonName: "carol", OrganizationalUnit: []string{"ignored"}}
	})
	veteran := ca.issue(t, now.Add(-400*day), now.Add(day), func(c *x509.Certificate) {
		c.EmailAddresses = []string{"veteran@example.com"}
		c.Subject.OrganizationalUnit = []string{"aws-dev"}
	})
	expired := ca.issue(t, now.Add(-30*day), now.Add(-time.Hour), func(c *x509.Certificate) {
		c.EmailAddresses = []string{"expired@example.com"}
	})
	stranger := unknownCA.issue(t, now.Add(-time.Hour), now.Add(day), func(c *x509.Certificate) {
		c.EmailAddresses = []string{"alice@example.com"}
		c.Subject.OrganizationalUnit = []string{"aws-admins"}
	})

	p := freePorts(t, 3)
	httpPort, strictPort, mixedPort := p[0], p[1], p[2]
	startCaddy(t, mtlsCaddyfile(httpPort, strictPort, mixedPort, ca.writePEM(t, dir), secret, cm.Addr()))
	strict := fmt.Sprintf("https://localhost:%d", strictPort)
	mixed := fmt.Sprintf("https://localhost:%d", mixedPort)

	// Caddy issues its own certificate in the background; wait until both
	// sites complete a handshake.
	for _, base := range []string{strict, mixed} {
		err := testbed.WaitFor(20*time.Second, 100*time.Millisecond, func() error {
			_, _, err := weepCall(mtlsClient(t, &alice), http.MethodGet, base+"/healthcheck", "")
			return err
		})
		if err != nil {
			t.Fatalf("%s not serving TLS: %v", base, err)
		}
	}

	// sendWith makes Weep's calls with a client certificate.
	sendWith := func(cert *tls.Certificate) sendFunc {
		c := mtlsClient(t, cert)
		return func(t testing.TB, method, rawURL string, header http.Header) reply {
			t.Helper()
			var cookies []string
			if header != nil {
				cookies = header["Cookie"]
			}
			code, body, err := weepCall(c, method, rawURL, "", cookies...)
			if err != nil {
				t.Fatalf("%s %s: %v", method, rawURL, err)
			}
			return reply{Status: code, Body: body}
		}
	}

	// lastToken is the claims of the session cookie on the last request
	// ConsoleMe received for path, checked with the secret, and the other
	// cookies that request carried.
	lastToken := func(t *testing.T, path string) (claims map[string]any, others []string) {
		t.Helper()
		reqs := cm.Requests()
		for i := len(reqs) - 1; i >= 0; i-- {
			if reqs[i].Path != path {
				continue
			}
			var auth []string
			for _, ck := range (&http.Request{Header: reqs[i].Header}).Cookies() {
				if ck.Name == "consoleme_auth" {
					auth = append(auth, ck.Value)
				} else {
					others = append(others, ck.Name+"="+ck.Value)
				}
			}
			if len(auth) != 1 {
				t.Fatalf("ConsoleMe got %d consoleme_auth cookies on %s, want 1: %q", len(auth), path, auth)
			}
			return verifiedClaims(t, secret, auth[0]), others
		}
		t.Fatalf("ConsoleMe received no request for %s", path)
		return nil, nil
	}

	t.Run("san email and OU groups reach ConsoleMe, iat is NotBefore", func(t *testing.T) {
		expectConsoleMeIdentity(t, sendWith(&alice), strict, cm, nil, aliceMTLS)
		claims, _ := lastToken(t, "/api/v2/user_profile")
		if iat, _ := jsonInteger(claims["iat"]); iat != aliceNotBefore.Unix() {
			t.Errorf("iat %v, want the certificate's NotBefore %d", claims["iat"], aliceNotBefore.Unix())
		}
		// Weep's list (v2 get_roles) names the same roles.
		r := sendWith(&alice)(t, http.MethodGet, strict+"/api/v2/get_roles?all=true", nil)
		var roles struct {
			Data struct {
				Roles []struct {
					Arn string `json:"arn"`
				} `json:"roles"`
			} `json:"data"`
		}
		if err := json.Unmarshal(r.Body, &roles); err != nil || r.Status != http.StatusOK {
			t.Fatalf("v2 get_roles: %s (%v)", r, err)
		}
		var arns []string
		for _, x := range roles.Data.Roles {
			arns = append(arns, x.Arn)
		}
		if want := cm.CM.Mapping.RolesFor(aliceMTLS.Email, aliceMTLS.Groups, true); !slices.Equal(sortedCopy(arns), want) {
			t.Errorf("v2 get_roles: %v, want %v", arns, want)
		}
	})

	t.Run("a client supplied consoleme_auth cookie is replaced", func(t *testing.T) {
		m, err := token.NewCodec(secret, "email", "groups", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		forged, _, err := m.Mint("mallory@example.com", []string{"aws-root"}, time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		send := sendWith(&alice)
		r := send(t, http.MethodGet, strict+"/api/v2/user_profile", http.Header{"Cookie": {
			"theme=dark; consoleme_auth=" + forged, "consoleme_auth=second; lang=en"}})
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"user": "alice@example.com"`) {
			t.Errorf("user_profile with a forged cookie: %s, want ConsoleMe naming alice", excerpt(r.String(), 300))
		}
		claims, others := lastToken(t, "/api/v2/user_profile")
		if !slices.Equal(others, []string{"theme=dark", "lang=en"}) {
			t.Errorf("other cookies %q, want them kept", others)
		}
		if claims["email"] != "alice@example.com" {
			t.Errorf("forwarded cookie is for %v, want alice", claims["email"])
		}
		// ConsoleMe gives alice her own roles, not mallory's or aws-root's.
		expectConsoleMeIdentity(t, send, strict, cm, cookieHeader("consoleme_auth", forged), aliceMTLS)
	})

	t.Run("an old certificate meets ConsoleMe's maximum certificate age", func(t *testing.T) {
		code, body, err := weepCall(mtlsClient(t, &veteran), http.MethodPost, strict+"/api/v1/get_credentials",
			`{"requested_role":"aws-dev"}`)
		if err != nil || code != http.StatusForbidden || !bytes.Contains(body, []byte(`"905"`)) {
			t.Errorf("got %d %s %v, want ConsoleMe's 403 code 905", code, body, err)
		}
	})

	t.Run("a certificate without a mappable user gets 403 JSON", func(t *testing.T) {
		before := len(cm.Requests())
		code, body, err := weepCall(mtlsClient(t, &carol), http.MethodGet, strict+"/api/v2/get_roles?all=true", "")
		if err != nil || code != http.StatusForbidden {
			t.Fatalf("got %d %s %v, want 403", code, body, err)
		}
		var reply struct{ Code, Message string }
		if err := json.Unmarshal(body, &reply); err != nil || reply.Code != "invalid_certificate" ||
			!strings.Contains(reply.Message, "email address") {
			t.Errorf("reply %s (%v), want Weep's {code, message} naming the missing email", body, err)
		}
		if n := len(cm.Requests()); n != before {
			t.Errorf("the request reached ConsoleMe")
		}
	})

	t.Run("Caddy refuses expired, unknown-CA and missing certificates", func(t *testing.T) {
		before := len(cm.Requests())
		for _, tc := range []struct {
			site, name string
			cert       *tls.Certificate
			alert      string // the TLS alert Caddy answers with
		}{
			{strict, "expired", &expired, "expired certificate"},
			{strict, "unknown CA", &stranger, "unknown certificate authority"},
			{strict, "none", nil, "certificate required"},
			{mixed, "expired", &expired, "expired certificate"},
			{mixed, "unknown CA", &stranger, "unknown certificate authority"},
		} {
			code, body, err := weepCall(mtlsClient(t, tc.cert), http.MethodGet, tc.site+"/api/v2/get_roles?all=true", "")
			if err == nil || !strings.Contains(err.Error(), "tls: "+tc.alert) {
				t.Errorf("%s, %s: got %d %s (%v), want the TLS alert %q", tc.site, tc.name, code, body, err, tc.alert)
			}
		}
		if n := len(cm.Requests()); n != before {
			t.Errorf("ConsoleMe got %d requests", n-before)
		}
	})

	t.Run("CN with domain and static groups", func(t *testing.T) {
		carolUser := idpUser{Email: "carol@example.com", Groups: []string{"aws-dev"}}
		expectConsoleMeIdentity(t, sendWith(&carol), mixed, cm, nil, carolUser)
		claims, _ := lastToken(t, "/api/v2/user_profile")
		iat, _ := jsonInteger(claims["iat"])
		exp, _ := jsonInteger(claims["exp"])
		if iat != carol.Leaf.NotBefore.Unix() || exp > time.Now().Add(time.Minute).Unix()+1 {
			t.Errorf("iat %d exp %d, want NotBefore %d and token_lifetime 1m", iat, exp, carol.Leaf.NotBefore.Unix())
		}
	})

	t.Run("requests without a certificate are untouched", func(t *testing.T) {
		c := mtlsClient(t, nil)
		code, body, err := weepCall(c, http.MethodGet, mixed+"/healthcheck", "", "consoleme_auth=from-the-client; a=1")
		if err != nil || code != http.StatusOK {
			t.Fatalf("healthcheck: %d %s %v", code, body, err)
		}
		reqs := cm.Requests()
		if last := reqs[len(reqs)-1]; last.Path != "/healthcheck" ||
			strings.Join(last.Header["Cookie"], "|") != "consoleme_auth=from-the-client; a=1" {
			t.Errorf("Cookie reached ConsoleMe as %q", last.Header["Cookie"])
		}
		code, body, err = weepCall(c, http.MethodGet, mixed+"/api/v2/get_roles?all=true", "")
		var problem struct{ Title string }
		if err != nil || code != http.StatusForbidden || json.Unmarshal(body, &problem) != nil || problem.Title != "Forbidden" {
			t.Errorf("get_roles without cookie: %d %s %v, want ConsoleMe's own 403", code, body, err)
		}
		// The challenge flow works side by side.
		code, body, err = weepCall(c, http.MethodGet, mixed+"/noauth/v1/challenge_generator/alice@example.com", "")
		var ch weepChallenge
		if err != nil || code != http.StatusOK || json.Unmarshal(body, &ch) != nil || ch.PollingUrl == "" {
			t.Errorf("generator: %d %s %v", code, body, err)
		}
	})
}

// verifiedClaims checks a token's HS256 signature with secret and returns
// its claims, numbers as json.Number.
func verifiedClaims(t testing.TB, secret, tok string) map[string]any {
	t.Helper()
	claims := jwt.MapClaims{}
	p := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithJSONNumber(), jwt.WithoutClaimsValidation())
	if _, err := p.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte(secret), nil }); err != nil {
		t.Fatalf("the session cookie does not verify with the secret: %v", err)
	}
	return claims
}
