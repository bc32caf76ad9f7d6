package testbed

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The stand-in's acceptance of a consoleme_auth cookie, rule for rule as
// ConsoleMe (PyJWT 2.4) applies it.

// CheckToken reproduces ConsoleMe's acceptance of a cookie:
// jwt.decode(cookie, jwt_secret, algorithms="HS256") in PyJWT 2.4.0 with
// its defaults (leeway 0, no required claims, no audience given), then
// validate_and_return_jwt_token and BaseMtlsHandler.prepare. Exceptions that
// ConsoleMe catches (ExpiredSignatureError, InvalidSignatureError,
// DecodeError) reject the token; any other exception is a crash (HTTP 500).
func (c *StandIn) CheckToken(token string) AuthOutcome {
	reject := func(format string, a ...any) AuthOutcome {
		return AuthOutcome{Verdict: TokenRejected, Reason: fmt.Sprintf(format, a...)}
	}
	crash := func(format string, a ...any) AuthOutcome {
		return AuthOutcome{Verdict: TokenCrash, Reason: fmt.Sprintf(format, a...)}
	}

	// api_jws._load: segments, base64url and a JSON object header; every
	// failure is a DecodeError.
	dot := strings.LastIndexByte(token, '.')
	if dot < 0 {
		return reject("not enough segments")
	}
	signingInput, sigSeg := token[:dot], token[dot+1:]
	first := strings.IndexByte(signingInput, '.')
	if first < 0 {
		return reject("not enough segments")
	}
	headerRaw, err := pyB64Decode(signingInput[:first])
	if err != nil {
		return reject("invalid header padding")
	}
	payloadRaw, err := pyB64Decode(signingInput[first+1:])
	if err != nil {
		return reject("invalid payload padding")
	}
	sig, err := pyB64Decode(sigSeg)
	if err != nil {
		return reject("invalid crypto padding")
	}
	var header map[string]any
	if err := json.Unmarshal(headerRaw, &header); err != nil || header == nil {
		return reject("invalid header string")
	}

	// api_jws._verify_signature with algorithms="HS256": `alg not in
	// "HS256"` is a substring test on a str (a non-str alg raises
	// TypeError); a substring other than HS256 then misses the algorithm
	// table. Both escape as exceptions ConsoleMe does not catch.
	alg, ok := header["alg"].(string)
	if !ok || alg != "HS256" {
		return crash("alg %v is not HS256 (InvalidAlgorithmError)", header["alg"])
	}
	mac := hmac.New(sha256.New, []byte(c.Secret))
	mac.Write([]byte(signingInput))
	if !hmac.Equal(mac.Sum(nil), sig) {
		return reject("signature verification failed")
	}

	dec := json.NewDecoder(bytes.NewReader(payloadRaw))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return reject("invalid payload string")
	}
	now := c.Now().Unix()

	// _validate_iat. PyJWT only calls int() on it; ConsoleMe then computes
	// int(time.time()) - iat. The contract (DESIGN.md, PROTOCOL.md §7 and
	// checklist 12) is stricter than int(): iat must be present and a JSON
	// integer, so anything else is treated as the 500 a string or missing
	// iat produces in ConsoleMe.
	iatV, hasIat := claims["iat"]
	iat, isInt := JSONInteger(iatV)
	if hasIat && !isInt {
		return crash("iat %v is not an integer (InvalidIssuedAtError/TypeError)", iatV)
	}

	// _validate_nbf: int(nbf); ValueError is a DecodeError, TypeError is
	// uncaught; nbf > now raises ImmatureSignatureError, which ConsoleMe
	// does not catch.
	if v, ok := claims["nbf"]; ok {
		nbf, kind := pyInt(v)
		switch kind {
		case pyValueError:
			return reject("nbf %v must be an integer (DecodeError)", v)
		case pyTypeError:
			return crash("nbf %v: int() raises TypeError", v)
		}
		if nbf > now {
			return crash("nbf %d is in the future (ImmatureSignatureError)", nbf)
		}
	}

	// _validate_exp: exp < now is ExpiredSignatureError (caught).
	var exp int64
	if v, ok := claims["exp"]; ok {
		var kind pyIntResult
		exp, kind = pyInt(v)
		switch kind {
		case pyValueError:
			return reject("exp %v must be an integer (DecodeError)", v)
		case pyTypeError:
			return crash("exp %v: int() raises TypeError", v)
		}
		if exp < now {
			return reject("signature has expired (exp %d < now %d)", exp, now)
		}
	}

	// _validate_aud with audience=None: a truthy aud claim raises
	// InvalidAudienceError, which ConsoleMe does not catch.
	if v, ok := claims["aud"]; ok && pyTruthy(v) {
		return crash("aud %v present (InvalidAudienceError)", v)
	}

	// BaseMtlsHandler.prepare: int(time.time()) - None raises TypeError.
	if !hasIat {
		return crash("no iat claim: current_cert_age computation raises TypeError")
	}

	// validate_and_return_jwt_token reads the email claim and the groups
	// claim with a default of []. ConsoleMe then uses the email as the user
	// name and iterates the groups to map them to roles; anything but a
	// non-empty string and a list of strings fails there, so the stand-in
	// treats it as a crash.
	email, ok := claims[c.EmailClaim].(string)
	if !ok || email == "" {
		return crash("email claim %q is %v, not a non-empty string", c.EmailClaim, claims[c.EmailClaim])
	}
	groups := []string{}
	if v, ok := claims[c.GroupsClaim]; ok {
		list, ok := v.([]any)
		if !ok {
			return crash("groups claim %q is %v, not a list", c.GroupsClaim, v)
		}
		for _, g := range list {
			s, ok := g.(string)
			if !ok {
				return crash("groups claim %q holds %v, not a string", c.GroupsClaim, g)
			}
			groups = append(groups, s)
		}
	}
	return AuthOutcome{Verdict: TokenValid, Email: email, Groups: groups, IssuedAt: iat, Expires: exp}
}

// pyB64Decode decodes base64url with or without padding, as PyJWT's
// base64url_decode does after re-adding the padding.
func pyB64Decode(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

type pyIntResult int

const (
	pyIntOK pyIntResult = iota
	pyValueError
	pyTypeError
)

// pyInt mimics Python's int() on a value json.loads produced: numbers are
// truncated, numeric strings parsed, booleans are 0 or 1, other strings
// raise ValueError and null, lists and objects raise TypeError.
func pyInt(v any) (int64, pyIntResult) {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, pyIntOK
		}
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			// int(inf) is an OverflowError: uncaught, like a TypeError.
			return 0, pyTypeError
		}
		return int64(f), pyIntOK
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return 0, pyValueError
		}
		return n, pyIntOK
	case bool:
		if x {
			return 1, pyIntOK
		}
		return 0, pyIntOK
	}
	return 0, pyTypeError
}

// JSONInteger reports whether v is a JSON number written as an integer.
func JSONInteger(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok || strings.ContainsAny(string(n), ".eE") {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

// pyTruthy is Python truthiness for a value json.loads produced.
func pyTruthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case json.Number:
		f, err := x.Float64()
		return err != nil || f != 0
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}
