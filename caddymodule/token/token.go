// Package token mints and verifies the HS256 JWT that ConsoleMe accepts as
// its auth cookie (consoleme_auth), with the claim rules of ConsoleMe's
// validate_and_return_jwt_token (PyJWT 2.4): leeway 0, exp not in the past,
// nbf not in the future, integer iat, no aud, HS256 only.
//
// Besides ConsoleMe's claims (nbf, iat, exp, email, groups) a token may carry
// two that ConsoleMe ignores: auth_method (how the session was obtained) and
// auth_time (when the user last signed in at the identity provider).
package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// NotBeforeSkew is how far before "now" a minted token's nbf lies, as in
// ConsoleMe's generate_jwt_token.
const NotBeforeSkew = 5 * time.Second

// Errors returned by Verify. Every failure wraps ErrInvalid.
var (
	ErrInvalid = errors.New("invalid token")
	ErrExpired = errors.New("token expired")
)

// Names of the claims ConsoleMe ignores and this package adds.
const (
	ClaimAuthMethod = "auth_method"
	ClaimAuthTime   = "auth_time"
	// ClaimSessionID names the session a token belongs to: a browser
	// session keeps it when renewed; each CLI token has its own.
	ClaimSessionID = "sid"
)

// Identity is who a verified token speaks for.
type Identity struct {
	Email    string
	Groups   []string
	IssuedAt time.Time
	Expires  time.Time
	// Method is the auth_method claim, empty when absent (a token minted
	// by ConsoleMe itself or by an older version of this module).
	Method string
	// AuthTime is the auth_time claim, or IssuedAt when absent.
	AuthTime time.Time
	// SessionID is the sid claim, empty when absent.
	SessionID string
}

// Subject is what a minted token says: who, and how they signed in.
type Subject struct {
	Email  string
	Groups []string
	// Method becomes the auth_method claim; empty leaves it out.
	Method string
	// AuthTime becomes the auth_time claim; zero leaves it out.
	AuthTime time.Time
	// NotAfter, when set, caps the token's exp (which is otherwise now +
	// the codec's lifetime).
	NotAfter time.Time
	// SessionID becomes the sid claim; empty leaves it out.
	SessionID string
}

// Codec mints and verifies ConsoleMe JWTs over one secret and claim naming.
// Its fields are set once and it is safe for concurrent use.
type Codec struct {
	secret      []byte
	emailClaim  string
	groupsClaim string
	lifetime    time.Duration
	parser      *jwt.Parser
}

// NewCodec returns a Codec over secret (the UTF-8 bytes of ConsoleMe's
// jwt_secret) with the given claim names and token lifetime.
func NewCodec(secret, emailClaim, groupsClaim string, lifetime time.Duration) (*Codec, error) {
	if secret == "" {
		return nil, errors.New("empty jwt secret")
	}
	if emailClaim == "" || groupsClaim == "" || emailClaim == groupsClaim {
		return nil, fmt.Errorf("email claim %q and groups claim %q must be distinct and non-empty", emailClaim, groupsClaim)
	}
	for _, c := range []string{emailClaim, groupsClaim} {
		switch c {
		case "nbf", "iat", "exp", "aud", ClaimAuthMethod, ClaimAuthTime, ClaimSessionID:
			return nil, fmt.Errorf("claim name %q is reserved", c)
		}
	}
	if lifetime <= 0 {
		return nil, errors.New("token lifetime must be positive")
	}
	return &Codec{
		secret:      []byte(secret),
		emailClaim:  emailClaim,
		groupsClaim: groupsClaim,
		lifetime:    lifetime,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{"HS256"}),
			jwt.WithJSONNumber(),
			jwt.WithoutClaimsValidation(), // done by hand: PyJWT's rules differ
		),
	}, nil
}

// Lifetime is how long a minted token is valid.
func (m *Codec) Lifetime() time.Duration { return m.lifetime }

