package testbed

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// SimpleSAMLphp as Debian packages it (1.19): the code lives in
// /usr/share/simplesamlphp with www/ as its document root, and it reads its
// whole configuration from the directory named by SIMPLESAMLPHP_CONFIG_DIR.
// The package's own configuration in /etc/simplesamlphp is never touched, and
// the package's Apache configuration is never used: StartSimpleSAMLphp serves
// www/ with PHP's built-in server on loopback.
const (
	SimpleSAMLphpRoot    = "/usr/share/simplesamlphp"
	SimpleSAMLphpDocRoot = SimpleSAMLphpRoot + "/www"
)

// SAML names the SimpleSAMLphp configuration uses.
const (
	BindingHTTPPost     = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
	BindingHTTPRedirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	NameIDFormatEmail   = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
)

// ErrNoSimpleSAMLphp says that PHP or SimpleSAMLphp is not installed; the
// error that wraps it says which and how to install it.
var ErrNoSimpleSAMLphp = errors.New("cannot run SimpleSAMLphp")

// FindSimpleSAMLphp checks for PHP and SimpleSAMLphp and returns the php
// binary.
func FindSimpleSAMLphp() (php string, err error) {
	php, err = exec.LookPath("php")
	if err != nil {
		php = "/usr/bin/php"
	}
	const hint = "install it with: apt-get install --no-install-recommends simplesamlphp php-cli php-xml php-mbstring"
	for _, tool := range [][2]string{
		{"PHP", php},
		{"SimpleSAMLphp", filepath.Join(SimpleSAMLphpDocRoot, "saml2", "idp", "SSOService.php")},
	} {
		if _, err := os.Stat(tool[1]); err != nil {
			return "", fmt.Errorf("%w: %s is not installed (%s not found); %s", ErrNoSimpleSAMLphp, tool[0], tool[1], hint)
		}
	}
	return php, nil
}

// SimpleSAMLphpOptions describes the SimpleSAMLphp IdP to start.
type SimpleSAMLphpOptions struct {
	// Users of the exampleauth:UserPass source. Each carries uid, email
	// and, when it has any, the multi-valued groups attribute.
	Users []IdPUser
	// RotationCert publishes a second certificate in the IdP metadata, as
	// during a key rotation: SimpleSAMLphp lists its new_certificate first
	// and the one it signs with second.
	RotationCert bool
	// Hosted are further saml20-idp-hosted options, verbatim.
	Hosted map[string]any

	// Dir receives the configuration, metadata, keys, logs and sessions;
	// it must exist. When empty, a temporary directory is made and Stop
	// removes it.
	Dir string
	// SigningCert signs responses and assertions, and NextCert is the
	// published next certificate (RotationCert); fresh ones when nil.
	SigningCert, NextCert *KeyPair
}

// SimpleSAMLphp is a running SimpleSAMLphp IdP on http://localhost:<port>.
type SimpleSAMLphp struct {
	URL         string // http://localhost:<port>
	EntityID    string
	MetadataURL string
	SSOURL      string
	// SigningCert signs responses and assertions; NextCert is only
	// published (RotationCert).
	SigningCert KeyPair
	NextCert    *KeyPair

	metaDir string
	tempDir string // removed by Stop
	out     processLog
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
}

