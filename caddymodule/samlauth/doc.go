// Package samlauth is the SAML 2.0 service provider (SP) of
// caddy-consoleme-auth, free of Caddy: it knows keys, metadata and SAML
// messages, and nothing of HTTP handlers, pages, cookies or stores.
//
// # Life cycle
//
// Fill a [Config] (plain Go values; resolve any placeholders first), then
// call [New], which validates it, loads the SP key pair and, when the IdP
// metadata comes from a file, reads that file. When it comes from a URL,
// start [Provider.Run] in a goroutine: it fetches the metadata at once and
// keeps it fresh until its context ends. Until the first fetch succeeds,
// the calls that need the IdP return [ErrNoMetadata]; [Provider.Loaded]
// tells whether they would.
//
// # Logging a browser in
//
//  1. [Provider.AuthnRequest] makes the AuthnRequest for a relay state the
//     caller chose. The caller remembers the returned request ID under that
//     relay state (one use only) and sends the browser to the IdP, by a
//     redirect or an auto-submitted form as the returned [Redirect] says.
//  2. At the assertion consumer service (<base>/saml/acs), the caller takes
//     the relay state's request ID back, decodes the posted SAMLResponse
//     with [DecodeBase64Loose] and hands it to [Provider.Verify]. Verify
//     makes every check, consumes the assertion ID in a [ReplayGuard] and
//     returns the [Identity]. A refused response is a [*Refusal]; any other
//     error ([ErrNoMetadata], a failing ReplayGuard) means the service could
//     not decide and the browser may retry later.
//
// # Other endpoints
//
// [Provider.Metadata] is the SP metadata for <base>/saml/metadata.
// [Provider.LogoutRedirect] and [Provider.ValidateLogoutResponse] serve
// single logout at <base>/saml/slo.
//
// # URLs
//
// Every call that needs the SP's own URLs takes base, the scheme, host and
// optional path prefix the browser uses (e.g. https://consoleme.example.com,
// no trailing slash). The SP's endpoints are <base>/saml/acs,
// <base>/saml/metadata and <base>/saml/slo.
//
// # Time
//
// The SAML library checks validity windows against its own process-wide
// clock and tolerances; see [Tolerances] and [Config.ClockSkew].
package samlauth
