package consolemeauth

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/oidcauth"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// OIDCConfig signs browsers in with OpenID Connect (the authorization code
// flow with PKCE) instead of SAML, at the validator and for web_login. Give
// a site either a saml or an oidc block. Register <base>/oidc/callback as
// the client's redirect URI at the provider (and <base>/ as its
// post-logout redirect URI, for single logout).
type OIDCConfig struct {
	// Issuer is the provider's issuer URL, e.g.
	// https://login.example.com/realms/staff; its discovery document is
	// fetched in the background (start-up and `caddy validate` never wait
	// for it), refreshed every DiscoveryRefresh, and the last good copy is
	// kept when a refresh fails. https only (http for loopback). Required.
	Issuer string `json:"issuer,omitempty"`

	// ClientID is the client registered at the provider. Required.
	ClientID string `json:"client_id,omitempty"`

	// ClientSecret authenticates the client, e.g.
	// {env.OIDC_CLIENT_SECRET}; never logged. Give this or PrivateKeyFile.
	ClientSecret string `json:"client_secret,omitempty"`

	// PrivateKeyFile is a PEM RSA or ECDSA key with which the client
	// authenticates by private_key_jwt, instead of a secret.
	PrivateKeyFile string `json:"private_key_file,omitempty"`

	// PrivateKeyID is the key ID of the client assertion. Default: the
	// key's RFC 7638 thumbprint.
	PrivateKeyID string `json:"private_key_id,omitempty"`

	// Scopes asked for. Default: openid email profile.
	Scopes []string `json:"scopes,omitempty"`

	// EmailClaim holds the user's email (ID token, else userinfo).
	// Default: email; an email_verified of false then refuses the login.
	EmailClaim string `json:"email_claim,omitempty"`

	// GroupsClaim holds the user's groups. Default: none (no groups).
	GroupsClaim string `json:"groups_claim,omitempty"`

	// GroupsFromUserinfo takes the groups from the userinfo endpoint
	// rather than the ID token.
	GroupsFromUserinfo bool `json:"groups_from_userinfo,omitempty"`

	// DiscoveryRefresh is how often discovery and the provider's keys are
	// fetched again (an unknown key ID triggers a fetch at once, so key
	// rotation needs no reload). Default: 1h.
	DiscoveryRefresh caddy.Duration `json:"discovery_refresh,omitempty"`

	// ClockSkew is the leeway on the ID token's exp and iat. Default: 1m;
	// at most 10m.
	ClockSkew caddy.Duration `json:"clock_skew,omitempty"`
}

// settings is the Caddy-free configuration, placeholders expanded.
func (c *OIDCConfig) settings(repl *caddy.Replacer) (oidcauth.Config, error) {
	cfg := oidcauth.Config{
		PrivateKeyID: c.PrivateKeyID, Scopes: c.Scopes, EmailClaim: c.EmailClaim, GroupsClaim: c.GroupsClaim,
		GroupsFromUserinfo: c.GroupsFromUserinfo, DiscoveryRefresh: time.Duration(c.DiscoveryRefresh),
		ClockSkew: time.Duration(c.ClockSkew),
	}
	for _, s := range []struct {
		name, from string
		to         *string
	}{
		{"issuer", c.Issuer, &cfg.Issuer},
		{"client_id", c.ClientID, &cfg.ClientID},
		{"client_secret", c.ClientSecret, &cfg.ClientSecret},
		{"private_key_file", c.PrivateKeyFile, &cfg.PrivateKeyFile},
	} {
		v, err := expand(repl, s.name, s.from)
		if err != nil {
			return cfg, err
		}
		*s.to = v
	}
	return cfg, nil
}

// validate checks the settings that need no file or network.
func (c *OIDCConfig) validate() error {
	cfg, err := c.settings(caddy.NewReplacer())
	if err != nil {
		return err
	}
	return cfg.Validate()
}

// provision loads the client key and starts the background discovery for
// as long as ctx lives.
func (c *OIDCConfig) provision(ctx caddy.Context, repl *caddy.Replacer, logger *zap.Logger) (*oidcauth.Provider, error) {
	cfg, err := c.settings(repl)
	if err != nil {
		return nil, err
	}
	p, err := oidcauth.New(cfg, logger)
	if err != nil {
		return nil, err
	}
	go p.Run(ctx)
	return p, nil
}

