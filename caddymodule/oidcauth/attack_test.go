package oidcauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// tamperer is an attacker in the middle of the token response (or a
// provider gone rogue): it hands the ID token of every token response to
// forge and puts back what forge returns.
type tamperer struct {
	mu    sync.Mutex
	forge func(t *testing.T, header, claims map[string]any) string
	t     *testing.T
}

func (m *tamperer) set(t *testing.T, forge func(t *testing.T, header, claims map[string]any) string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.t, m.forge = t, forge
}

func (m *tamperer) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	m.mu.Lock()
	t, forge := m.t, m.forge
	m.mu.Unlock()
	if err != nil || forge == nil || req.URL.Path != "/token" || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var tr map[string]any
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, err
	}
	raw, _ := tr["id_token"].(string)
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Errorf("token response without a compact ID token: %s", body)
		return nil, io.ErrUnexpectedEOF
	}
	header, claims := map[string]any{}, map[string]any{}
	for i, dst := range []map[string]any{header, claims} {
		seg, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(seg, &dst) != nil {
			t.Errorf("undecodable ID token %q", raw)
		}
	}
	tr["id_token"] = forge(t, header, claims)
	body, _ = json.Marshal(tr)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return resp, nil
}

// sign makes a JWS of claims with key, under kid.
func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unsigned makes an alg "none" JWT of claims.
func unsigned(kid string, claims map[string]any) string {
	h, _ := json.Marshal(map[string]any{"alg": "none", "typ": "JWT", "kid": kid})
	p, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

// TestTamperedIDTokens has an attacker in the middle of the token response
// replace the genuine ID token. Those signed again with the provider's own
// key but with a claim changed show that each check holds on its own.
func TestTamperedIDTokens(t *testing.T) {
	k1 := newTestKey(t, "k1")
	o := startOP(t, 0, k1)
	mitm := &tamperer{}
	p := newLoaded(t, secretConfig(o), func(p *Provider) { p.HTTPClient = &http.Client{Transport: mitm, Timeout: 10 * time.Second} })
	now := func() float64 { return float64(time.Now().Unix()) }
	resign := func(change func(c map[string]any)) func(*testing.T, map[string]any, map[string]any) string {
		return func(t *testing.T, _, c map[string]any) string {
			change(c)
			return sign(t, jose.RS256, k1.priv, k1.kid, c)
		}
	}
	attacker := newTestKey(t, "k1")
	cases := []struct {
		name   string
		forge  func(*testing.T, map[string]any, map[string]any) string
		accept bool
	}{
		{"signed again unchanged (control)", resign(func(map[string]any) {}), true},
		{"expired within the clock skew", resign(func(c map[string]any) { c["exp"] = now() - 20 }), true},
		{"wrong audience", resign(func(c map[string]any) { c["aud"] = "another-client" }), false},
		{"several audiences, no azp", resign(func(c map[string]any) { c["aud"] = []string{secretClient, "another-client"} }), false},
		{"azp of another client", resign(func(c map[string]any) { c["azp"] = "another-client" }), false},
		{"expired", resign(func(c map[string]any) { c["exp"], c["iat"] = now()-600, now()-1200 }), false},
		{"issued in the future", resign(func(c map[string]any) { c["iat"], c["exp"] = now()+600, now()+1200 }), false},
		{"another issuer", resign(func(c map[string]any) { c["iss"] = "https://evil.example" }), false},
		{"no nonce", resign(func(c map[string]any) { delete(c, "nonce") }), false},
		{"alg none", func(t *testing.T, h, c map[string]any) string { return unsigned(k1.kid, c) }, false},
		{"HS256 keyed with the client secret", func(t *testing.T, h, c map[string]any) string {
			return sign(t, jose.HS256, []byte(clientSecret), k1.kid, c)
		}, false},
		{"signed by another key under the provider's kid", func(t *testing.T, h, c map[string]any) string {
			c["email"] = "mallory@example.com"
			return sign(t, jose.RS256, attacker.priv, k1.kid, c)
		}, false},
		{"payload changed, signature kept", func(t *testing.T, h, c map[string]any) string {
			genuine := sign(t, jose.RS256, k1.priv, k1.kid, c)
			c["email"] = "mallory@example.com"
			p, _ := json.Marshal(c)
			parts := strings.Split(genuine, ".")
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(p) + "." + parts[2]
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mitm.set(t, tc.forge)
			defer mitm.set(nil, nil)
			l, cb := login(t, p, "alice")
			id, err := p.Exchange(context.Background(), testBase, cb, l.Expect(), time.Now())
			if tc.accept {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", id)
			}
			mustRefuse(t, err, MessageNotAccepted)
		})
	}
}

// userinfoSwap is an attacker in the middle of the userinfo response: it
// answers for another user.
type userinfoSwap struct{}

func (userinfoSwap) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || req.URL.Path != "/me" {
		return resp, err
	}
	resp.Body.Close()
	body := []byte(`{"sub":"mallory","email":"mallory@example.com","ui_groups":["admins"]}`)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return resp, nil
}

// TestUserinfoOfAnotherUser: claims from a userinfo response whose sub is
// not the ID token's are refused.
func TestUserinfoOfAnotherUser(t *testing.T) {
	o := startOP(t, 0, newTestKey(t, "k1"))
	cfg := secretConfig(o)
	cfg.GroupsClaim, cfg.GroupsFromUserinfo = "ui_groups", true
	p := newLoaded(t, cfg, func(p *Provider) { p.HTTPClient = &http.Client{Transport: userinfoSwap{}, Timeout: 10 * time.Second} })
	l, cb := login(t, p, "alice")
	_, err := p.Exchange(context.Background(), testBase, cb, l.Expect(), time.Now())
	mustRefuse(t, err, MessageNotAccepted)
}
