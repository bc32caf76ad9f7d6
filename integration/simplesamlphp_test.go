package integration

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crewjam/saml"
)

// SimpleSAMLphp as Debian packages it (1.19): the code lives in
// /usr/share/simplesamlphp with www/ as its document root, and it reads its
// whole configuration from the directory named by SIMPLESAMLPHP_CONFIG_DIR.
// The package's own configuration in /etc/simplesamlphp is never touched, and
// the package's Apache configuration is never used: the test serves www/ with
// PHP's built-in server on loopback.
const (
	simpleSAMLphpRoot    = "/usr/share/simplesamlphp"
	simpleSAMLphpDocRoot = simpleSAMLphpRoot + "/www"
)

// SAML names the SimpleSAMLphp configuration uses.
const (
	bindingHTTPPost   = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
	nameIDFormatEmail = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
)

// requireTool skips the test when a program it needs is not installed, and
// fails it instead under CI=true, where a missing dependency is a broken
// set-up rather than a developer machine without it.
func requireTool(t testing.TB, what, path, hint string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	msg := fmt.Sprintf("%s is not installed (%s not found); %s", what, path, hint)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// requireSimpleSAMLphp checks for PHP and SimpleSAMLphp and returns the php
// binary.
func requireSimpleSAMLphp(t testing.TB) string {
	t.Helper()
	php, err := exec.LookPath("php")
	if err != nil {
		php = "/usr/bin/php"
	}
	const hint = "install it with: apt-get install --no-install-recommends simplesamlphp php-cli php-xml php-mbstring"
	requireTool(t, "PHP", php, hint)
	requireTool(t, "SimpleSAMLphp", filepath.Join(simpleSAMLphpDocRoot, "saml2", "idp", "SSOService.php"), hint)
	return php
}

// sspConfig describes the SimpleSAMLphp IdP a test wants.
type sspConfig struct {
	// Users of the exampleauth:UserPass source. Each carries uid, email
	// and, when it has any, the multi-valued groups attribute.
	Users []idpUser
	// RotationCert publishes a second certificate in the IdP metadata, as
	// during a key rotation: SimpleSAMLphp lists its new_certificate first
	// and the one it signs with second.
	RotationCert bool
	// Hosted are further saml20-idp-hosted options, verbatim.
	Hosted map[string]any
}

// sspSP is one saml20-sp-remote entry: a service provider the IdP trusts.
type sspSP struct {
	EntityID string
	// ACS are the AssertionConsumerService endpoints, in order; the first
	// is the default.
	ACS []string
	// SLO are the SingleLogoutService endpoints as binding → location.
	SLO [][2]string
	// SigningCert and EncryptionCert are base64 DER certificates.
	SigningCert    string
	EncryptionCert string
	// Options are further saml20-sp-remote options, verbatim.
	Options map[string]any
}

// simpleSAMLphp is a running SimpleSAMLphp IdP on http://localhost:<port>.
type simpleSAMLphp struct {
	URL         string // http://localhost:<port>
	EntityID    string
	MetadataURL string
	SSOURL      string
	// SigningCert signs responses and assertions; NextCert is only
	// published (RotationCert).
	SigningCert keyPair
	NextCert    *keyPair

	metaDir string
	out     *syncBuffer
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
}

// startSimpleSAMLphp writes a complete SimpleSAMLphp configuration into a
// temporary directory and serves it with `php -S` on 127.0.0.1. The IdP is
// addressed as localhost, so that the browser sees it as another site than
// Caddy on 127.0.0.1, as a real IdP is. It trusts no service provider until
// trustSPs is called. The server is stopped when the test ends; its log
// (PHP's and SimpleSAMLphp's, at debug level) is shown if the test failed.
func startSimpleSAMLphp(t testing.TB, cfg sspConfig) *simpleSAMLphp {
	t.Helper()
	php := requireSimpleSAMLphp(t)

	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	root := t.TempDir()
	p := &simpleSAMLphp{
		URL:         base,
		EntityID:    base + "/saml2/idp/metadata.php",
		MetadataURL: base + "/saml2/idp/metadata.php",
		SSOURL:      base + "/saml2/idp/SSOService.php",
		SigningCert: sharedKeyPair(t, "simplesamlphp-idp"),
		metaDir:     filepath.Join(root, "metadata"),
		out:         &syncBuffer{},
		exited:      make(chan struct{}),
	}
	dirs := map[string]string{}
	for _, name := range []string{"config", "metadata", "cert", "log", "data", "tmp", "sessions"} {
		dirs[name] = filepath.Join(root, name)
		if err := os.MkdirAll(dirs[name], 0o700); err != nil {
			t.Fatal(err)
		}
	}

	// The key and certificates are given as absolute paths, which
	// SimpleSAMLphp accepts in place of names relative to certdir.
	writeFile(t, filepath.Join(dirs["cert"], "idp.key"), p.SigningCert.KeyPEM)
	writeFile(t, filepath.Join(dirs["cert"], "idp.crt"), p.SigningCert.CertPEM)
	hosted := phpArray{
		{"host", "__DEFAULT__"},
		{"privatekey", filepath.Join(dirs["cert"], "idp.key")},
		{"certificate", filepath.Join(dirs["cert"], "idp.crt")},
		{"auth", "example-userpass"},
	}
	if cfg.RotationCert {
		next := sharedKeyPair(t, "simplesamlphp-idp-next")
		p.NextCert = &next
		writeFile(t, filepath.Join(dirs["cert"], "idp-next.crt"), next.CertPEM)
		hosted = append(hosted, phpKV{"new_certificate", filepath.Join(dirs["cert"], "idp-next.crt")})
	}
	hosted = append(hosted, sortedKVs(cfg.Hosted)...)
	writePHP(t, filepath.Join(dirs["metadata"], "saml20-idp-hosted.php"), "metadata", phpArray{{p.EntityID, hosted}}, true)

	source := phpArray{{nil, "exampleauth:UserPass"}}
	for _, u := range cfg.Users {
		attrs := phpArray{
			{"uid", []string{u.Name}},
			{"email", []string{u.Email}},
		}
		if len(u.Groups) > 0 {
			attrs = append(attrs, phpKV{"groups", u.Groups})
		}
		source = append(source, phpKV{u.Name + ":" + u.Password, attrs})
	}
	writePHP(t, filepath.Join(dirs["config"], "authsources.php"), "config", phpArray{
		{"admin", phpArray{{nil, "core:AdminPassword"}}},
		{"example-userpass", source},
	}, false)

	writePHP(t, filepath.Join(dirs["config"], "config.php"), "config", phpArray{
		// A full URL: SimpleSAMLphp builds every link and its entity ID
		// from it, whatever Host header it is reached with.
		{"baseurlpath", base + "/"},
		{"certdir", dirs["cert"] + "/"},
		{"loggingdir", dirs["log"] + "/"},
		{"datadir", dirs["data"] + "/"},
		{"tempdir", dirs["tmp"]},
		{"metadatadir", dirs["metadata"] + "/"},
		{"secretsalt", randomHex(t)},
		{"auth.adminpassword", randomHex(t)},
		{"admin.protectindexpage", false},
		{"admin.protectmetadata", false},
		{"technicalcontact_name", "Integration tests"},
		{"technicalcontact_email", "na@example.org"},
		{"timezone", "UTC"},
		// To PHP's error log, which is the built-in server's stderr.
		{"logging.handler", "errorlog"},
		{"logging.level", phpRaw(`SimpleSAML\Logger::DEBUG`)},
		{"logging.format", "%level %stat [%trackid] %msg"},
		// Logs every SAML message sent and received.
		{"debug", phpArray{{"saml", true}, {"backtraces", true}, {"validatexml", false}}},
		{"showerrors", true},
		{"errorreporting", false},
		{"production", true},
		{"enable.saml20-idp", true},
		{"enable.shib13-idp", false},
		// exampleauth ships disabled (its default-disable file).
		{"module.enable", phpArray{{"exampleauth", true}, {"core", true}, {"saml", true}, {"admin", true}}},
		// Plain http on localhost: a Secure cookie would be dropped, and
		// SameSite=None requires Secure.
		{"session.cookie.secure", false},
		{"session.cookie.samesite", nil},
		{"session.phpsession.savepath", dirs["sessions"]},
		{"store.type", "phpsession"},
		{"language.default", "en"},
	}, false)

	// The built-in server runs one request at a time unless told otherwise;
	// a browser loads the login page's assets in parallel.
	p.cmd = exec.Command(php,
		"-d", "session.save_path="+dirs["sessions"],
		"-d", "display_errors=stderr",
		"-d", "log_errors=On",
		"-S", fmt.Sprintf("127.0.0.1:%d", port),
		"-t", simpleSAMLphpDocRoot,
	)
	p.cmd.Dir = root
	p.cmd.Env = append(os.Environ(),
		"SIMPLESAMLPHP_CONFIG_DIR="+dirs["config"],
		"PHP_CLI_SERVER_WORKERS=3",
	)
	// Its own process group, so the forked workers stop with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting php -S: %v", err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("SimpleSAMLphp (%s) log:\n%s", p.URL, p.out.String())
		}
	})
	p.waitReady(t)
	return p
}