// startOIDCLogin sends the browser to the provider. The login is kept
// server-side under its state, like a SAML RelayState: no cookie has to
// survive the provider's redirect, and each login is usable once.
func (h *Handler) startOIDCLogin(w http.ResponseWriter, r *http.Request, returnPath, client string, now time.Time) error {
	awaitLoaded(r, h.oidc.Loaded)
	l, err := h.oidc.AuthCodeURL(h.baseURL(r))
	if errors.Is(err, oidcauth.ErrNotLoaded) {
		return h.page(w, r, http.StatusServiceUnavailable, "Sign-in unavailable",
			"The identity provider is not reachable right now. Please try again in a minute.")
	}
	if err != nil {
		h.logger.Error("starting an OpenID Connect login", zap.Error(err))
		return h.page(w, r, http.StatusInternalServerError, "Sign-in failed", "The sign-in request could not be made.")
	}
	state := &store.LoginState{RequestID: oidcBinding(l.Expect()), ReturnPath: returnPath, Created: now, Client: client}
	if err := h.states.SaveLogin(r.Context(), l.State, state, now.Add(loginTTL), now); err != nil {
		return h.storePage(w, r, err)
	}
	h.debug(r, "starting OpenID Connect login", zap.String("issuer", h.oidc.Issuer()))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, l.URL, http.StatusFound)
	return nil
}

// serveOIDCCallback is where the provider sends the browser back
// (GET /oidc/callback): the state must name a login we started (once),
// then oidcauth redeems the code and verifies the ID token.
func (h *Handler) serveOIDCCallback(w http.ResponseWriter, r *http.Request) error {
	if !allowMethods(w, r, http.MethodGet) {
		return nil
	}
	cb := oidcauth.CallbackFromQuery(r.URL.Query())
	if !validToken(cb.State) {
		return h.loginRefused(w, r, signInOIDC, http.StatusBadRequest, "no login in progress (missing or malformed state)",
			"Sign-in failed", oidcauth.MessageNotStarted)
	}
	now := h.now()
	saved, err := h.states.TakeLogin(r.Context(), cb.State, now)
	if errors.Is(err, store.ErrNotFound) {
		return h.loginRefused(w, r, signInOIDC, http.StatusBadRequest, "unknown, expired or already used state",
			"Sign-in failed", "This sign-in has expired or was already used. Open the challenge link from your terminal again.")
	}
	if err != nil {
		return h.storePage(w, r, err)
	}
	id, err := h.oidc.Exchange(r.Context(), h.baseURL(r), cb, parseOIDCBinding(cb.State, saved.RequestID), now)
	var refused *oidcauth.Refusal
	switch {
	case errors.As(err, &refused):
		return h.loginRefused(w, r, signInOIDC, http.StatusForbidden, refused.Reason, "Sign-in failed", refused.Message)
	case err != nil:
		h.logger.Info("OpenID Connect login failed", zap.Error(err), zap.String("remote_ip", clientIP(r)))
		w.Header().Set("Retry-After", "30")
		return h.page(w, r, http.StatusServiceUnavailable, "Sign-in unavailable",
			"The identity provider could not be reached to finish the sign-in. Please try again in a minute.")
	}
	return h.signIn(w, r, signInOIDC, id.Email, h.policy.filterGroups(id.Groups), id.Issuer, saved.ReturnPath, now)
}

// oidcBinding packs what the callback must match (nonce and PKCE
// verifier, both base64url) into the login state's RequestID.
func oidcBinding(ls oidcauth.LoginState) string {
	return ls.Nonce + "." + ls.PKCEVerifier
}

func parseOIDCBinding(state, binding string) oidcauth.LoginState {
	nonce, verifier, _ := strings.Cut(binding, ".")
	return oidcauth.LoginState{State: state, Nonce: nonce, PKCEVerifier: verifier}
}

// awaitLoaded waits a moment for a provider whose first fetch is still
// under way just after start-up, rather than fail the login at once.
func awaitLoaded(r *http.Request, loaded func() bool) {
	if loaded() {
		return
	}
	deadline := time.NewTimer(metadataWait)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !loaded() {
		select {
		case <-r.Context().Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}
