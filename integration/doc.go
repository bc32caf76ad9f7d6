// Package integration holds the end-to-end tests of the consoleme_auth Caddy
// module: a real Caddy binary built from ./cmd/caddy runs the module in front
// of a stand-in ConsoleMe, logs users in through an in-process SAML IdP and is
// driven by a browser-like HTTP client and by a client that behaves like Weep.
//
// Everything lives in _test.go files so that the package adds nothing to the
// module's build; this file only gives the package its documentation.
//
// Run with: go test -count=1 ./integration/
// The first run builds Caddy (about two minutes on a small machine); -short
// skips every test that needs Caddy. Set CONSOLEME_AUTH_CADDY_BIN to a
// prebuilt binary to skip the build.
package integration