// claims is a claim set that marshals in ConsoleMe's insertion order (nbf,
// iat, exp, email, groups) with configurable names for the last two, then
// the optional auth_method, auth_time and sid.
type claims struct {
	nbf, iat, exp        int64
	emailName, groupName string
	email                string
	groups               []string
	method               string
	authTime             int64 // 0: absent
	sid                  string
}

func (c claims) MarshalJSON() ([]byte, error) {
	email, err := json.Marshal(c.email)
	if err != nil {
		return nil, err
	}
	groups := c.groups
	if groups == nil {
		groups = []string{} // a list, never null
	}
	gj, err := json.Marshal(groups)
	if err != nil {
		return nil, err
	}
	en, _ := json.Marshal(c.emailName)
	gn, _ := json.Marshal(c.groupName)
	b := make([]byte, 0, 64+len(email)+len(gj)+len(en)+len(gn))
	b = fmt.Appendf(b, `{"nbf":%d,"iat":%d,"exp":%d,`, c.nbf, c.iat, c.exp)
	b = append(b, en...)
	b = append(b, ':')
	b = append(b, email...)
	b = append(b, ',')
	b = append(b, gn...)
	b = append(b, ':')
	b = append(b, gj...)
	if c.method != "" {
		mj, err := json.Marshal(c.method)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"`+ClaimAuthMethod+`":`...)
		b = append(b, mj...)
	}
	if c.authTime != 0 {
		b = fmt.Appendf(b, `,"`+ClaimAuthTime+`":%d`, c.authTime)
	}
	if c.sid != "" {
		sj, err := json.Marshal(c.sid)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"`+ClaimSessionID+`":`...)
		b = append(b, sj...)
	}
	return append(b, '}'), nil
}

