package oidcauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/internal/pemfile"
)

// clientAssertionType is the client_assertion_type of private_key_jwt
// (RFC 7523).
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientAssertionTTL is how long a client assertion is valid.
const clientAssertionTTL = time.Minute

// clientAuthOptions are the extra token request parameters of
// private_key_jwt: a fresh assertion signed with the client key, whose
// issuer and subject are the client ID and whose audience is the token
// endpoint. With a client secret there are none.
func (p *Provider) clientAuthOptions(tokenURL string, now time.Time) ([]oauth2.AuthCodeOption, error) {
	if p.key == nil {
		return nil, nil
	}
	alg, err := signingAlg(p.key)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: p.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), p.keyID))
	if err != nil {
		return nil, fmt.Errorf("private_key_jwt: %w", err)
	}
	jti, err := randomString()
	if err != nil {
		return nil, err
	}
	claims := jwt.Claims{
		Issuer:    p.cfg.ClientID,
		Subject:   p.cfg.ClientID,
		Audience:  jwt.Audience{tokenURL},
		ID:        jti,
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Second)),
		Expiry:    jwt.NewNumericDate(now.Add(clientAssertionTTL)),
	}
	assertion, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return nil, fmt.Errorf("private_key_jwt: %w", err)
	}
	return []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("client_assertion_type", clientAssertionType),
		oauth2.SetAuthURLParam("client_assertion", assertion),
	}, nil
}

// ClientJWKS returns the public half of the private_key_jwt key as a JWK
// set, with its kid and alg, to register at the provider (as the client's
// jwks). It returns false when the client authenticates with a secret.
func (p *Provider) ClientJWKS() ([]byte, bool) {
	if p.key == nil {
		return nil, false
	}
	alg, err := signingAlg(p.key)
	if err != nil {
		return nil, false
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: p.key.Public(), KeyID: p.keyID, Algorithm: string(alg), Use: "sig",
	}}}
	data, err := json.Marshal(set)
	return data, err == nil
}

// signingAlg is the JWS algorithm for a client key: RS256 for RSA, ES256,
// ES384 or ES512 for ECDSA by curve.
func signingAlg(key crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		return jose.RS256, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
	}
	return "", errors.New("private_key_file: want an RSA key or an ECDSA key on P-256, P-384 or P-521")
}

// thumbprint is the RFC 7638 SHA-256 thumbprint of a public key,
// base64url-encoded: the default kid of the client key.
func thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// loadPrivateKey reads the first private key block of a PEM file: RSA
// PRIVATE KEY (PKCS#1), EC PRIVATE KEY (SEC 1) or PRIVATE KEY (PKCS#8
// holding an RSA or ECDSA key), and checks that a client assertion can be
// signed with it. Errors name the file but never quote the key material.
func loadPrivateKey(path string) (crypto.Signer, error) {
	signer, err := pemfile.LoadPrivateKey(path)
	if err != nil {
		return nil, err
	}
	if _, err := signingAlg(signer); err != nil {
		return nil, fmt.Errorf("%s: unsupported key: want RSA or ECDSA on P-256, P-384 or P-521", path)
	}
	if rk, ok := signer.(*rsa.PrivateKey); ok && rk.N.BitLen() < 2048 {
		return nil, fmt.Errorf("%s: RSA key shorter than 2048 bits", path)
	}
	return signer, nil
}

// randomString is 32 random bytes, base64url-encoded.
func randomString() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
