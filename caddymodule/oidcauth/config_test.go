package oidcauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := Config{Issuer: "https://login.example.com/realms/x", ClientID: "c", ClientSecret: "s"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no issuer", func(c *Config) { c.Issuer = "" }, "issuer: required"},
		{"relative issuer", func(c *Config) { c.Issuer = "login.example.com" }, "issuer: "},
		{"issuer with query", func(c *Config) { c.Issuer = "https://login.example.com/?a=b" }, "issuer: "},
		{"http issuer", func(c *Config) { c.Issuer = "http://login.example.com" }, "issuer: "},
		{"ftp issuer", func(c *Config) { c.Issuer = "ftp://login.example.com" }, "issuer: "},
		{"no client_id", func(c *Config) { c.ClientID = " " }, "client_id: required"},
		{"no client auth", func(c *Config) { c.ClientSecret = "" }, "client_secret or private_key_file"},
		{"both client auths", func(c *Config) { c.PrivateKeyFile = "k.pem" }, "client_secret and private_key_file"},
		{"key id without key", func(c *Config) { c.PrivateKeyID = "k" }, "private_key_id: "},
		{"scope with a space", func(c *Config) { c.Scopes = []string{"openid email"} }, "scopes: "},
		{"empty scope", func(c *Config) { c.Scopes = []string{""} }, "scopes: "},
		{"negative refresh", func(c *Config) { c.DiscoveryRefresh = -time.Second }, "discovery_refresh: "},
		{"negative skew", func(c *Config) { c.ClockSkew = -time.Second }, "clock_skew: "},
		{"unbounded skew", func(c *Config) { c.ClockSkew = time.Hour }, "clock_skew: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error starting with %q", err, tc.want)
			}
			if _, err := New(c, nil); err == nil {
				t.Fatal("New accepted what Validate refuses")
			}
		})
	}
	for _, issuer := range []string{"http://127.0.0.1:8080", "http://localhost:9000/op", "http://[::1]:1"} {
		c := ok
		c.Issuer = issuer
		if err := c.Validate(); err != nil {
			t.Errorf("loopback issuer %s: %v", issuer, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	var c Config
	if got := c.scopes(); !slices.Equal(got, []string{"openid", "email", "profile"}) {
		t.Errorf("default scopes %q", got)
	}
	c.Scopes = []string{"email", "openid", "groups"}
	if got := c.scopes(); !slices.Equal(got, []string{"openid", "email", "groups"}) {
		t.Errorf("scopes %q", got)
	}
	if c.emailClaim() != "email" || c.refresh() != time.Hour || c.skew() != time.Minute {
		t.Error("wrong defaults")
	}
}

// writePEM writes a PEM block to a file in a temporary directory.
func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	data := append([]byte("junk before the key\n"), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPrivateKeyFile(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	shortRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalECPrivateKey(p384)
	good := []struct {
		name, path, alg string
	}{
		{"PKCS#1 RSA", writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), "RS256"},
		{"SEC 1 P-384", writePEM(t, "EC PRIVATE KEY", p384DER), "ES384"},
	}
	for _, tc := range good {
		p, err := New(Config{Issuer: "https://op.example", ClientID: "c", PrivateKeyFile: tc.path}, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		data, ok := p.ClientJWKS()
		if !ok {
			t.Fatalf("%s: no ClientJWKS", tc.name)
		}
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(data, &set); err != nil || len(set.Keys) != 1 {
			t.Fatalf("%s: ClientJWKS %s", tc.name, data)
		}
		k := set.Keys[0]
		if k["alg"] != tc.alg || k["use"] != "sig" || k["kid"] != p.keyID || k["d"] != nil {
			t.Errorf("%s: ClientJWKS key %v", tc.name, k)
		}
	}
	p, err := New(Config{Issuer: "https://op.example", ClientID: "c", PrivateKeyFile: good[0].path, PrivateKeyID: "my-kid"}, nil)
	if err != nil || p.keyID != "my-kid" {
		t.Errorf("private_key_id not used: %v %q", err, p.keyID)
	}
	secret, _ := New(Config{Issuer: "https://op.example", ClientID: "c", ClientSecret: "s"}, nil)
	if _, ok := secret.ClientJWKS(); ok {
		t.Error("ClientJWKS with a client secret")
	}
	bad := map[string]string{
		"missing file":  filepath.Join(t.TempDir(), "nope.pem"),
		"no key block":  writePEM(t, "CERTIFICATE", []byte("x")),
		"garbled key":   writePEM(t, "PRIVATE KEY", []byte("not DER")),
		"short RSA key": writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(shortRSA)),
	}
	for name, path := range bad {
		_, err := New(Config{Issuer: "https://op.example", ClientID: "c", PrivateKeyFile: path}, nil)
		if err == nil || !strings.HasPrefix(err.Error(), "private_key_file: ") {
			t.Errorf("%s: %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "not DER") {
			t.Errorf("%s: the error quotes the file: %v", name, err)
		}
	}
}

func TestStringList(t *testing.T) {
	cases := map[string][]string{
		``:                 {},
		`null`:             {},
		`"solo"`:           {"solo"},
		`[" a ", "", "b"]`: {"a", "b"},
		`[]`:               {},
	}
	for in, want := range cases {
		got, err := stringList(json.RawMessage(in))
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("stringList(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`3`, `{"a":1}`, `[1,2]`} {
		if _, err := stringList(json.RawMessage(in)); err == nil {
			t.Errorf("stringList(%s) accepted", in)
		}
	}
	for in, want := range map[string]bool{`true`: true, `false`: false, `"true"`: true, `"false"`: false, `1`: false} {
		if truthy(json.RawMessage(in)) != want {
			t.Errorf("truthy(%s) != %v", in, want)
		}
	}
}

func TestParseJWKS(t *testing.T) {
	k := newTestKey(t, "k")
	pub, _ := json.Marshal(map[string]any{"keys": []any{
		map[string]any{"kty": "unknown-type"},
		map[string]any{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
	}})
	if _, err := parseJWKS(pub); err == nil {
		t.Error("a JWKS of unusable keys was accepted")
	}
	priv, _ := json.Marshal(jwks(k))
	keys, err := parseJWKS(priv)
	if err == nil {
		t.Errorf("private keys were taken as verification keys: %v", keys)
	}
	mixed := []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"},` + string(mustJSON(t, jwks(k).Keys[0].Public())) + `]}`)
	keys, err = parseJWKS(mixed)
	if err != nil || len(keys) != 1 || keys[0].KeyID != "k" {
		t.Errorf("parseJWKS(mixed) = %v, %v", keys, err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