// The jwt.Claims methods are only used by the library when validating; we
// never validate through it, but the type must satisfy the interface.
func (c claims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (c claims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (c claims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c claims) GetIssuer() (string, error)                   { return "", nil }
func (c claims) GetSubject() (string, error)                  { return "", nil }
func (c claims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// Mint returns a signed token for email and groups, issued at now, and its
// expiry (the integer the poller returns as "expiration").
func (m *Codec) Mint(email string, groups []string, now time.Time) (string, time.Time, error) {
	return m.MintSubject(Subject{Email: email, Groups: groups}, now, now)
}

// MintAt is Mint with an explicit issued-at time (which may lie in the past,
// for example a client certificate's NotBefore).
func (m *Codec) MintAt(email string, groups []string, issuedAt, now time.Time) (string, time.Time, error) {
	return m.MintSubject(Subject{Email: email, Groups: groups}, issuedAt, now)
}

// MintSubject returns a signed token for s and its expiry: iat is issuedAt
// and nbf is issuedAt − 5 s, each never later than now − 5 s (so a
// verifier up to 5 s behind accepts the token), and exp is now + lifetime,
// or s.NotAfter when that is earlier.
func (m *Codec) MintSubject(s Subject, issuedAt, now time.Time) (string, time.Time, error) {
	if s.Email == "" {
		return "", time.Time{}, errors.New("minting token: empty email")
	}
	exp := now.Add(m.lifetime)
	if !s.NotAfter.IsZero() && s.NotAfter.Before(exp) {
		exp = s.NotAfter
	}
	exp = exp.Truncate(time.Second)
	// A verifier whose clock is a few seconds behind ours must not see nbf
	// or iat in its future (PyJWT 2.6, which real ConsoleMe runs on, checks
	// both): both lie at least NotBeforeSkew in the past.
	lim := now.Add(-NotBeforeSkew)
	nbf := issuedAt.Add(-NotBeforeSkew)
	if nbf.After(lim) {
		nbf = lim
	}
	iat := issuedAt
	if iat.After(lim) {
		iat = lim
	}
	c := claims{
		nbf: nbf.Unix(), iat: iat.Unix(), exp: exp.Unix(),
		emailName: m.emailClaim, groupName: m.groupsClaim,
		email: s.Email, groups: s.Groups, method: s.Method, sid: s.SessionID,
	}
	if !s.AuthTime.IsZero() {
		c.authTime = s.AuthTime.Unix()
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(m.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("signing token: %w", err)
	}
	return tok, exp, nil
}

// Verify checks tok the way ConsoleMe does and returns its identity. Unlike
// ConsoleMe, which answers 500 for some of these, every bad token is simply
// invalid here; exp and a non-empty email are required.
func (m *Codec) Verify(tok string, now time.Time) (*Identity, error) {
	var mc jwt.MapClaims
	_, err := m.parser.ParseWithClaims(tok, &mc, func(*jwt.Token) (any, error) { return m.secret, nil })
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, ok := mc["aud"]; ok {
		return nil, fmt.Errorf("%w: aud claim present", ErrInvalid)
	}
	exp, ok := intClaim(mc, "exp")
	if !ok {
		return nil, fmt.Errorf("%w: exp missing or not an integer", ErrInvalid)
	}
	if exp < now.Unix() {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, ErrExpired)
	}
	if _, present := mc["nbf"]; present {
		nbf, ok := intClaim(mc, "nbf")
		if !ok {
			return nil, fmt.Errorf("%w: nbf not an integer", ErrInvalid)
		}
		if nbf > now.Unix() {
			return nil, fmt.Errorf("%w: nbf in the future", ErrInvalid)
		}
	}
	iat, ok := intClaim(mc, "iat")
	if !ok {
		return nil, fmt.Errorf("%w: iat missing or not an integer", ErrInvalid)
	}
	return m.identity(mc, iat, exp)
}

// identity reads who a token speaks for from its claims.
func (m *Codec) identity(mc jwt.MapClaims, iat, exp int64) (*Identity, error) {
	email, _ := mc[m.emailClaim].(string)
	if email == "" {
		return nil, fmt.Errorf("%w: no %s claim", ErrInvalid, m.emailClaim)
	}
	id := &Identity{Email: email, Groups: []string{}, IssuedAt: time.Unix(iat, 0), Expires: time.Unix(exp, 0)}
	id.AuthTime = id.IssuedAt
	if _, present := mc[ClaimAuthTime]; present {
		at, ok := intClaim(mc, ClaimAuthTime)
		if !ok {
			return nil, fmt.Errorf("%w: %s not an integer", ErrInvalid, ClaimAuthTime)
		}
		id.AuthTime = time.Unix(at, 0)
	}
	if raw, present := mc[ClaimAuthMethod]; present {
		method, ok := raw.(string)
		if !ok {
			return nil, fmt.Errorf("%w: %s not a string", ErrInvalid, ClaimAuthMethod)
		}
		id.Method = method
	}
	if raw, present := mc[ClaimSessionID]; present {
		sid, ok := raw.(string)
		if !ok {
			return nil, fmt.Errorf("%w: %s not a string", ErrInvalid, ClaimSessionID)
		}
		id.SessionID = sid
	}
	if raw, present := mc[m.groupsClaim]; present && raw != nil {
		list, ok := raw.([]any)
		if !ok {
			return nil, fmt.Errorf("%w: %s claim is not a list", ErrInvalid, m.groupsClaim)
		}
		for _, g := range list {
			s, ok := g.(string)
			if !ok {
				return nil, fmt.Errorf("%w: %s claim holds a non-string", ErrInvalid, m.groupsClaim)
			}
			id.Groups = append(id.Groups, s)
		}
	}
	return id, nil
}

// intClaim returns an integer-valued numeric claim; floats with a fraction,
// strings and other types are not integers (PyJWT rejects them too).
func intClaim(mc jwt.MapClaims, name string) (int64, bool) {
	n, ok := mc[name].(json.Number)
	if !ok {
		return 0, false
	}
	if i, err := n.Int64(); err == nil {
		return i, true
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}