// waitReady waits until the IdP serves its metadata.
func (p *simpleSAMLphp) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for {
		select {
		case <-p.exited:
			t.Fatalf("php -S exited during start-up: %v\n%s", p.exitErr, p.out.String())
		default:
		}
		resp, err := http.Get(p.MetadataURL)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), "EntityDescriptor") {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("SimpleSAMLphp did not serve %s within 20s; last answer: %s\nlog:\n%s", p.MetadataURL, last, p.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the server and its workers.
func (p *simpleSAMLphp) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// Log returns what the server has logged so far.
func (p *simpleSAMLphp) Log() string { return p.out.String() }

// Metadata fetches the IdP's metadata XML.
func (p *simpleSAMLphp) Metadata(t testing.TB) []byte {
	t.Helper()
	resp, err := http.Get(p.MetadataURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", p.MetadataURL, resp.StatusCode, body)
	}
	return body
}

// trustSPs replaces the IdP's saml20-sp-remote entries. SimpleSAMLphp reads
// its metadata files on every request, so this works while it runs.
func (p *simpleSAMLphp) trustSPs(t testing.TB, sps ...sspSP) {
	t.Helper()
	var entries phpArray
	for _, sp := range sps {
		var acs []any
		for i, loc := range sp.ACS {
			acs = append(acs, phpArray{{"Binding", bindingHTTPPost}, {"Location", loc}, {"index", i}})
		}
		var keys []any
		if sp.SigningCert != "" {
			keys = append(keys, phpArray{{"type", "X509Certificate"}, {"signing", true}, {"encryption", false}, {"X509Certificate", sp.SigningCert}})
		}
		if sp.EncryptionCert != "" {
			keys = append(keys, phpArray{{"type", "X509Certificate"}, {"signing", false}, {"encryption", true}, {"X509Certificate", sp.EncryptionCert}})
		}
		entry := phpArray{{"AssertionConsumerService", acs}}
		if len(sp.SLO) > 0 {
			var slo []any
			for _, e := range sp.SLO {
				slo = append(slo, phpArray{{"Binding", e[0]}, {"Location", e[1]}})
			}
			entry = append(entry, phpKV{"SingleLogoutService", slo})
		}
		if len(keys) > 0 {
			entry = append(entry, phpKV{"keys", keys})
		}
		entry = append(entry, sortedKVs(sp.Options)...)
		entries = append(entries, phpKV{sp.EntityID, entry})
	}
	writePHP(t, filepath.Join(p.metaDir, "saml20-sp-remote.php"), "metadata", entries, true)
}

// spFromMetadata converts SP metadata XML (what the module serves at
// /saml/metadata) into a saml20-sp-remote entry, as an IdP administrator
// does when registering the service provider.
func spFromMetadata(t testing.TB, data []byte) sspSP {
	t.Helper()
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal(data, &ed); err != nil {
		t.Fatalf("parsing SP metadata: %v\n%s", err, data)
	}
	if len(ed.SPSSODescriptors) != 1 {
		t.Fatalf("SP metadata has %d SPSSODescriptors, want 1:\n%s", len(ed.SPSSODescriptors), data)
	}
	d := ed.SPSSODescriptors[0]
	sp := sspSP{EntityID: ed.EntityID}
	for _, acs := range d.AssertionConsumerServices {
		if acs.Binding == bindingHTTPPost {
			sp.ACS = append(sp.ACS, acs.Location)
		}
	}
	if len(sp.ACS) == 0 {
		t.Fatalf("SP metadata has no HTTP-POST AssertionConsumerService:\n%s", data)
	}
	for _, slo := range d.SingleLogoutServices {
		sp.SLO = append(sp.SLO, [2]string{slo.Binding, slo.Location})
	}
	for _, kd := range d.KeyDescriptors {
		if len(kd.KeyInfo.X509Data.X509Certificates) == 0 {
			continue
		}
		cert := strings.Join(strings.Fields(kd.KeyInfo.X509Data.X509Certificates[0].Data), "")
		switch kd.Use {
		case "signing":
			sp.SigningCert = cert
		case "encryption":
			sp.EncryptionCert = cert
		case "":
			sp.SigningCert, sp.EncryptionCert = cert, cert
		}
	}
	return sp
}

// phpRaw is PHP source inserted as is, such as a constant.
type phpRaw string

// phpKV is one element of a PHP array; a nil key makes it positional.
type phpKV struct {
	K any
	V any
}

// phpArray is an ordered PHP array, which may mix positional and keyed
// elements as SimpleSAMLphp's configuration does.
type phpArray []phpKV

func sortedKVs(m map[string]any) phpArray {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var a phpArray
	for _, k := range keys {
		a = append(a, phpKV{k, m[k]})
	}
	return a
}

// phpValue renders v as a PHP literal.
func phpValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case phpRaw:
		return string(v)
	case string:
		return phpString(v)
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	case []string:
		parts := make([]string, len(v))
		for i, s := range v {
			parts[i] = phpString(s)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = phpValue(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		return phpValue(sortedKVs(v))
	case phpArray:
		parts := make([]string, len(v))
		for i, kv := range v {
			if kv.K == nil {
				parts[i] = phpValue(kv.V)
			} else {
				parts[i] = phpValue(kv.K) + " => " + phpValue(kv.V)
			}
		}
		return "[" + strings.Join(parts, ",\n") + "]"
	}
	panic(fmt.Sprintf("phpValue: unsupported type %T", v))
}

// phpString is a single-quoted PHP string, in which only the backslash and
// the quote need escaping.
func phpString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// writePHP writes a PHP file that fills the variable name: with perEntry,
// one `$name[key] = value;` per element (SimpleSAMLphp's metadata files),
// otherwise `$name = [...];`.
func writePHP(t testing.TB, path, name string, a phpArray, perEntry bool) {
	t.Helper()
	var b strings.Builder
	b.WriteString("<?php\n")
	if perEntry {
		for _, kv := range a {
			fmt.Fprintf(&b, "$%s[%s] = %s;\n", name, phpValue(kv.K), phpValue(kv.V))
		}
	} else {
		fmt.Fprintf(&b, "$%s = %s;\n", name, phpValue(a))
	}
	writeFile(t, path, []byte(b.String()))
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func randomHex(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// certBase64 is a certificate as SAML metadata carries it.
func certBase64(kp keyPair) string { return base64.StdEncoding.EncodeToString(kp.Cert.Raw) }
