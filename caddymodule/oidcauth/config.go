package oidcauth

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Defaults of the optional settings.
const (
	// DefaultDiscoveryRefresh is how often the discovery document and the
	// JWKS are fetched again when Config.DiscoveryRefresh is zero.
	DefaultDiscoveryRefresh = time.Hour

	// DefaultClockSkew is how far the provider's clock may be off from this
	// host's when Config.ClockSkew is zero.
	DefaultClockSkew = time.Minute

	// MaxClockSkew bounds Config.ClockSkew: an expired ID token is never
	// accepted for longer than this after its exp.
	MaxClockSkew = 10 * time.Minute

	// DefaultEmailClaim is the claim holding the user's email when
	// Config.EmailClaim is empty.
	DefaultEmailClaim = "email"
)

// DefaultScopes are the scopes asked for when Config.Scopes is empty.
var DefaultScopes = []string{"openid", "email", "profile"}

// Config is what an operator sets up for the OpenID Connect relying party.
// Its fields mirror the handler's oidc block (issuer, client_id,
// client_secret, private_key_file, private_key_id, scopes, email_claim,
// groups_claim, groups_from_userinfo, discovery_refresh, clock_skew);
// placeholders must already be resolved. The zero value of every optional
// field means its default.
type Config struct {
	// Issuer is the provider's issuer identifier, e.g.
	// https://login.example.com/realms/staff. The discovery document is
	// fetched from <Issuer>/.well-known/openid-configuration and must name
	// exactly this issuer; ID tokens must carry it as iss. It must be an
	// https URL; http is accepted for loopback hosts only. Required.
	Issuer string

	// ClientID is the client identifier registered at the provider. ID
	// tokens must name it in their audience. Required.
	ClientID string

	// ClientSecret authenticates the client at the token endpoint
	// (client_secret_basic, or client_secret_post when the provider offers
	// only that). Exactly one of ClientSecret and PrivateKeyFile is
	// required. It is never logged nor quoted in errors.
	ClientSecret string

	// PrivateKeyFile is a PEM file holding an RSA or ECDSA private key
	// (PKCS#1, PKCS#8 or SEC 1) with which the client authenticates by
	// private_key_jwt: a short-lived JWT signed with the key. The provider
	// must know the public key; Provider.ClientJWKS returns it as a JWK set
	// to register.
	PrivateKeyFile string

	// PrivateKeyID is the key ID (kid) put in the header of the client
	// assertion. Empty means the RFC 7638 thumbprint of the public key,
	// which is also the kid of Provider.ClientJWKS.
	PrivateKeyID string

	// Scopes are the scopes asked for. "openid" is added when missing.
	// Empty means DefaultScopes.
	Scopes []string

	// EmailClaim is the claim holding the user's email, looked up in the ID
	// token and, when absent there, in the userinfo response. Empty means
	// DefaultEmailClaim. With the default, an email_verified claim of false
	// (next to the email) refuses the login; other claims are taken as they
	// come.
	EmailClaim string

	// GroupsClaim is the claim holding the user's groups: an array of
	// strings or a single string. Empty means no groups.
	GroupsClaim string

	// GroupsFromUserinfo takes the groups from the userinfo response rather
	// than the ID token, for providers that keep the ID token small.
	GroupsFromUserinfo bool

	// DiscoveryRefresh is how often Provider.Run fetches the discovery
	// document and the JWKS again, so that endpoint changes and key
	// rotations (including the removal of a key) need no reload. An ID token
	// signed by a key not yet known triggers a fetch of the JWKS at once.
	// Zero means DefaultDiscoveryRefresh; it must not be negative.
	DiscoveryRefresh time.Duration

	// ClockSkew is how far the provider's clock may be off from this
	// host's: an ID token is accepted up to ClockSkew after its exp, and
	// refused when issued (iat) more than ClockSkew in the future. Zero
	// means DefaultClockSkew; at most MaxClockSkew.
	ClockSkew time.Duration
}

// Validate checks the settings that need no file or network access. Each
// message starts with the name of the setting at fault, as the operator
// wrote it (e.g. "client_id: required"). New calls it first.
func (c *Config) Validate() error {
	if err := checkIssuer(c.Issuer); err != nil {
		return err
	}
	if strings.TrimSpace(c.ClientID) == "" {
		return errors.New("client_id: required")
	}
	switch {
	case c.ClientSecret != "" && c.PrivateKeyFile != "":
		return errors.New("client_secret and private_key_file: give only one")
	case c.ClientSecret == "" && c.PrivateKeyFile == "":
		return errors.New("client_secret or private_key_file: one is required")
	case c.PrivateKeyID != "" && c.PrivateKeyFile == "":
		return errors.New("private_key_id: only with private_key_file")
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return fmt.Errorf("scopes: %q is not a scope", s)
		}
	}
	if c.DiscoveryRefresh < 0 {
		return errors.New("discovery_refresh: must not be negative")
	}
	if c.ClockSkew < 0 || c.ClockSkew > MaxClockSkew {
		return fmt.Errorf("clock_skew: must be between 0 and %s", MaxClockSkew)
	}
	return nil
}

// checkIssuer accepts an absolute https URL without query nor fragment, or
// an http one for a loopback host.
func checkIssuer(issuer string) error {
	if issuer == "" {
		return errors.New("issuer: required")
	}
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("issuer: %q is not an absolute URL without query, fragment or user", issuer)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return fmt.Errorf("issuer: %q must use https (http only for a loopback host)", issuer)
	}
	return fmt.Errorf("issuer: %q must use https", issuer)
}

// scopes is Scopes with its default applied and "openid" first.
func (c *Config) scopes() []string {
	in := c.Scopes
	if len(in) == 0 {
		in = DefaultScopes
	}
	out := []string{"openid"}
	for _, s := range in {
		if s != "openid" {
			out = append(out, s)
		}
	}
	return out
}

// emailClaim is EmailClaim with its default applied.
func (c *Config) emailClaim() string {
	if c.EmailClaim == "" {
		return DefaultEmailClaim
	}
	return c.EmailClaim
}

// refresh is DiscoveryRefresh with its default applied.
func (c *Config) refresh() time.Duration {
	if c.DiscoveryRefresh == 0 {
		return DefaultDiscoveryRefresh
	}
	return c.DiscoveryRefresh
}

// skew is ClockSkew with its default applied.
func (c *Config) skew() time.Duration {
	if c.ClockSkew == 0 {
		return DefaultClockSkew
	}
	return c.ClockSkew
}
