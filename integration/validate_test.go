package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// caddyCmd runs the built Caddy with args and env, returning its output.
func caddyCmd(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(caddyBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestCaddyfileExample: the shipped example validates (given a key pair and
// a secret), is `caddy fmt` clean, and the binary lists the module.
func TestCaddyfileExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy")
	}
	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	example := filepath.Join(root, "Caddyfile.example")
	certPath, keyPath := newKeyPair(t, "example-sp").writeFiles(t, t.TempDir())
	env := []string{"CONSOLEME_JWT_SECRET=example-secret", "SAML_SP_CERT=" + certPath, "SAML_SP_KEY=" + keyPath}
	if out, err := caddyCmd(t, env, "validate", "--config", example); err != nil || !strings.Contains(out, "Valid configuration") {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	src, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	formatted, err := exec.Command(caddyBinary(t), "fmt", example).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(formatted) != string(src) {
		t.Errorf("Caddyfile.example is not caddy fmt clean:\n%s", formatted)
	}
	if out, err := caddyCmd(t, nil, "list-modules"); err != nil || !strings.Contains(out, "http.handlers.consoleme_auth") {
		t.Errorf("list-modules: %v\n%s", err, out)
	}
}

// TestValidateWithoutRedis: validating (and starting) a Redis-backed config
// never waits for Redis.
func TestValidateWithoutRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy")
	}
	path := filepath.Join(t.TempDir(), "Caddyfile")
	src := fmt.Sprintf("{\n\tadmin off\n}\n:0 {\n\tconsoleme_auth {\n\t\tjwt_secret s\n\t\tstore redis redis://127.0.0.1:%d/0\n\t}\n\trespond ok\n}\n", freePort(t))
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := caddyCmd(t, nil, "validate", "--config", path)
	if err != nil || !strings.Contains(out, "Valid configuration") {
		t.Fatalf("validate with Redis down: %v\n%s", err, out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("validate took %v", d)
	}
}

// TestValidateRefusesBadConfig: every bad configuration fails `caddy
// validate` with a message naming what is wrong, and never echoes the secret.
func TestValidateRefusesBadConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy")
	}
	dir := t.TempDir()
	certPath, keyPath := newKeyPair(t, "sp").writeFiles(t, dir)
	// Another pair's certificate, to pair with sp.key in the mismatch case.
	otherCert, _ := newKeyPair(t, "other").writeFiles(t, t.TempDir())
	mdPath := filepath.Join(dir, "idp.xml")
	if err := os.WriteFile(mdPath, []byte("<not-metadata/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "validate-test-secret-value"
	saml := func(lines string) string {
		return "jwt_secret " + secret + "\nsaml {\n" + lines + "\n}"
	}
	for _, tc := range []struct {
		name, block, want string
	}{
		{"unknown subdirective", "jwt_secret " + secret + "\njwt_secrte x", "unrecognized subdirective 'jwt_secrte'"},
		{"missing secret", "cookie_name consoleme_auth", "jwt_secret: required"},
		{"secret from an unset variable", "jwt_secret {env.CONSOLEME_AUTH_UNSET_TEST_VAR}", "jwt_secret: {env.CONSOLEME_AUTH_UNSET_TEST_VAR} expanded to nothing"},
		{"negative duration", "jwt_secret " + secret + "\nchallenge_ttl -5m", "challenge_ttl: must be positive"},
		{"bad duration", "jwt_secret " + secret + "\njwt_expiration soon", "jwt_expiration"},
		{"bad public_url", "jwt_secret " + secret + "\npublic_url consoleme.example.com", "public_url"},
		{"unreadable SP key", saml("idp_metadata_file " + mdPath + "\nsp_cert " + certPath + "\nsp_key " + filepath.Join(dir, "missing.key")), "sp_key"},
		{"mismatched SP key and cert", saml("idp_metadata_url https://idp.example.com/md\nsp_cert " + otherCert + "\nsp_key " + keyPath), "sp_key: does not match"},
		{"unreadable metadata file", saml("idp_metadata_file " + filepath.Join(dir, "nope.xml") + "\nsp_cert " + certPath + "\nsp_key " + keyPath), "idp_metadata_file"},
		{"invalid metadata file", saml("idp_metadata_file " + mdPath + "\nsp_cert " + certPath + "\nsp_key " + keyPath), "idp_metadata_file"},
		{"bad metadata URL", saml("idp_metadata_url idp.example.com/md\nsp_cert " + certPath + "\nsp_key " + keyPath), "idp_metadata_url"},
		{"unknown store", "jwt_secret " + secret + "\nstore etcd", "store: unknown type 'etcd'"},
		{"the site is named", "cookie_name consoleme_auth", "site :0: jwt_secret: required"},
		{"public_url with a path", "jwt_secret " + secret + "\npublic_url https://cm.example.com/consoleme", "has a path, but the module's routes live at the root of the site"},
		{"redis port out of range", "jwt_secret " + secret + "\nstore redis redis://127.0.0.1:99999/0", "is not a valid port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "Caddyfile")
			src := "{\n\tadmin off\n}\n:0 {\n\tconsoleme_auth {\n" + tc.block + "\n\t}\n\trespond ok\n}\n"
			if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := caddyCmd(t, nil, "validate", "--config", path)
			if err == nil {
				t.Fatalf("validated:\n%s", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
			if strings.Contains(out, secret) {
				t.Errorf("the secret appears in the output:\n%s", out)
			}
		})
	}
}
