package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const secret = "test-secret-not-for-production"

func newCodec(t *testing.T) *Codec {
	t.Helper()
	m, err := NewCodec(secret, "email", "groups", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func decodePart(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMintMatchesConsoleMe(t *testing.T) {
	m := newCodec(t)
	now := time.Unix(1_800_000_000, 500_000_000)
	tok, exp, err := m.Mint("alice@example.com", []string{"eng", "admins"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(1_800_003_600, 0); !exp.Equal(want) {
		t.Errorf("exp = %v, want %v", exp, want)
	}
	h := decodePart(t, tok, 0)
	if h["alg"] != "HS256" || h["typ"] != "JWT" || len(h) != 2 {
		t.Errorf("header = %v", h)
	}
	c := decodePart(t, tok, 1)
	// nbf and iat lie 5 s back, so that a ConsoleMe whose clock is up to
	// 5 s behind ours accepts the token (PyJWT 2.6 checks iat too).
	for name, want := range map[string]string{"nbf": "1799999995", "iat": "1799999995", "exp": "1800003600"} {
		if got, ok := c[name].(json.Number); !ok || got.String() != want {
			t.Errorf("%s = %v, want integer %s", name, c[name], want)
		}
	}
	if c["email"] != "alice@example.com" {
		t.Errorf("email = %v", c["email"])
	}
	if g, ok := c["groups"].([]any); !ok || len(g) != 2 || g[0] != "eng" || g[1] != "admins" {
		t.Errorf("groups = %v", c["groups"])
	}
	if _, ok := c["aud"]; ok {
		t.Error("aud must never be minted")
	}
	// The claim order is ConsoleMe's (PyJWT keeps insertion order).
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if !strings.HasPrefix(string(raw), `{"nbf":1799999995,"iat":1799999995,"exp":1800003600,"email":`) {
		t.Errorf("claims = %s", raw)
	}
	// A standard library verifies it with the same secret.
	if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return now })); err != nil {
		t.Errorf("golang-jwt rejects minted token: %v", err)
	}
}

func TestMintNilGroupsIsEmptyList(t *testing.T) {
	m := newCodec(t)
	tok, _, err := m.Mint("a@x", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if !strings.Contains(string(raw), `"groups":[]`) {
		t.Errorf("claims = %s, want groups []", raw)
	}
}

func TestCustomClaimNames(t *testing.T) {
	m, err := NewCodec(secret, "mail", "memberOf", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, _, err := m.Mint("a@x", []string{"g"}, now)
	if err != nil {
		t.Fatal(err)
	}
	c := decodePart(t, tok, 1)
	if c["mail"] != "a@x" || c["memberOf"] == nil || c["email"] != nil {
		t.Errorf("claims = %v", c)
	}
	id, err := m.Verify(tok, now)
	if err != nil || id.Email != "a@x" || len(id.Groups) != 1 {
		t.Errorf("Verify = %+v, %v", id, err)
	}
	if _, err := newCodec(t).Verify(tok, now); err == nil {
		t.Error("a minter reading claim 'email' accepted a token without it")
	}
}

func TestMintAtCertificateAge(t *testing.T) {
	m := newCodec(t)
	now := time.Unix(1_800_000_000, 0)
	notBefore := now.Add(-72 * time.Hour)
	tok, _, err := m.MintAt("a@x", nil, notBefore, now)
	if err != nil {
		t.Fatal(err)
	}
	id, err := m.Verify(tok, now)
	if err != nil {
		t.Fatal(err)
	}
	if !id.IssuedAt.Equal(notBefore) {
		t.Errorf("iat = %v, want %v", id.IssuedAt, notBefore)
	}
	// iat in the future would give a future nbf without the clamp.
	tok, _, err = m.MintAt("a@x", nil, now.Add(time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	if c := decodePart(t, tok, 1); c["nbf"].(json.Number).String() != "1799999995" {
		t.Errorf("nbf = %v, want clamped to now-5s", c["nbf"])
	}
}

func sign(t *testing.T, method jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyRules(t *testing.T) {
	m := newCodec(t)
	now := time.Unix(1_800_000_000, 0)
	n := now.Unix()
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"nbf": n - 5, "iat": n, "exp": n + 60, "email": "a@x", "groups": []string{"g"}}
	}
	with := func(k string, v any) jwt.MapClaims { c := good(); c[k] = v; return c }
	without := func(k string) jwt.MapClaims { c := good(); delete(c, k); return c }
	cases := []struct {
		name string
		tok  string
		ok   bool
	}{
		{"valid", sign(t, jwt.SigningMethodHS256, []byte(secret), good()), true},
		{"exp equals now", sign(t, jwt.SigningMethodHS256, []byte(secret), with("exp", n)), true},
		{"no nbf", sign(t, jwt.SigningMethodHS256, []byte(secret), without("nbf")), true},
		{"no groups", sign(t, jwt.SigningMethodHS256, []byte(secret), without("groups")), true},
		{"expired", sign(t, jwt.SigningMethodHS256, []byte(secret), with("exp", n-1)), false},
		{"future nbf", sign(t, jwt.SigningMethodHS256, []byte(secret), with("nbf", n+1)), false},
		{"aud", sign(t, jwt.SigningMethodHS256, []byte(secret), with("aud", "consoleme")), false},
		{"float iat", sign(t, jwt.SigningMethodHS256, []byte(secret), with("iat", float64(n)+0.5)), false},
		{"string iat", sign(t, jwt.SigningMethodHS256, []byte(secret), with("iat", "now")), false},
		{"no iat", sign(t, jwt.SigningMethodHS256, []byte(secret), without("iat")), false},
		{"no exp", sign(t, jwt.SigningMethodHS256, []byte(secret), without("exp")), false},
		{"no email", sign(t, jwt.SigningMethodHS256, []byte(secret), without("email")), false},
		{"groups not a list", sign(t, jwt.SigningMethodHS256, []byte(secret), with("groups", "g")), false},
		{"groups with a number", sign(t, jwt.SigningMethodHS256, []byte(secret), with("groups", []any{"g", 1})), false},
		{"other secret", sign(t, jwt.SigningMethodHS256, []byte("other"), good()), false},
		{"HS512", sign(t, jwt.SigningMethodHS512, []byte(secret), good()), false},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good()), false},
		{"garbage", "not.a.jwt", false},
		{"empty", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := m.Verify(tc.tok, now)
			if tc.ok {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if id.Email != "a@x" || id.Groups == nil {
					t.Errorf("identity = %+v", id)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Error("error leaks the secret")
			}
		})
	}
}

func TestNewCodecRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct{ secret, e, g string }{
		{"", "email", "groups"},
		{"s", "", "groups"},
		{"s", "email", "email"},
		{"s", "exp", "groups"},
		{"s", "email", "aud"},
	} {
		if _, err := NewCodec(tc.secret, tc.e, tc.g, time.Hour); err == nil {
			t.Errorf("NewCodec(%q,%q,%q) accepted", tc.secret, tc.e, tc.g)
		}
	}
	if _, err := NewCodec("s", "email", "groups", 0); err == nil {
		t.Error("zero lifetime accepted")
	}
}

func BenchmarkMint(b *testing.B) {
	m, _ := NewCodec(secret, "email", "groups", time.Hour)
	now := time.Now()
	groups := []string{"engineering", "consoleme-admins"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := m.Mint("alice@example.com", groups, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	m, _ := NewCodec(secret, "email", "groups", time.Hour)
	now := time.Now()
	tok, _, _ := m.Mint("alice@example.com", []string{"engineering"}, now)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Verify(tok, now); err != nil {
			b.Fatal(err)
		}
	}
}

func TestMintSubjectCarriesSessionClaims(t *testing.T) {
	c := newCodec(t)
	now := time.Unix(1_800_000_000, 0)
	authTime := now.Add(-3 * time.Hour)
	notAfter := now.Add(10 * time.Minute)
	tok, exp, err := c.MintSubject(Subject{Email: "a@x", Groups: []string{"g"}, Method: "cli", AuthTime: authTime, NotAfter: notAfter}, now, now)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(notAfter) {
		t.Errorf("exp = %v, want the NotAfter cap %v", exp, notAfter)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	payload := string(raw)
	want := `{"nbf":1799999995,"iat":1799999995,"exp":1800000600,"email":"a@x","groups":["g"],"auth_method":"cli","auth_time":1799989200}`
	if payload != want {
		t.Errorf("payload\n got %s\nwant %s", payload, want)
	}
	id, err := c.Verify(tok, now)
	if err != nil {
		t.Fatal(err)
	}
	if id.Method != "cli" || !id.AuthTime.Equal(authTime) {
		t.Errorf("identity method %q auth time %v, want cli and %v", id.Method, id.AuthTime, authTime)
	}

	// A token without the claims (ConsoleMe's own) signed in when issued.
	plain, _, _ := c.Mint("b@x", nil, now)
	id, err = c.Verify(plain, now)
	if err != nil {
		t.Fatal(err)
	}
	if id.Method != "" || !id.AuthTime.Equal(id.IssuedAt) {
		t.Errorf("plain token: method %q auth time %v, want empty and iat %v", id.Method, id.AuthTime, id.IssuedAt)
	}
	if _, err := NewCodec(secret, ClaimAuthTime, "groups", time.Hour); err == nil {
		t.Error("auth_time accepted as the email claim name")
	}
}
