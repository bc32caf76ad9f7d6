// Package oidcauth is the OpenID Connect relying party of
// caddy-consoleme-auth, free of Caddy: it knows the provider's discovery
// document, keys and tokens, and nothing of HTTP handlers, pages, cookies
// or stores. It is the counterpart of package samlauth; a site uses one of
// the two.
//
// The protocol work is done by github.com/coreos/go-oidc/v3 (discovery, ID
// token verification) and golang.org/x/oauth2 (authorization request, PKCE,
// token request); signatures are checked by github.com/go-jose/go-jose/v4.
//
// # Life cycle
//
// Fill a [Config] (plain Go values; resolve any placeholders first), then
// call [New], which validates it and loads the private_key_jwt key if any.
// Start [Provider.Run] in a goroutine: it fetches the discovery document
// and the provider's JWKS at once and keeps them fresh until its context
// ends, keeping the last good copy when a fetch fails. Until the first
// fetch succeeds, the calls that need the provider return [ErrNotLoaded];
// [Provider.Loaded] tells whether they would.
//
// # Logging a browser in
//
//  1. [Provider.AuthCodeURL] starts a login: it draws a state, a nonce and
//     a PKCE verifier and returns the authorization URL. The caller keeps
//     [Login.Expect] (the [LoginState]) server-side under the state, for
//     one use and a few minutes, with whatever it needs afterwards (the
//     return path), and redirects the browser to the URL.
//  2. At the callback (<base>/oidc/callback), the caller takes the
//     LoginState back (once) under the callback's state, and hands it with
//     [CallbackFromQuery] to [Provider.Exchange]. Exchange redeems the code
//     and makes every check (see there) and returns the [Identity]. A
//     refused callback is a [*Refusal]; any other error ([ErrNotLoaded],
//     the provider unreachable) means the service could not decide and the
//     browser may retry later. When the state is unknown to the caller (not
//     started here, expired or already used) it must not call Exchange:
//     that is a refusal with [MessageNotStarted].
//
// Codes are one-time by the provider's rules: a replayed code is refused
// by the token endpoint, which Exchange turns into a Refusal. The state is
// one-time by the caller's store.
//
// # Keys
//
// The provider's keys are fetched with the discovery document, again at
// every DiscoveryRefresh (so a removed key stops being trusted), and at
// once when an ID token names a key not yet known (so a rotation needs no
// reload). Only asymmetric algorithms the provider advertises are accepted;
// "none" and HMAC never are.
//
// # Time
//
// Exchange checks the ID token's exp and iat against the now it is given,
// with Config.ClockSkew of leeway either way. go-oidc allows a fixed five
// minutes of leeway on nbf, which providers rarely send.
//
// # Client authentication
//
// With a client secret the client authenticates by client_secret_basic
// (client_secret_post when the provider offers only that). With a private
// key it sends a private_key_jwt assertion (RFC 7523) signed with it;
// [Provider.ClientJWKS] is the public key to register at the provider.
//
// # Logout
//
// [Provider.LogoutURL] is the provider's end_session_endpoint, when it
// has one, to redirect the browser to after the local logout.
//
// # URLs
//
// Every call that needs the client's own URLs takes base, the scheme, host
// and optional path prefix the browser uses (e.g.
// https://consoleme.example.com, no trailing slash). The redirect URI is
// <base>/oidc/callback ([CallbackPath]); register it at the provider.
package oidcauth
