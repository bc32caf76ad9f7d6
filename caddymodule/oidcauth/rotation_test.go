package oidcauth

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// kids are the key IDs p holds now.
func kids(p *Provider) []string {
	d := p.state.Load()
	if d == nil {
		return nil
	}
	keys, _ := d.keys.snapshot()
	var out []string
	for _, k := range keys {
		out = append(out, k.KeyID)
	}
	return out
}

// TestKeyRotationPickedUp rotates the provider's signing key while the
// relying party runs: the first ID token signed by the new key makes it
// fetch the JWKS again, long before the next scheduled refresh.
func TestKeyRotationPickedUp(t *testing.T) {
	o := startOP(t, 0, newTestKey(t, "old"))
	cfg := secretConfig(o)
	cfg.DiscoveryRefresh = time.Hour
	p := newLoaded(t, cfg)
	signIn := func() {
		t.Helper()
		l, cb := login(t, p, "alice")
		if _, err := p.Exchange(context.Background(), testBase, cb, l.Expect(), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	signIn()
	if got := kids(p); !slices.Equal(got, []string{"old"}) {
		t.Fatalf("keys before the rotation: %q", got)
	}
	o.rotate(t, newTestKey(t, "new"))
	signIn()
	if got := kids(p); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("keys after the rotation: %q", got)
	}
}

// TestRemovedKeyDroppedAtRefresh removes a key at the provider: after the
// next scheduled refresh, an ID token signed by it (here forged by an
// attacker holding the retired key) is refused.
func TestRemovedKeyDroppedAtRefresh(t *testing.T) {
	retired := newTestKey(t, "retired")
	o := startOP(t, 0, retired)
	mitm := &tamperer{}
	cfg := secretConfig(o)
	cfg.DiscoveryRefresh = 100 * time.Millisecond
	p := newLoaded(t, cfg, func(p *Provider) { p.HTTPClient = &http.Client{Transport: mitm, Timeout: 10 * time.Second} })
	withRetired := func(t *testing.T, _, c map[string]any) string {
		return sign(t, jose.RS256, retired.priv, retired.kid, c)
	}
	mitm.set(t, withRetired)
	l, cb := login(t, p, "alice")
	if _, err := p.Exchange(context.Background(), testBase, cb, l.Expect(), time.Now()); err != nil {
		t.Fatalf("the current key was refused: %v", err)
	}
	o.rotate(t, newTestKey(t, "current"))
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(kids(p), []string{"current"}) {
		if time.Now().After(deadline) {
			t.Fatalf("keys still %q 10 s after the rotation", kids(p))
		}
		time.Sleep(20 * time.Millisecond)
	}
	l, cb = login(t, p, "alice")
	_, err := p.Exchange(context.Background(), testBase, cb, l.Expect(), time.Now())
	mustRefuse(t, err, MessageNotAccepted)
}
