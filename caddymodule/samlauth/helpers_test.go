package samlauth

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// testSLO is the single logout endpoint of the SP under
// samltest.SPBaseURL.
const testSLO = samltest.SPBaseURL + "/saml/slo"

// spConfig is a Config with a fresh SP key pair and the IdP metadata file
// mdFile.
func spConfig(t testing.TB, mdFile string) Config {
	t.Helper()
	sp := samltest.NewKeyPair(t, t.TempDir(), "sp")
	return Config{IDPMetadataFile: mdFile, SPCert: sp.CertFile, SPKey: sp.KeyFile,
		EmailAttribute: "email", GroupsAttribute: "groups"}
}

// mustNew is New that fails the test on error.
func mustNew(t testing.TB, cfg Config) *Provider {
	t.Helper()
	p, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// memGuard is a ReplayGuard in memory, like the store's MarkOnce.
type memGuard struct {
	mu    sync.Mutex
	until map[string]time.Time
	calls []string
}

func newMemGuard() *memGuard { return &memGuard{until: map[string]time.Time{}} }

func (g *memGuard) MarkOnce(_ context.Context, key string, expires, now time.Time) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, key)
	if exp, ok := g.until[key]; ok && now.Before(exp) {
		return false, nil
	}
	g.until[key] = expires
	return true, nil
}

// failingGuard is a ReplayGuard whose store is down.
type failingGuard struct{ err error }

func (g failingGuard) MarkOnce(context.Context, string, time.Time, time.Time) (bool, error) {
	return false, g.err
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
