package consolemeauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/token"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// testCA signs client certificates for the mTLS tests.
type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

var (
	caOnce   sync.Once
	sharedCA testCA
)

// mtlsCA returns a CA shared by the tests of this file.
func mtlsCA(t *testing.T) testCA {
	t.Helper()
	caOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "mtls test CA"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			KeyUsage:              x509.KeyUsageCertSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		sharedCA = testCA{key: key, cert: cert}
	})
	if sharedCA.cert == nil {
		t.Fatal("no test CA")
	}
	return sharedCA
}

// leaf issues a client certificate; edit fills in the names.
func (ca testCA) leaf(t *testing.T, notBefore time.Time, edit func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    notBefore,
		NotAfter:     notBefore.Add(48 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// mtlsRequest is a request to the ConsoleMe API over a connection whose
// client certificate Caddy has verified, with a Caddy replacer in its context.
func mtlsRequest(ca testCA, leaf *x509.Certificate) *http.Request {
	r := request("GET", "/api/v2/get_roles?all=true", "192.0.2.7", nil)
	r.TLS = &tls.ConnectionState{
		PeerCertificates: []*x509.Certificate{leaf},
		VerifiedChains:   [][]*x509.Certificate{{leaf, ca.cert}},
	}
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
}

// mtlsHandler provisions a handler with the given mtls block and a fixed clock.
func mtlsHandler(t *testing.T, cfg *MTLSConfig, now time.Time, mutate func(*Handler)) *Handler {
	t.Helper()
	h := newTestHandler(t, func(h *Handler) {
		h.MTLS = cfg
		if mutate != nil {
			mutate(h)
		}
	})
	h.now = func() time.Time { return now }
	return h
}

// forwardedToken returns the one consoleme_auth cookie of the proxied request.
func forwardedToken(t *testing.T, r *http.Request) string {
	t.Helper()
	var vals []string
	for _, c := range r.Cookies() {
		if c.Name == "consoleme_auth" {
			vals = append(vals, c.Value)
		}
	}
	if len(vals) != 1 {
		t.Fatalf("proxied request has %d consoleme_auth cookies (Cookie: %q), want 1", len(vals), r.Header.Values("Cookie"))
	}
	return vals[0]
}

// claimsOf decodes a JWT's payload without verifying it.
func claimsOf(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// passMTLS sends the certificate through the handler, expects it to reach
// next, and returns the identity ConsoleMe would read from the cookie.
func passMTLS(t *testing.T, h *Handler, r *http.Request) *token.Identity {
	t.Helper()
	rec, passed := serve(t, h, r)
	if !passed {
		t.Fatalf("request not passed on: %d %s", rec.Code, rec.Body)
	}
	id, err := h.sessions.codec.Verify(forwardedToken(t, r), h.now())
	if err != nil {
		t.Fatalf("forwarded token does not verify: %v", err)
	}
	return id
}

func TestMTLSSANEmail(t *testing.T) {
	ca := mtlsCA(t)
	now := time.Now().Truncate(time.Second)
	notBefore := now.Add(-30 * 24 * time.Hour)
	h := mtlsHandler(t, &MTLSConfig{}, now, nil)
	leaf := ca.leaf(t, notBefore, func(c *x509.Certificate) {
		c.Subject = pkix.Name{CommonName: "ignored", OrganizationalUnit: []string{"eng", "admins"}}
		c.EmailAddresses = []string{"alice@example.com", "other@example.com"}
	})
	r := mtlsRequest(ca, leaf)
	id := passMTLS(t, h, r)
	if id.Email != "alice@example.com" || !slices.Equal(id.Groups, []string{"eng", "admins"}) {
		t.Errorf("identity %+v", id)
	}
	// iat is the certificate's NotBefore, so ConsoleMe measures its age;
	// nbf is not after now and exp is token_lifetime away.
	if !id.IssuedAt.Equal(notBefore) {
		t.Errorf("iat %v, want NotBefore %v", id.IssuedAt, notBefore)
	}
	c := claimsOf(t, forwardedToken(t, r))
	if nbf := int64(c["nbf"].(float64)); nbf > now.Unix() {
		t.Errorf("nbf %d after now %d", nbf, now.Unix())
	}
	if !id.Expires.Equal(now.Add(DefaultMTLSTokenLifetime)) {
		t.Errorf("exp %v, want now + %v", id.Expires, DefaultMTLSTokenLifetime)
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if u, _ := repl.GetString("http.auth.user.id"); u != "alice@example.com" {
		t.Errorf("{http.auth.user.id} = %q", u)
	}
}

func TestMTLSSources(t *testing.T) {
	ca := mtlsCA(t)
	now := time.Now()
	mustURL := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	for _, tc := range []struct {
		name   string
		cfg    MTLSConfig
		edit   func(*x509.Certificate)
		user   string
		groups []string
	}{
		{
			name: "cn with domain",
			cfg:  MTLSConfig{User: "cn", Domain: "example.com"},
			edit: func(c *x509.Certificate) {
				c.Subject = pkix.Name{CommonName: "bob", OrganizationalUnit: []string{"ops"}}
			},
			user: "bob@example.com", groups: []string{"ops"},
		},
		{
			name: "cn with @domain keeps an email",
			cfg:  MTLSConfig{User: "cn", Domain: "@example.com", Groups: "none"},
			edit: func(c *x509.Certificate) {
				c.Subject = pkix.Name{CommonName: "carol@corp.example", OrganizationalUnit: []string{"ops"}}
			},
			user: "carol@corp.example", groups: []string{},
		},
		{
			name: "spiffe uri, last path segment",
			cfg:  MTLSConfig{User: "san_uri", Domain: "example.com"},
			edit: func(c *x509.Certificate) { c.URIs = []*url.URL{mustURL("spiffe://example.org/user/dave")} },
			user: "dave@example.com", groups: []string{},
		},
		{
			name: "uri under a prefix",
			cfg:  MTLSConfig{User: "san_uri", URIPrefix: "spiffe://example.org/user/", Domain: "example.com"},
			edit: func(c *x509.Certificate) {
				c.URIs = []*url.URL{mustURL("spiffe://example.org/workload/x"), mustURL("spiffe://example.org/user/erin")}
			},
			user: "erin@example.com", groups: []string{},
		},
		{
			name: "mailto uri",
			cfg:  MTLSConfig{User: "san_uri"},
			edit: func(c *x509.Certificate) { c.URIs = []*url.URL{mustURL("mailto:frank@example.com")} },
			user: "frank@example.com", groups: []string{},
		},
		{
			name: "static groups",
			cfg: MTLSConfig{User: "cn", Domain: "example.com",
				StaticGroups: map[string][]string{"gina@example.com": {"g1", "g2"}, "other@example.com": {"g3"}}},
			edit: func(c *x509.Certificate) {
				c.Subject = pkix.Name{CommonName: "gina", OrganizationalUnit: []string{"ou"}}
			},
			user: "gina@example.com", groups: []string{"g1", "g2"},
		},
		{
			name: "static groups, user not listed",
			cfg:  MTLSConfig{Groups: "static", StaticGroups: map[string][]string{"x@example.com": {"g1"}}},
			edit: func(c *x509.Certificate) { c.EmailAddresses = []string{"hank@example.com"} },
			user: "hank@example.com", groups: []string{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			h := mtlsHandler(t, &cfg, now, nil)
			id := passMTLS(t, h, mtlsRequest(ca, ca.leaf(t, now.Add(-time.Hour), tc.edit)))
			if id.Email != tc.user || !slices.Equal(id.Groups, tc.groups) {
				t.Errorf("got %q %q, want %q %q", id.Email, id.Groups, tc.user, tc.groups)
			}
		})
	}
}

func TestMTLSUnmappable(t *testing.T) {
	ca := mtlsCA(t)
	now := time.Now()
	for _, tc := range []struct {
		name string
		cfg  MTLSConfig
		edit func(*x509.Certificate)
		want string
	}{
		{"no email SAN", MTLSConfig{}, func(c *x509.Certificate) { c.Subject.CommonName = "alice" }, "no email address"},
		{"no CN", MTLSConfig{User: "cn"}, func(c *x509.Certificate) { c.EmailAddresses = []string{"a@example.com"} }, "no common name"},
		{"no URI", MTLSConfig{User: "san_uri"}, nil, "no URI"},
		{"URI outside the prefix", MTLSConfig{User: "san_uri", URIPrefix: "spiffe://example.org/user/"},
			func(c *x509.Certificate) {
				c.URIs = []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/svc/x"}}
			}, "under spiffe"},
		{"URI without a path", MTLSConfig{User: "san_uri"},
			func(c *x509.Certificate) { c.URIs = []*url.URL{{Scheme: "spiffe", Host: "example.org"}} }, "no path"},
		{"CN too long", MTLSConfig{User: "cn"},
			func(c *x509.Certificate) { c.Subject.CommonName = strings.Repeat("x", 300) }, "longer than 256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			h := mtlsHandler(t, &cfg, now, nil)
			r := mtlsRequest(ca, ca.leaf(t, now.Add(-time.Hour), tc.edit))
			r.Header.Set("Cookie", "consoleme_auth=client-supplied")
			rec, passed := serve(t, h, r)
			if passed || rec.Code != http.StatusForbidden {
				t.Fatalf("got %d passed=%v, want 403", rec.Code, passed)
			}
			m := decode(t, rec)
			msg, _ := m["message"].(string)
			if m["code"] != "invalid_certificate" || !strings.Contains(msg, tc.want) {
				t.Errorf("reply %v, want code invalid_certificate and a message with %q", m, tc.want)
			}
		})
	}
}

func TestMTLSGroupPolicy(t *testing.T) {
	ca := mtlsCA(t)
	now := time.Now()
	h := mtlsHandler(t, &MTLSConfig{}, now, func(h *Handler) {
		h.GroupsFilter = []string{"aws-.*", "banned"}
		h.DeniedGroups = []string{"banned"}
	})
	ok := ca.leaf(t, now.Add(-time.Hour), func(c *x509.Certificate) {
		c.EmailAddresses = []string{"ivy@example.com"}
		c.Subject.OrganizationalUnit = []string{"aws-dev", "staff"}
	})
	if id := passMTLS(t, h, mtlsRequest(ca, ok)); !slices.Equal(id.Groups, []string{"aws-dev"}) {
		t.Errorf("groups %q, want groups_filter applied", id.Groups)
	}
	denied := ca.leaf(t, now.Add(-time.Hour), func(c *x509.Certificate) {
		c.EmailAddresses = []string{"jon@example.com"}
		c.Subject.OrganizationalUnit = []string{"aws-dev", "banned"}
	})
	rec, passed := serve(t, h, mtlsRequest(ca, denied))
	if passed || rec.Code != http.StatusForbidden {
		t.Fatalf("denied group: %d passed=%v", rec.Code, passed)
	}
	if m := decode(t, rec); m["code"] != "group_policy" {
		t.Errorf("reply %v", m)
	}
}

func TestMTLSReplacesClientCookie(t *testing.T) {
	ca := mtlsCA(t)
	now := time.Now()
	h := mtlsHandler(t, &MTLSConfig{}, now, nil)
	// A valid session for someone else must not survive either.
	forged := sessionCookie(t, h, "mallory@example.com", "admins")
	r := mtlsRequest(ca, ca.leaf(t, now.Add(-time.Hour), func(c *x509.Certificate) {
		c.EmailAddresses = []string{"kim@example.com"}
	}))
	r.Header.Add("Cookie", "a=1; consoleme_auth="+forged.Value+";b=\"x y\"")
	r.Header.Add("Cookie", " consoleme_auth = second ; c=3")
	id := passMTLS(t, h, r)
	if id.Email != "kim@example.com" {
		t.Errorf("user %q", id.Email)
	}
	lines := r.Header.Values("Cookie")
	if len(lines) != 1 {
		t.Fatalf("Cookie lines %q, want one", lines)
	}
	want := `a=1; b="x y"; c=3; consoleme_auth=`
	if !strings.HasPrefix(lines[0], want) {
		t.Errorf("Cookie %q, want the other cookies kept as %q...", lines[0], want)
	}
}

func TestMTLSUntouchedWithoutVerifiedChain(t *testing.T) {
	ca := mtlsCA(t)
	h := mtlsHandler(t, &MTLSConfig{}, time.Now(), nil)
	leaf := ca.leaf(t, time.Now().Add(-time.Hour), func(c *x509.Certificate) { c.EmailAddresses = []string{"l@example.com"} })
	for name, state := range map[string]*tls.ConnectionState{
		"plain http":                nil,
		"no certificate":            {},
		"unverified (request mode)": {PeerCertificates: []*x509.Certificate{leaf}},
	} {
		r := request("GET", "/api/v2/get_roles?all=true", "192.0.2.7", nil)
		r.TLS = state
		r.Header.Set("Cookie", "consoleme_auth=from-the-client; a=1")
		if rec, passed := serve(t, h, r); !passed {
			t.Errorf("%s: not passed on: %d", name, rec.Code)
		}
		if got := r.Header.Get("Cookie"); got != "consoleme_auth=from-the-client; a=1" {
			t.Errorf("%s: Cookie changed to %q", name, got)
		}
	}
	// The handler's own routes are never given a certificate session.
	r := mtlsRequest(ca, leaf)
	r.URL.Path = "/noauth/v1/challenge_generator/l@example.com"
	if rec, passed := serve(t, h, r); passed || rec.Code != 200 || r.Header.Get("Cookie") != "" {
		t.Errorf("generator with a certificate: %d passed=%v Cookie=%q", rec.Code, passed, r.Header.Get("Cookie"))
	}
}

func TestMTLSNotBeforeInTheFuture(t *testing.T) {
	ca := mtlsCA(t)
	now := time.Now().Truncate(time.Second)
	h := mtlsHandler(t, &MTLSConfig{}, now, nil)
	leaf := ca.leaf(t, now.Add(time.Minute), func(c *x509.Certificate) { c.EmailAddresses = []string{"m@example.com"} })
	if id := passMTLS(t, h, mtlsRequest(ca, leaf)); id.IssuedAt.After(now) {
		t.Errorf("iat %v after now %v", id.IssuedAt, now)
	}
}

func TestMTLSTokenLifetime(t *testing.T) {
	ca := mtlsCA(t)
	now := time.Now().Truncate(time.Second)
	h := mtlsHandler(t, &MTLSConfig{TokenLifetime: caddy.Duration(time.Minute)}, now, nil)
	leaf := ca.leaf(t, now.Add(-time.Hour), func(c *x509.Certificate) { c.EmailAddresses = []string{"n@example.com"} })
	if id := passMTLS(t, h, mtlsRequest(ca, leaf)); !id.Expires.Equal(now.Add(time.Minute)) {
		t.Errorf("exp %v, want now + 1m", id.Expires)
	}
}

func TestMTLSProvisionErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  MTLSConfig
		want string
	}{
		{MTLSConfig{User: "subject"}, `user: unknown source "subject"`},
		{MTLSConfig{Groups: "ldap"}, `groups: unknown source "ldap"`},
		{MTLSConfig{User: "cn", URIPrefix: "spiffe://x/"}, "uri_prefix: only applies to user san_uri"},
		{MTLSConfig{Domain: "a@b"}, "domain:"},
		{MTLSConfig{Domain: "@"}, "domain:"},
		{MTLSConfig{Groups: "static"}, "static_groups: maps no user"},
		{MTLSConfig{Groups: "ou", StaticGroups: map[string][]string{"a": {"g"}}}, "static_groups: only used with groups static"},
		{MTLSConfig{StaticGroups: map[string][]string{"a\nb": {"g"}}}, "static_groups:"},
		{MTLSConfig{StaticGroups: map[string][]string{"a": {"g", ""}}}, `static_groups: "a": empty group name`},
		{MTLSConfig{TokenLifetime: -1}, "token_lifetime: must be positive"},
	} {
		cfg := tc.cfg
		h := &Handler{JWTSecret: testSecret, MTLS: &cfg}
		ctx, cancel := newCtx()
		err := h.Provision(ctx)
		cancel()
		_ = h.Cleanup()
		if err == nil || !strings.Contains(err.Error(), "mtls: "+tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestMTLSCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`consoleme_auth {
		jwt_secret x
		mtls {
			user           san_uri
			uri_prefix     spiffe://example.org/user/
			domain         example.com
			groups         static
			static_groups  alice@example.com aws-admins aws-dev
			static_groups  bob@example.com aws-dev
			static_groups  alice@example.com aws-audit
			token_lifetime 2m
		}
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := &MTLSConfig{
		User: "san_uri", URIPrefix: "spiffe://example.org/user/", Domain: "example.com", Groups: "static",
		StaticGroups: map[string][]string{
			"alice@example.com": {"aws-admins", "aws-dev", "aws-audit"},
			"bob@example.com":   {"aws-dev"},
		},
		TokenLifetime: caddy.Duration(2 * time.Minute),
	}
	got, _ := json.Marshal(h.MTLS)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Errorf("got  %s\nwant %s", got, exp)
	}

	var empty Handler
	if err := empty.UnmarshalCaddyfile(caddyfile.NewTestDispenser("consoleme_auth {\nmtls\n}")); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(empty); string(b) != `{"mtls":{}}` {
		t.Errorf("bare mtls gives %s", b)
	}

	for _, tc := range []struct{ src, want string }{
		{"mtls x", "wrong argument count"},
		{"mtls {\nbogus 1\n}", "mtls: unrecognized subdirective 'bogus'"},
		{"mtls {\nuser\n}", "user: missing value"},
		{"mtls {\nuser cn san_email\n}", "user: too many arguments"},
		{"mtls {\nuser cn\nuser cn\n}", "mtls: user already specified"},
		{"mtls {\nstatic_groups alice\n}", "static_groups: want <user> <group...>"},
		{"mtls {\nstatic_groups \"\" g\n}", "static_groups: empty user"},
		{"mtls {\ntoken_lifetime 0s\n}", "token_lifetime: must be positive"},
		{"mtls {\ntoken_lifetime soon\n}", "token_lifetime"},
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("consoleme_auth {\n" + tc.src + "\n}"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.want)
		}
	}
}

func TestReplaceCookie(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, "consoleme_auth=T"},
		{[]string{""}, "consoleme_auth=T"},
		{[]string{"consoleme_auth=old"}, "consoleme_auth=T"},
		{[]string{"consoleme_auth"}, "consoleme_auth=T"},
		{[]string{"consoleme_auth_x=1; xconsoleme_auth=2"}, "consoleme_auth_x=1; xconsoleme_auth=2; consoleme_auth=T"},
		{[]string{"a=1;;  ; b=2=3"}, "a=1; b=2=3; consoleme_auth=T"},
	} {
		hdr := http.Header{}
		for _, l := range tc.in {
			hdr.Add("Cookie", l)
		}
		replaceCookie(hdr, "consoleme_auth", "T")
		if got := hdr.Values("Cookie"); len(got) != 1 || got[0] != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// With web_login on, a certificate session is neither sent to the IdP (even
// when the certificate is older than max_session_age) nor renewed into a
// browser cookie that would outlive the certificate.
func TestMTLSWithWebLogin(t *testing.T) {
	ca := mtlsCA(t)
	dir := t.TempDir()
	sp := samltest.NewKeyPair(t, dir, "sp")
	md := samltest.NewIdP(t, dir, "idp").MetadataFile(t, dir)
	now := time.Now()
	h := mtlsHandler(t, &MTLSConfig{}, now, func(h *Handler) {
		h.SAML = &SAMLConfig{IDPMetadataFile: md, SPCert: sp.CertFile, SPKey: sp.KeyFile}
		h.WebLogin = &WebLoginConfig{}
	})
	leaf := ca.leaf(t, now.Add(-30*24*time.Hour), func(c *x509.Certificate) { c.EmailAddresses = []string{"o@example.com"} })
	r := mtlsRequest(ca, leaf)
	r.URL.Path = "/policies"
	rec, passed := serve(t, h, r)
	if !passed || rec.Header().Get("Set-Cookie") != "" {
		t.Fatalf("got %d passed=%v Set-Cookie=%q, want the request passed on and no cookie handed out",
			rec.Code, passed, rec.Header().Get("Set-Cookie"))
	}
	if id, err := h.sessions.codec.Verify(forwardedToken(t, r), now); err != nil || id.Email != "o@example.com" {
		t.Errorf("forwarded identity %+v, %v", id, err)
	}
	// Without a certificate the same page still needs the web login.
	if _, passed := serve(t, h, request("GET", "/policies", "192.0.2.7", nil)); passed {
		t.Error("a request without a certificate skipped web_login")
	}
}
