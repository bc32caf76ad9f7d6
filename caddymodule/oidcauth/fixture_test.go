package oidcauth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The test provider is testdata/op/provider.js, an oidc-provider started
// with node on 127.0.0.1. Its packages are installed once into
// testdata/op/node_modules (ignored by git) by npm ci from the committed
// package-lock.json; later runs find them there and need no network.

const (
	opDir        = "testdata/op"
	installLimit = 3 * time.Minute
	startLimit   = 30 * time.Second

	// testBase is the client's base URL: the provider redirects to
	// testBase/oidc/callback, which the test browser stops at.
	testBase = "https://consoleme.test"
	// postLogout is the registered post_logout_redirect_uri.
	postLogout = testBase + "/"

	secretClient = "rp-secret"
	postClient   = "rp-post"
	jwtClient    = "rp-jwt"
	clientSecret = "s3cret-for-tests-only-long-enough-for-hs256"
)

var (
	installOnce sync.Once
	installErr  error
)

// needNode skips the test when node or npm is missing, except under
// CI=true, where that is a failure; then it installs the provider's
// packages once.
func needNode(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("skipping: %s is not on PATH, and the OpenID provider of these tests runs on Node.js (v20 or later) with npm; under CI=true this is a failure", tool)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	installOnce.Do(func() { installErr = installProvider() })
	if installErr != nil {
		t.Fatal(installErr)
	}
}

// installProvider runs npm ci in testdata/op unless oidc-provider of the
// locked version is already there.
func installProvider() error {
	var want, have struct {
		Dependencies map[string]string `json:"dependencies"`
		Version      string            `json:"version"`
	}
	data, err := os.ReadFile(filepath.Join(opDir, "package.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &want); err != nil {
		return err
	}
	if data, err := os.ReadFile(filepath.Join(opDir, "node_modules", "oidc-provider", "package.json")); err == nil &&
		json.Unmarshal(data, &have) == nil && have.Version == want.Dependencies["oidc-provider"] {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), installLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--prefer-offline")
	cmd.Dir = opDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm ci in %s (limit %s): %v\n%s", opDir, installLimit, err, out)
	}
	return nil
}

// testKey is a signing key of the provider; the tests hold the private
// half so that the attacker-in-the-middle can sign with it.
type testKey struct {
	kid  string
	priv *rsa.PrivateKey
}

func newTestKey(t *testing.T, kid string) *testKey {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{kid: kid, priv: priv}
}

// jwks is the private JWK set of keys, as the provider takes it.
func jwks(keys ...*testKey) jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv, KeyID: k.kid, Algorithm: "RS256", Use: "sig"})
	}
	return set
}

// clientKey is the private_key_jwt key of jwtClient, written to a PEM file.
type clientKey struct {
	path string
	jwks jose.JSONWebKeySet // public, as registered
}

func newClientKey(t *testing.T) *clientKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "client-key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &clientKey{path: path, jwks: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: priv.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"}}}}
}

// testAccounts are the provider's users. Claims starting with ui_ are
// served by userinfo only.
var testAccounts = map[string]map[string]any{
	"alice": {"email": "alice@example.com", "email_verified": true, "name": "Alice",
		"groups": []string{"admins", " devs ", ""}, "ui_groups": []string{"from-userinfo"}},
	"carol": {"ui_email": " carol@example.com ", "groups": "solo"},
	"dave":  {"email": "dave@example.com", "email_verified": false},
	"erin":  {"name": "Erin"},
}

// op is a running test provider.
type op struct {
	Issuer    string
	ClientKey *clientKey
	cmd       *exec.Cmd
	stderr    *lockedWriter
	done      chan struct{}
}

// startOP starts a provider signing with keys, listening on port (0: any
// free one), and stops it when the test ends.
func startOP(t *testing.T, port int, keys ...*testKey) *op {
	t.Helper()
	needNode(t)
	ck := newClientKey(t)
	redirect := []string{testBase + CallbackPath}
	common := map[string]any{
		"redirect_uris": redirect, "post_logout_redirect_uris": []string{postLogout},
		"grant_types": []string{"authorization_code"}, "response_types": []string{"code"},
	}
	client := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cfg := map[string]any{
		"port":     port,
		"jwks":     jwks(keys...),
		"accounts": testAccounts,
		"clients": []any{
			client(map[string]any{"client_id": secretClient, "client_secret": clientSecret, "token_endpoint_auth_method": "client_secret_basic"}),
			client(map[string]any{"client_id": postClient, "client_secret": clientSecret, "token_endpoint_auth_method": "client_secret_post"}),
			client(map[string]any{"client_id": jwtClient, "token_endpoint_auth_method": "private_key_jwt", "jwks": ck.jwks}),
		},
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "op.json")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join(opDir, "provider.js"))
	if err != nil {
		t.Fatal(err)
	}
	o := &op{ClientKey: ck, stderr: &lockedWriter{w: &bytes.Buffer{}}, done: make(chan struct{})}
	o.cmd = exec.Command("node", script, cfgPath)
	o.cmd.Dir = opDir
	o.cmd.Stderr = o.stderr
	stdout, err := o.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := o.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { o.cmd.Wait(); close(o.done) }()
	t.Cleanup(func() { o.stop() })
	issuer := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if s, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				issuer <- s
			}
		}
	}()
	select {
	case o.Issuer = <-issuer:
	case <-o.done:
		t.Fatalf("the test provider exited at start: %s", o.stderr)
	case <-time.After(startLimit):
		t.Fatalf("the test provider did not listen within %s: %s", startLimit, o.stderr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("test provider's stderr:\n%s", o.stderr)
		}
	})
	return o
}

// stop kills the provider and waits for it to exit.
func (o *op) stop() {
	if o.cmd.Process != nil {
		o.cmd.Process.Kill()
	}
	<-o.done
}

// rotate makes the provider sign with keys from now on, keeping its
// sessions.
func (o *op) rotate(t *testing.T, keys ...*testKey) {
	t.Helper()
	body, err := json.Marshal(jwks(keys...))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(o.Issuer+"/__test/jwks", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("rotating the provider's keys: %s", resp.Status)
	}
}

// lockedWriter serialises writes to a buffer read by the test.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
