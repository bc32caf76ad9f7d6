package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// referenceAccepts is an independent reading of ConsoleMe's rules for a
// token, written from the JWT specification with the standard library
// only: three base64url parts, an HS256 header, a valid HMAC-SHA256 over
// the first two, and integer exp (not past), nbf (not future), iat, and a
// non-empty string email.
func referenceAccepts(tok, secret string, now time.Time) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return false
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return false
	}
	var h map[string]any
	if json.Unmarshal(hb, &h) != nil || h["alg"] != "HS256" {
		return false
	}
	var c map[string]any
	d := json.NewDecoder(strings.NewReader(string(pb)))
	d.UseNumber()
	if d.Decode(&c) != nil {
		return false
	}
	num := func(k string) (int64, bool) {
		n, ok := c[k].(json.Number)
		if !ok {
			return 0, false
		}
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		f, err := n.Float64() // PyJWT takes 1.8e9 as an integer too
		if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, false
		}
		return int64(f), true
	}
	if _, present := c["aud"]; present {
		return false
	}
	if g, present := c["groups"]; present && g != nil {
		list, ok := g.([]any)
		if !ok {
			return false
		}
		for _, x := range list {
			if _, ok := x.(string); !ok {
				return false
			}
		}
	}
	if _, present := c["auth_time"]; present {
		if _, ok := num("auth_time"); !ok {
			return false
		}
	}
	for _, k := range []string{"auth_method", "sid"} {
		if v, present := c[k]; present {
			if _, ok := v.(string); !ok {
				return false
			}
		}
	}
	exp, ok := num("exp")
	if !ok || exp < now.Unix() {
		return false
	}
	if _, ok := num("iat"); !ok {
		return false
	}
	if _, present := c["nbf"]; present {
		if nbf, ok := num("nbf"); !ok || nbf > now.Unix() {
			return false
		}
	}
	email, _ := c["email"].(string)
	return email != ""
}

// FuzzVerify compares Verify with the reference above on tokens built from
// a fuzzed header and payload, signed with the secret (or with the
// signature broken): both must accept exactly the same tokens, and what
// Verify accepts must verify again with the same claims.
func FuzzVerify(f *testing.F) {
	const secret = "fuzz-secret"
	c, err := NewCodec(secret, "email", "groups", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	good, _, err := c.MintSubject(Subject{Email: "a@example.com", Groups: []string{"g"}, Method: "idp", AuthTime: now, SessionID: "sid"}, now, now)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := c.Verify(good, now); err != nil || !referenceAccepts(good, secret, now) {
		f.Fatalf("the seed token is not accepted by both: %v", err)
	}
	parts := strings.Split(good, ".")
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	f.Add(hdr, payload, false)
	f.Add(hdr, payload, true)
	f.Add([]byte(`{"alg":"none"}`), payload, false)
	f.Add([]byte(`{"alg":"HS256","typ":"JWT"}`), []byte(`{"nbf":1.7e9,"iat":1700000000,"exp":1.9e9,"email":"x","aud":"y"}`), false)
	f.Add([]byte(`{"alg":"HS256"}`), []byte(`{"iat":1,"exp":1900000000,"email":"x","groups":[1],"sid":2}`), false)
	f.Fuzz(func(t *testing.T, header, payload []byte, breakSig bool) {
		signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(signing))
		sig := mac.Sum(nil)
		if breakSig {
			sig[0] ^= 1
		}
		tok := signing + "." + base64.RawURLEncoding.EncodeToString(sig)
		id, err := c.Verify(tok, now)
		if ref := referenceAccepts(tok, secret, now); ref != (err == nil) {
			t.Fatalf("Verify: %v, the reference accepts: %v, for header %q payload %q", err, ref, header, payload)
		}
		if err != nil {
			return
		}
		again, err := c.Verify(tok, now)
		if err != nil || again.Email != id.Email || again.SessionID != id.SessionID || len(again.Groups) != len(id.Groups) {
			t.Fatalf("a second Verify disagrees: %v %+v %+v", err, again, id)
		}
	})
}
