package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth"
)

// The tests in this file check the SAML service provider against
// SimpleSAMLphp configured for encryption and signed requests. The
// samlauth tests drive samlauth directly: an httptest server is the SP,
// SimpleSAMLphp the IdP, a Go cookie jar the browser. They need PHP and
// SimpleSAMLphp but no Caddy build. TestRealWorldSAMLInterop runs the same
// set-ups through Caddy and Chromium.

// interopSP is a minimal SP around samlauth: /login starts a login, /saml/acs
// verifies the response and answers "OK <email>" or 403 with the refusal.
type interopSP struct {
	*httptest.Server
	P *samlauth.Provider

	mu      sync.Mutex
	pending map[string]string // relay state → request ID
	lastRaw []byte            // the last SAMLResponse, decoded
	lastReq string            // its request ID
}

// startInteropSP runs an SP trusting the metadata at mdURL (or in mdFile
// when mdURL is empty), with edit applied to its Config, and waits until
// it has loaded the IdP metadata.
func startInteropSP(t testing.TB, mdURL, mdFile string, edit func(*samlauth.Config)) *interopSP {
	t.Helper()
	certPath, keyPath := sharedKeyPair(t, "module-sp").writeFiles(t, t.TempDir())
	cfg := samlauth.Config{IDPMetadataURL: mdURL, IDPMetadataFile: mdFile, SPCert: certPath, SPKey: keyPath,
		EmailAttribute: "email", GroupsAttribute: "groups"}
	if edit != nil {
		edit(&cfg)
	}
	p, err := samlauth.New(cfg, nil)
	if err != nil {
		t.Fatalf("samlauth.New: %v", err)
	}
	sp := runInteropSP(t, p)
	sp.waitLoaded(t)
	return sp
}

// runInteropSP serves p (whose metadata loading starts now) at a fresh
// loopback URL until the test ends.
func runInteropSP(t testing.TB, p *samlauth.Provider) *interopSP {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go p.Run(ctx)
	sp := &interopSP{P: p, pending: map[string]string{}}
	sp.Server = httptest.NewServer(http.HandlerFunc(sp.serve))
	t.Cleanup(sp.Close)
	return sp
}