// StartSimpleSAMLphp writes a complete SimpleSAMLphp configuration and
// serves it with `php -S` on 127.0.0.1, debug logging included, and waits
// until it serves its metadata. The IdP is addressed as localhost, so that
// a browser sees it as another site than Caddy on 127.0.0.1, as a real IdP
// is. It trusts no service provider until TrustSPs is called. Errors wrap
// ErrNoSimpleSAMLphp when PHP or SimpleSAMLphp is missing.
func StartSimpleSAMLphp(o SimpleSAMLphpOptions) (_ *SimpleSAMLphp, err error) {
	php, err := FindSimpleSAMLphp()
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://localhost:%d", port)
	p := &SimpleSAMLphp{
		URL:         base,
		EntityID:    base + "/saml2/idp/metadata.php",
		MetadataURL: base + "/saml2/idp/metadata.php",
		SSOURL:      base + "/saml2/idp/SSOService.php",
		exited:      make(chan struct{}),
	}
	root := o.Dir
	if root == "" {
		if root, err = os.MkdirTemp("", "simplesamlphp-"); err != nil {
			return nil, err
		}
		p.tempDir = root
	}
	defer func() {
		if err != nil {
			p.Stop()
		}
	}()
	if o.SigningCert == nil {
		kp, err := NewKeyPair("simplesamlphp-idp")
		if err != nil {
			return nil, err
		}
		o.SigningCert = &kp
	}
	p.SigningCert = *o.SigningCert
	if o.RotationCert {
		if o.NextCert == nil {
			kp, err := NewKeyPair("simplesamlphp-idp-next")
			if err != nil {
				return nil, err
			}
			o.NextCert = &kp
		}
		p.NextCert = o.NextCert
	}
	dirs, err := p.writeConfig(root, o)
	if err != nil {
		return nil, err
	}

	// The built-in server runs one request at a time unless told otherwise;
	// a browser loads the login page's assets in parallel.
	p.cmd = exec.Command(php,
		"-d", "session.save_path="+dirs["sessions"],
		"-d", "display_errors=stderr",
		"-d", "log_errors=On",
		"-S", fmt.Sprintf("127.0.0.1:%d", port),
		"-t", SimpleSAMLphpDocRoot,
	)
	p.cmd.Dir = root
	p.cmd.Env = append(os.Environ(),
		"SIMPLESAMLPHP_CONFIG_DIR="+dirs["config"],
		"PHP_CLI_SERVER_WORKERS=3",
	)
	// Its own process group, so the forked workers stop with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logFile, out, err := createProcessLog(p.cmd, filepath.Join(root, "php.log"))
	if err != nil {
		p.cmd = nil
		return nil, err
	}
	p.out = out
	err = p.cmd.Start()
	logFile.Close()
	if err != nil {
		p.cmd = nil
		return nil, fmt.Errorf("starting php -S: %w", err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitReady(); err != nil {
		return nil, err
	}
	return p, nil
}

// writeConfig writes the configuration, the hosted IdP's metadata and its
// keys into directories under root, and returns those directories by name.
func (p *SimpleSAMLphp) writeConfig(root string, o SimpleSAMLphpOptions) (map[string]string, error) {
	dirs := map[string]string{}
	for _, name := range []string{"config", "metadata", "cert", "log", "data", "tmp", "sessions"} {
		dirs[name] = filepath.Join(root, name)
		if err := os.MkdirAll(dirs[name], 0o700); err != nil {
			return nil, err
		}
	}
	p.metaDir = dirs["metadata"]

	// The key and certificates are given as absolute paths, which
	// SimpleSAMLphp accepts in place of names relative to certdir.
	keyPath, certPath := filepath.Join(dirs["cert"], "idp.key"), filepath.Join(dirs["cert"], "idp.crt")
	if err := p.SigningCert.WriteFiles(certPath, keyPath); err != nil {
		return nil, err
	}
	hosted := phpArray{
		{"host", "__DEFAULT__"},
		{"privatekey", keyPath},
		{"certificate", certPath},
		{"auth", "example-userpass"},
	}
	if p.NextCert != nil {
		next := filepath.Join(dirs["cert"], "idp-next.crt")
		if err := os.WriteFile(next, p.NextCert.CertPEM, 0o600); err != nil {
			return nil, err
		}
		hosted = append(hosted, phpKV{"new_certificate", next})
	}
	hosted = append(hosted, sortedKVs(o.Hosted)...)
	if err := writePHP(filepath.Join(dirs["metadata"], "saml20-idp-hosted.php"), "metadata", phpArray{{p.EntityID, hosted}}, true); err != nil {
		return nil, err
	}

	source := phpArray{{nil, "exampleauth:UserPass"}}
	for _, u := range o.Users {
		attrs := phpArray{
			{"uid", []string{u.Name}},
			{"email", []string{u.Email}},
		}
		if len(u.Groups) > 0 {
			attrs = append(attrs, phpKV{"groups", u.Groups})
		}
		source = append(source, phpKV{u.Name + ":" + u.Password, attrs})
	}
	if err := writePHP(filepath.Join(dirs["config"], "authsources.php"), "config", phpArray{
		{"admin", phpArray{{nil, "core:AdminPassword"}}},
		{"example-userpass", source},
	}, false); err != nil {
		return nil, err
	}
	return dirs, writePHP(filepath.Join(dirs["config"], "config.php"), "config", phpArray{
		// A full URL: SimpleSAMLphp builds every link and its entity ID
		// from it, whatever Host header it is reached with.
		{"baseurlpath", p.URL + "/"},
		{"certdir", dirs["cert"] + "/"},
		{"loggingdir", dirs["log"] + "/"},
		{"datadir", dirs["data"] + "/"},
		{"tempdir", dirs["tmp"]},
		{"metadatadir", dirs["metadata"] + "/"},
		{"secretsalt", rand.Text()},
		{"auth.adminpassword", rand.Text()},
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
}

// waitReady waits up to 20 s until the IdP serves its metadata.
func (p *SimpleSAMLphp) waitReady() error {
	err := WaitFor(20*time.Second, 100*time.Millisecond, func() error {
		if p.exitedNow() {
			return nil // nothing left to wait for
		}
		_, err := p.Metadata()
		return err
	})
	if err == nil && p.exitedNow() {
		return fmt.Errorf("php -S exited during start-up: %v\n%s", p.exitErr, p.Log())
	}
	if err != nil {
		return fmt.Errorf("waiting for SimpleSAMLphp's metadata: %w\nlog:\n%s", err, p.Log())
	}
	return nil
}

func (p *SimpleSAMLphp) exitedNow() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Stop ends the server and its workers (SIGTERM to its process group,
// SIGKILL after 5 s), and removes the directory StartSimpleSAMLphp made
// (the log with it) when Dir was empty.
func (p *SimpleSAMLphp) Stop() {
	if p.cmd != nil {
		stopProcess(p.cmd.Process.Pid, true, syscall.SIGTERM, p.exited, 5*time.Second)
	}
	if p.tempDir != "" {
		_ = os.RemoveAll(p.tempDir)
	}
}

// Log returns what the server has logged so far: PHP's and SimpleSAMLphp's
// (Dir/php.log). What it logged while answering a request is there once
// the answer has arrived.
func (p *SimpleSAMLphp) Log() string { return p.out.String() }

// Metadata fetches the IdP's metadata XML.
func (p *SimpleSAMLphp) Metadata() ([]byte, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(p.MetadataURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p.MetadataURL, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "EntityDescriptor") {
		return nil, fmt.Errorf("GET %s: %d %s", p.MetadataURL, resp.StatusCode, body)
	}
	return body, nil
}
