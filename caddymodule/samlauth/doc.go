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
// and once the loaded metadata is past its validUntil, the calls that need
// the IdP return [ErrNoMetadata]; [Provider.Loaded] tells whether they
// would.
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
// # Interoperability
//
// Encrypted assertions are decrypted by this package, not by crewjam/saml
// (whose v0.5.1 misreads redeclared namespace prefixes and treats
// tripledes-cbc as single DES): data encryption aes128-cbc, aes192-cbc,
// aes256-cbc, aes128-gcm, aes192-gcm, aes256-gcm and tripledes-cbc (its
// 192-bit key); key transport rsa-oaep-mgf1p and the xmlenc11 rsa-oaep, with
// SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512 digests and MGF1 functions.
// Only the data ciphers of Config.DataCiphers are tried (by default
// AES-CBC: [DefaultDataCiphers]); rsa-1_5 key transport is refused unless
// Config.AllowRSA15 is set; at most maxEncryptedKeys EncryptedKeys are
// tried. Every decryption failure gives the same refusal (no distinct
// padding error), and a signed Response is verified before anything in it
// is decrypted. Any
// prefix layout valid XML allows is accepted (see prepareResponse).
//
// AuthnRequests and LogoutRequests are signed when the IdP metadata says
// WantAuthnRequestsSigned or Config.SignAuthnRequests is set (see
// authnsign.go). Metadata holding many entities, as federations publish, is
// read as a stream and Config.IDPEntityID picks the IdP (see
// decodeIDPMetadata). With Config.IDPMetadataSigningCerts the metadata must
// carry a signature by one of those keys on its root (see mdsig.go,
// checked by a streaming canonicalizer, mdc14n.go); metadata past a
// validUntil on the path to the IdP is always refused.
//
// # Other endpoints
//
// [Provider.Metadata] is the SP metadata for <base>/saml/metadata;
// [SPMetadata] is the same for a file an IdP administrator imports once
// (the metadata subcommand), without validUntil by default.
// [Provider.Logout] and [Provider.ValidateLogoutResponse] serve single
// logout at <base>/saml/slo; a LogoutResponse must answer a recent
// LogoutRequest of this SP (see logoutid.go), and a query signature is
// checked over the very parameters then read (see logoutquery.go).
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
// clock and tolerances, set once to the widest allowed; each Provider then
// checks them again with its own (see clock.go, [Provider.Tolerances] and
// [Config.ClockSkew]).
package samlauth