// waitLoaded waits until the SP has loaded the IdP metadata.
func (sp *interopSP) waitLoaded(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !sp.P.Loaded() {
		if time.Now().After(deadline) {
			t.Fatal("the SP did not load the IdP metadata within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (sp *interopSP) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/login":
		relay := rand.Text()
		red, err := sp.P.AuthnRequest(sp.URL, relay)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		sp.mu.Lock()
		sp.pending[relay] = red.RequestID
		sp.mu.Unlock()
		if red.Form == nil {
			http.Redirect(w, r, red.URL, http.StatusFound)
			return
		}
		fmt.Fprintf(w, `<form method="post" action="%s">`, html.EscapeString(red.URL))
		for k, v := range red.Form {
			fmt.Fprintf(w, `<input type="hidden" name="%s" value="%s">`, k, html.EscapeString(v))
		}
		fmt.Fprint(w, `</form>`)
	case "/saml/acs":
		_ = r.ParseForm()
		raw, _ := samlauth.DecodeBase64Loose(r.PostForm.Get("SAMLResponse"))
		sp.mu.Lock()
		reqID := sp.pending[r.PostForm.Get("RelayState")]
		delete(sp.pending, r.PostForm.Get("RelayState"))
		sp.lastRaw, sp.lastReq = raw, reqID
		sp.mu.Unlock()
		id, err := sp.verify(raw, reqID)
		if err != nil {
			http.Error(w, "REFUSED "+err.Error(), http.StatusForbidden)
			return
		}
		fmt.Fprintf(w, "OK %s", id.Email)
	default:
		http.NotFound(w, r)
	}
}

// verify runs Verify with a fresh replay guard (to verify a response again).
func (sp *interopSP) verify(raw []byte, requestID string) (*samlauth.Identity, error) {
	return sp.P.Verify(context.Background(), raw, sp.URL, requestID, &onceGuard{}, time.Now())
}

// onceGuard is an in-memory samlauth.ReplayGuard.
type onceGuard struct{ seen sync.Map }

func (g *onceGuard) MarkOnce(_ context.Context, key string, _, _ time.Time) (bool, error) {
	_, loaded := g.seen.LoadOrStore(key, true)
	return !loaded, nil
}

// sspLoginDirect logs user in at the SP through SimpleSAMLphp with a Go
// cookie jar: it follows redirects, submits the SP's and IdP's forms and
// fills in SimpleSAMLphp's login form, and returns the SP's answer at the
// ACS, or the page where the journey stopped (an IdP error).
func sspLoginDirect(t testing.TB, sp *interopSP, user idpUser, start string) *page {
	t.Helper()
	b := newBrowser(t)
	p := b.Get(start)
	for hop := 0; hop < 12; hop++ {
		if p.URL.Path == "/saml/acs" && strings.HasPrefix(p.URL.String(), sp.URL) {
			return p
		}
		if isRedirect(p.Status) {
			p = b.Get(p.Location().String())
			continue
		}
		if f, ok := formWithField(p, "password"); ok {
			v := f.Values("")
			v.Set("username", user.Name)
			v.Set("password", user.Password)
			action, _ := p.URL.Parse(f.Action)
			p = b.PostForm(action.String(), testbed.Origin(p.URL), v)
			continue
		}
		f, ok := formWithField(p, "SAMLResponse")
		if !ok {
			f, ok = formWithField(p, "SAMLRequest")
		}
		if !ok {
			return p
		}
		p = b.Submit(p, f, "")
	}
	t.Fatalf("login did not reach the ACS in 12 hops; last:\n%s", p)
	return nil
}

// trustInteropSP registers sp at ssp from its metadata, with options.
func trustInteropSP(t testing.TB, ssp *simpleSAMLphp, sp *interopSP, options map[string]any) {
	t.Helper()
	b, err := sp.P.Metadata(sp.URL)
	if err != nil {
		t.Fatal(err)
	}
	entry := spFromMetadata(t, b)
	if bytes.Contains(b, []byte(`AuthnRequestsSigned="true"`)) && entry.SigningCert == "" {
		t.Fatalf("the SP signs its requests but its metadata has no signing certificate:\n%s", b)
	}
	if entry.SigningCert == "" {
		// As an administrator would, so that only the missing signature
		// can make the IdP refuse an unsigned request.
		entry.SigningCert = entry.EncryptionCert
	}
	entry.Options = options
	ssp.trustSPs(t, entry)
}

// expectUnsignedRefused checks that SimpleSAMLphp refused a request for
// want of a signature (it answers 200 with an error page).
func expectUnsignedRefused(t testing.TB, p *page, ssp *simpleSAMLphp) {
	t.Helper()
	if p.URL.Path == "/saml/acs" {
		t.Fatalf("SimpleSAMLphp answered an unsigned request; the test proves nothing:\n%s", p)
	}
	if !strings.Contains(ssp.Log(), "no signature found on message") {
		t.Errorf("SimpleSAMLphp refused the unsigned request for another reason:\n%s", tail(ssp.Log(), 3000))
	}
}

// expectOK checks that the ACS accepted the login of user.
func expectOK(t testing.TB, p *page, ssp *simpleSAMLphp, user idpUser) {
	t.Helper()
	if p.Status != http.StatusOK || string(p.Body) != "OK "+user.Email {
		t.Fatalf("login not accepted:\n%s\nIdP log (tail):\n%s", p, tail(ssp.Log(), 4000))
	}
}

func tail(s string, n int) string { return s[max(0, len(s)-n):] }

// TestSAMLInteropSimpleSAMLphp logs in through SimpleSAMLphp with an
// encrypted assertion, with signed requests required (said in the IdP
// metadata, or not said, with sign_authn_requests), by the HTTP-Redirect
// and the HTTP-POST binding.
func TestSAMLInteropSimpleSAMLphp(t *testing.T) {
	t.Run("encrypted-assertion", func(t *testing.T) {
		ssp := startSimpleSAMLphp(t, sspConfig{Users: []idpUser{userAlice}})
		sp := startInteropSP(t, ssp.MetadataURL, "", nil)
		for _, signing := range []struct{ response, assertion bool }{{true, true}, {true, false}, {false, true}} {
			trustInteropSP(t, ssp, sp, map[string]any{"assertion.encryption": true,
				"saml20.sign.response": signing.response, "saml20.sign.assertion": signing.assertion})
			expectOK(t, sspLoginDirect(t, sp, userAlice, sp.URL+"/login"), ssp, userAlice)
			if !bytes.Contains(sp.lastRaw, []byte("EncryptedAssertion")) || !bytes.Contains(sp.lastRaw, []byte("#aes128-cbc")) {
				t.Errorf("the IdP did not send an aes128-cbc EncryptedAssertion; the test proves nothing")
			}
		}
	})

	t.Run("signed-requests-wanted", func(t *testing.T) {
		ssp := startSimpleSAMLphp(t, sspConfig{Users: []idpUser{userAlice},
			Hosted: map[string]any{"validate.authnrequest": true}})
		if md := ssp.Metadata(t); !bytes.Contains(md, []byte(`WantAuthnRequestsSigned="true"`)) {
			t.Fatalf("the IdP metadata does not want signed requests:\n%s", md)
		}
		sp := startInteropSP(t, ssp.MetadataURL, "", nil)
		trustInteropSP(t, ssp, sp, map[string]any{"assertion.encryption": true})
		expectOK(t, sspLoginDirect(t, sp, userAlice, sp.URL+"/login"), ssp, userAlice)

		// Control: the same request without its signature is refused, so
		// the IdP did check it.
		red, err := sp.P.AuthnRequest(sp.URL, "control")
		if err != nil || !strings.Contains(red.URL, "&Signature=") {
			t.Fatalf("unsigned request: %v %q", err, red.URL)
		}
		unsigned := regexp.MustCompile(`&SigAlg=[^&]*&Signature=[^&]*`).ReplaceAllString(red.URL, "")
		expectUnsignedRefused(t, sspLoginDirect(t, sp, userAlice, unsigned), ssp)

		// The HTTP-POST binding: metadata without the Redirect endpoint.
		// SimpleSAMLphp lists only its Redirect endpoint, which takes POST too.
		md := regexp.MustCompile(`(<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:)HTTP-Redirect`).
			ReplaceAll(ssp.Metadata(t), []byte("${1}HTTP-POST"))
		file := filepath.Join(t.TempDir(), "idp.xml")
		if err := os.WriteFile(file, md, 0o600); err != nil {
			t.Fatal(err)
		}
		post := startInteropSP(t, "", file, nil)
		trustInteropSP(t, ssp, post, map[string]any{"assertion.encryption": true})
		if red, err := post.P.AuthnRequest(post.URL, "x"); err != nil || red.Form == nil {
			t.Fatalf("want the HTTP-POST binding: %+v %v", red, err)
		}
		expectOK(t, sspLoginDirect(t, post, userAlice, post.URL+"/login"), ssp, userAlice)
	})

	t.Run("signed-requests-required-unsaid", func(t *testing.T) {
		ssp := startSimpleSAMLphp(t, sspConfig{Users: []idpUser{userAlice}})
		opts := map[string]any{"validate.authnrequest": true, "assertion.encryption": true}
		unsigned := startInteropSP(t, ssp.MetadataURL, "", nil)
		trustInteropSP(t, ssp, unsigned, opts)
		expectUnsignedRefused(t, sspLoginDirect(t, unsigned, userAlice, unsigned.URL+"/login"), ssp)
		sp := startInteropSP(t, ssp.MetadataURL, "", func(c *samlauth.Config) { c.SignAuthnRequests = true })
		trustInteropSP(t, ssp, sp, opts)
		expectOK(t, sspLoginDirect(t, sp, userAlice, sp.URL+"/login"), ssp, userAlice)
	})
}

// TestSAMLInteropFederation logs in at SimpleSAMLphp picked out of a
// federation aggregate by idp_entity_id, and shows the error without it.
func TestSAMLInteropFederation(t *testing.T) {
	ssp := startSimpleSAMLphp(t, sspConfig{Users: []idpUser{userAlice}})
	md := regexp.MustCompile(`^<\?xml[^>]*\?>`).ReplaceAll(bytes.TrimSpace(ssp.Metadata(t)), nil)
	other := bytes.ReplaceAll(md, []byte(ssp.EntityID), []byte("https://idp.other.example/idp"))
	var agg bytes.Buffer
	agg.WriteString(`<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" Name="urn:example:federation">` +
		`<md:EntitiesDescriptor Name="members">`)
	agg.Write(other)
	agg.WriteString(`</md:EntitiesDescriptor>`)
	agg.Write(md)
	agg.WriteString(`</md:EntitiesDescriptor>`)
	file := filepath.Join(t.TempDir(), "federation.xml")
	writeFile(t, file, agg.Bytes())

	sp := startInteropSP(t, "", file, func(c *samlauth.Config) { c.IDPEntityID = ssp.EntityID })
	trustInteropSP(t, ssp, sp, map[string]any{"assertion.encryption": true})
	expectOK(t, sspLoginDirect(t, sp, userAlice, sp.URL+"/login"), ssp, userAlice)

	certPath, keyPath := sharedKeyPair(t, "module-sp").writeFiles(t, t.TempDir())
	_, err := samlauth.New(samlauth.Config{IDPMetadataFile: file, SPCert: certPath, SPKey: keyPath}, nil)
	if err == nil || !strings.Contains(err.Error(), "idp_entity_id: required") {
		t.Errorf("aggregate without idp_entity_id: %v", err)
	}
}

// xmlsecEncrypt replaces the Assertion of a SAML response with an
// EncryptedAssertion made by xmlseclibs, SimpleSAMLphp's XML encryption
// library, with the data and key transport algorithms named.
const xmlsecEncrypt = `<?php
require '/usr/share/simplesamlphp/vendor/autoload.php';
use RobRichards\XMLSecLibs\XMLSecEnc;
use RobRichards\XMLSecLibs\XMLSecurityKey;
[, $in, $cert, $dataAlg, $keyAlg] = $argv;
$doc = new DOMDocument();
$doc->loadXML(file_get_contents($in));
$xp = new DOMXPath($doc);
$xp->registerNamespace('saml', 'urn:oasis:names:tc:SAML:2.0:assertion');
$a = $xp->query('/*/saml:Assertion')->item(0);
$enc = new XMLSecEnc();
$enc->setNode($a);
$enc->type = XMLSecEnc::Element;
$sym = new XMLSecurityKey($dataAlg);
$sym->generateSessionKey();
$rsa = new XMLSecurityKey($keyAlg, ['type' => 'public']);
$rsa->loadKey(file_get_contents($cert), false, true);
$enc->encryptKey($rsa, $sym);
$ed = $enc->encryptNode($sym, false);
$ea = $doc->createElementNS('urn:oasis:names:tc:SAML:2.0:assertion', 'saml:EncryptedAssertion');
$ea->appendChild($doc->importNode($ed, true));
$a->parentNode->replaceChild($ea, $a);
echo $doc->saveXML($doc->documentElement);
`

// TestSAMLInteropXMLSecLibs encrypts a response SimpleSAMLphp signed with
// each block cipher and key transport its encryption library offers (with
// an RSA key SimpleSAMLphp itself only uses aes128-cbc), and verifies it.
func TestSAMLInteropXMLSecLibs(t *testing.T) {
	php := requireSimpleSAMLphp(t)
	ssp := startSimpleSAMLphp(t, sspConfig{Users: []idpUser{userAlice}})
	// Every data cipher accepted, for the test; a deployment pins one mode
	// (data_ciphers).
	sp := startInteropSP(t, ssp.MetadataURL, "", func(c *samlauth.Config) {
		c.DataCiphers = []string{"aes128-cbc", "aes192-cbc", "aes256-cbc", "aes128-gcm", "aes192-gcm", "aes256-gcm", "tripledes-cbc"}
	})
	trustInteropSP(t, ssp, sp, map[string]any{"saml20.sign.response": false, "saml20.sign.assertion": true})
	expectOK(t, sspLoginDirect(t, sp, userAlice, sp.URL+"/login"), ssp, userAlice)

	dir := t.TempDir()
	script, in := filepath.Join(dir, "encrypt.php"), filepath.Join(dir, "response.xml")
	certPath, _ := sharedKeyPair(t, "module-sp").writeFiles(t, dir)
	writeFile(t, script, []byte(xmlsecEncrypt))
	writeFile(t, in, sp.lastRaw)
	xmlenc, xmlenc11 := "http://www.w3.org/2001/04/xmlenc#", "http://www.w3.org/2009/xmlenc11#"
	for _, data := range []string{xmlenc + "aes128-cbc", xmlenc + "aes192-cbc", xmlenc + "aes256-cbc",
		xmlenc11 + "aes128-gcm", xmlenc11 + "aes192-gcm", xmlenc11 + "aes256-gcm", xmlenc + "tripledes-cbc"} {
		for _, key := range []string{xmlenc + "rsa-oaep-mgf1p", xmlenc11 + "rsa-oaep", xmlenc + "rsa-1_5"} {
			t.Run(data[strings.Index(data, "#")+1:]+"/"+key[strings.Index(key, "#")+1:], func(t *testing.T) {
				out, err := exec.Command(php, script, in, certPath, data, key).CombinedOutput()
				if err != nil || !bytes.Contains(out, []byte("EncryptedAssertion")) {
					t.Fatalf("xmlseclibs: %v\n%s", err, out)
				}
				id, err := sp.verify(out, sp.lastReq)
				if strings.HasSuffix(key, "rsa-1_5") {
					if err == nil || !strings.Contains(err.Error(), "rsa-1_5") {
						t.Fatalf("rsa-1_5 not refused as such: %v", err)
					}
					return
				}
				if err != nil || id.Email != userAlice.Email {
					t.Fatalf("refused: %v\n%s", err, out)
				}
			})
		}
	}
}

// TestRealWorldSAMLInterop runs the SimpleSAMLphp set-ups above through
// Caddy and Chromium: the glue's settings sign_authn_requests and
// idp_entity_id included.
func TestRealWorldSAMLInterop(t *testing.T) {
	skipIfShort(t)
	browser := startChromium(t)
	succeed := func(t *testing.T, s realWorldSetup) {
		t.Helper()
		rw := newRealWorld(t, s)
		tb := browser.newTab(t)
		c := rw.generate(t, userAlice.Email)
		rw.login(tb, userAlice, c)
		approvedAfter := rw.approve(tb, userAlice, c)
		sr := rw.collect(t, c, userAlice, approvedAfter)
		rw.upstreamAccepts(t, sr.EncodedJWT, userAlice)
	}
	withOptions := func(opts map[string]any) func(*realWorld) []sspSP {
		return func(rw *realWorld) []sspSP {
			sp := rw.SP
			sp.Options = opts
			return []sspSP{sp}
		}
	}
	t.Run("encrypted-assertion-signed-requests-wanted", func(t *testing.T) {
		succeed(t, realWorldSetup{
			IdP: sspConfig{Hosted: map[string]any{"validate.authnrequest": true}},
			SPs: withOptions(map[string]any{"assertion.encryption": true}),
		})
	})
	t.Run("signed-requests-required-unsaid", func(t *testing.T) {
		succeed(t, realWorldSetup{
			Module: func(m *moduleConfig) { m.SignAuthnRequests = true },
			SPs:    withOptions(map[string]any{"validate.authnrequest": true, "assertion.encryption": true}),
		})
	})
}
