// Package oidctest runs a real OpenID provider for tests and demos: the
// certified Node.js package oidc-provider, configured by
// ../testdata/op/provider.js and listening on 127.0.0.1. It is test
// support: nothing in a Caddy build imports it.
//
// The provider's packages are installed once into testdata/op/node_modules
// (ignored by git) by npm ci from the committed package-lock.json; later
// runs find them there and need no network.
package oidctest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const (
	installLimit = 3 * time.Minute
	startLimit   = 30 * time.Second
)

// Config is what the provider serves.
type Config struct {
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int `json:"port"`
	// JWKS holds the private signing keys.
	JWKS jose.JSONWebKeySet `json:"jwks"`
	// Accounts maps a login name to its claims; claims whose name starts
	// with "ui_" are served by the userinfo endpoint only. Any password
	// signs in.
	Accounts map[string]map[string]any `json:"accounts"`
	// Clients is the client metadata as oidc-provider takes it
	// (client_id, client_secret, redirect_uris, ...).
	Clients []map[string]any `json:"clients"`
}

// Provider is a running provider.
type Provider struct {
	// Issuer is its issuer URL, http://127.0.0.1:<port>.
	Issuer string

	controlKey string // guards the provider's test-control endpoints
	cmd        *exec.Cmd
	stderr     lockedBuffer
	done       chan struct{}
}

// Dir is the folder of provider.js and its package files.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "op")
}

var (
	installOnce sync.Once
	installErr  error
)

// Available reports why the provider cannot run here (node or npm
// missing, or the install failing), or nil. It installs the packages once.
func Available() error {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not on PATH: the OpenID provider runs on Node.js (v20 or later) with npm", tool)
		}
	}
	installOnce.Do(func() { installErr = install() })
	return installErr
}

// install runs npm ci unless oidc-provider of the locked version is there.
func install() error {
	var want, have struct {
		Dependencies map[string]string `json:"dependencies"`
		Version      string            `json:"version"`
	}
	data, err := os.ReadFile(filepath.Join(Dir(), "package.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &want); err != nil {
		return err
	}
	if data, err := os.ReadFile(filepath.Join(Dir(), "node_modules", "oidc-provider", "package.json")); err == nil &&
		json.Unmarshal(data, &have) == nil && have.Version == want.Dependencies["oidc-provider"] {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), installLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--prefer-offline")
	cmd.Dir = Dir()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in %s (limit %s): %v\n%s", Dir(), installLimit, err, out)
	}
	return nil
}

// Start starts a provider serving cfg, writing its configuration under
// dir, and returns once it listens. Stop it with Stop.
func Start(cfg Config, dir string) (*Provider, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	p := &Provider{controlKey: hex.EncodeToString(key), done: make(chan struct{})}
	data, err := json.Marshal(struct {
		Config
		ControlKey string `json:"control_key"`
	}{cfg, p.controlKey})
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "op.json")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		return nil, err
	}
	p.cmd = exec.Command("node", filepath.Join(Dir(), "provider.js"), cfgPath)
	p.cmd.Dir = Dir()
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
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
	case p.Issuer = <-issuer:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("the OpenID provider exited at start: %s", p.Stderr())
	case <-time.After(startLimit):
		p.Stop()
		return nil, fmt.Errorf("the OpenID provider did not listen within %s: %s", startLimit, p.Stderr())
	}
}

// Rotate makes the provider sign with the keys of set from now on,
// keeping its sessions, grants and codes.
func (p *Provider) Rotate(set jose.JSONWebKeySet) error {
	return p.control(http.MethodPost, "jwks", set, nil)
}

// Forgery is how the provider rewrites an ID token it issues: as a
// provider gone wrong, or an attacker in the middle of the token
// response, would.
type Forgery struct {
	// Claims replace the genuine claims of the same name (e.g. "aud",
	// "exp", "nonce"); the others are kept.
	Claims map[string]any `json:"claims,omitempty"`
	// Unsigned sends the token with "alg": "none" and no signature;
	// otherwise it is signed again with the provider's own key, under the
	// genuine token's kid and algorithm.
	Unsigned bool `json:"unsigned,omitempty"`
}

// ForgeNextIDToken makes the token endpoint rewrite the next ID token it
// issues as f says. Only that one: the tokens after it are genuine.
func (p *Provider) ForgeNextIDToken(f Forgery) error {
	return p.control(http.MethodPost, "forge-next-id-token", f, nil)
}

// HoldNextRedirect makes the next redirect back to a client's redirect
// URI (the authorization response, with its code and state) end at a page
// of the provider instead, whose element #held shows where it would have
// gone; Record lists it. A test then chooses which callback to make.
func (p *Provider) HoldNextRedirect() error {
	return p.control(http.MethodPost, "hold-next-redirect", nil, nil)
}

// Record is what ForgeNextIDToken and HoldNextRedirect have done so far,
// and the token endpoint's refusals.
type Record struct {
	// ForgedIDTokens are the rewritten ID tokens, as issued, oldest first.
	ForgedIDTokens []string `json:"forged_id_tokens"`
	// HeldRedirects are the URLs of the held redirects, oldest first.
	HeldRedirects []string `json:"held_redirects"`
	// GrantErrors are the token endpoint's refusals, oldest first, each
	// as "<error>: <the provider's detail>", e.g. "invalid_grant: code_verifier
	// does not match code_challenge".
	GrantErrors []string `json:"grant_errors"`
}

// Record returns what the provider has forged and held so far.
func (p *Provider) Record() (Record, error) {
	var r Record
	err := p.control(http.MethodGet, "record", nil, &r)
	return r, err
}

// control calls the provider's test-control endpoint /__test/<what> with
// the control key, sending in as JSON (when not nil) and decoding the
// answer into out (when not nil).
func (p *Provider) control(method, what string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, p.Issuer+"/__test/"+what, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.controlKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := controlClient.Do(req)
	if err != nil {
		return fmt.Errorf("test control %s: %w", what, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("test control %s: %w", what, err)
	}
	if out == nil && resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		return json.Unmarshal(data, out)
	}
	return fmt.Errorf("test control %s: %s: %s", what, resp.Status, data)
}

// controlClient calls the control endpoints; a provider that hangs fails
// the call instead of the test's whole run.
var controlClient = &http.Client{Timeout: 30 * time.Second}

// Stderr is what the provider has written to its standard error.
func (p *Provider) Stderr() string { return p.stderr.String() }

// Stop kills the provider and waits for it to exit.
func (p *Provider) Stop() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// lockedBuffer serialises writes to a buffer read by others.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
