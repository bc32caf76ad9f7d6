// Package testbed holds the fixtures the end-to-end tests in integration/
// and the demo in cmd/demo share:
//
//   - RealConsoleMe: the real Netflix ConsoleMe, started by the launcher in
//     integration/realconsoleme with its own Redis, optionally under faketime,
//     with a GroupMapping the caller writes;
//   - StandIn: a stand-in ConsoleMe that checks the consoleme_auth cookie
//     with ConsoleMe's rules, echoes and records requests;
//   - IdP: crewjam/saml's samlidp on loopback; SimpleSAMLphp: the PHP IdP
//     served by `php -S`, configured from Go (TrustSPs, SPFromMetadata);
//   - Chromium and Tab: headless Chromium driven over the DevTools
//     protocol, each Tab in its own browser context, recording its
//     navigation and keeping snapshots (WriteArtifacts);
//   - Caddy: a `caddy run` process (BuildCaddy builds cmd/caddy);
//   - WeepClient: a client that logs in as Weep's challenge flow does;
//   - Browser: a browser-like HTTP client (cookies, forms, no automatic
//     redirects); Client: CLI-style requests, with TLS and client
//     certificates;
//   - Redis, KeyPair, CA: redis-server, SAML key pairs, client certificates;
//   - Caddyfile: one typed builder for every Caddyfile;
//   - FreePort, WaitFor and SyncBuffer (a process's output).
//
// Nothing here imports package testing, so cmd/demo can use it as well as
// the tests: every launcher returns errors, and a program that is not
// installed is a sentinel error (ErrNoRedis, ErrNotInstalled,
// ErrNoSimpleSAMLphp, ErrNoChromium), so the caller decides whether to skip
// or fail. Every server listens on 127.0.0.1, and every server and process
// has a Stop or Close. Package integration binds
// each launcher to a test in a thin wrapper (t.Fatal on error, t.Cleanup
// to stop, logs and browser pages kept when the test fails).
package testbed
