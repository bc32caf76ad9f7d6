package main

import (
	"fmt"
	"html/template"
	"os"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// startIdP starts the test bed's IdP (crewjam/saml's samlidp, a small SAML
// 2.0 identity provider) with the demo user, serving only what a browser
// needs: its metadata and its SSO endpoint, with a login page that names
// the demo user and password.
//
// It runs at http://localhost:<port> while Caddy runs at
// http://127.0.0.1:<port>: two host names, so the browser keeps their
// cookies apart (cookies ignore ports) and treats the IdP's POST back to
// Caddy as cross-site, as it is in production.
func startIdP(cfg config) (*testbed.IdP, error) {
	p, err := testbed.StartIdP(testbed.IdPOptions{
		Host:    "localhost",
		Port:    cfg.IdPPort,
		Log:     os.Stderr,
		OnlySSO: true,
		LoginForm: func(ssoURL string) *template.Template {
			return testbed.DemoLoginForm(ssoURL, cfg.User, cfg.Password)
		},
		Users: []testbed.IdPUser{{Name: cfg.User, Email: cfg.User, Password: cfg.Password, Groups: cfg.Groups}},
	})
	if err != nil {
		return nil, fmt.Errorf("%w (if port %d is taken, choose another with -idp-port, or 0 for any free port)", err, cfg.IdPPort)
	}
	return p, nil
}
