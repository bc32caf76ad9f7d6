// Package testbed holds the fixtures the end-to-end tests in integration/
// and the demo in cmd/demo share:
//
//   - RealConsoleMe: the real Netflix ConsoleMe, started by the launcher in
//     shared/real-consoleme with its own Redis, optionally under faketime,
//     with a GroupMapping the caller writes;
//   - StandIn: a stand-in ConsoleMe that checks the consoleme_auth cookie
//     with ConsoleMe's rules, echoes and records requests;
//   - IdP: crewjam/saml's samlidp on loopback;
//   - WeepClient: a client that logs in as Weep's challenge flow does;
//   - Browser: a browser-like HTTP client (cookies, forms, no automatic
//     redirects); Client: CLI-style requests, with TLS and client
//     certificates;
//   - Redis, KeyPair, CA: redis-server, SAML key pairs, client certificates;
//   - Caddyfile: one typed builder for every Caddyfile;
//   - FreePort and WaitFor.
//
// Nothing here imports package testing, so cmd/demo can use it as well as
// the tests; every server listens on 127.0.0.1 and has a Stop or Close.
package testbed
