// Package integration holds the end-to-end tests of the consoleme_auth Caddy
// module: a real Caddy binary built from ./cmd/caddy runs the module in front
// of the real Netflix ConsoleMe (or, where a test must see exactly what
// reached the upstream, a stand-in), logs users in through SAML IdPs
// (crewjam/saml in-process, SimpleSAMLphp) and is driven by a browser-like
// HTTP client, headless Chromium and a client that behaves like Weep.
//
// The fixtures the tests and cmd/demo share (the Caddy, ConsoleMe,
// SimpleSAMLphp and Chromium launchers, the in-process IdP, the Weep-like
// client, the browser-like client, Redis, certificates, the Caddyfile
// builder, free ports, waiting on a condition) are in the importable
// package integration/testbed; the _test.go files here bind them to a test
// (fail or skip, clean up, keep artifacts). Everything else lives in
// _test.go files so that this package adds nothing to the module's build;
// this file only gives the package its documentation. OpenID Connect tests
// run the oidc-provider package through caddymodule/oidcauth/oidctest.
//
// Run with: go test -count=1 ./integration/...
// The first run builds Caddy (about two minutes on a small machine); -short
// skips every test that needs Caddy. Set CONSOLEME_AUTH_CADDY_BIN to a
// prebuilt binary to skip the build. See docs/contributing.md for what runs
// against what and the environment variables.
package integration
