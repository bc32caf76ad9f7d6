package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
	"html/template"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/crewjam/saml/samlidp"
)

// demoIdP is crewjam/saml's samlidp, a small SAML 2.0 identity provider,
// serving only what a browser needs: its metadata and its SSO endpoint.
//
// It runs at http://localhost:<port> while Caddy runs at
// http://127.0.0.1:<port>: two host names, so the browser keeps their
// cookies apart (cookies ignore ports) and treats the IdP's POST back to
// Caddy as cross-site, as it is in production.
type demoIdP struct {
	URL      string
	Metadata []byte // the IdP's SAML metadata, for the module's idp_metadata_file

	samlidp *samlidp.Server
	servers []*http.Server
}

// startIdP starts the IdP and creates the demo user in it.
func startIdP(cfg config) (*demoIdP, error) {
	l, err := listen(cfg.IdPPort, "-idp-port")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	base, _ := url.Parse("http://localhost:" + strconv.Itoa(port))
	p := &demoIdP{URL: base.String()}

	kp, err := testbed.NewKeyPair("consoleme-demo-idp")
	if err != nil {
		l.Close()
		return nil, err
	}
	sso := base.String() + "/sso"
	p.samlidp, err = samlidp.New(samlidp.Options{
		URL:               *base,
		Key:               kp.Key,
		Certificate:       kp.Cert,
		Store:             &samlidp.MemoryStore{},
		Logger:            log.New(os.Stderr, "demo idp: ", log.LstdFlags),
		LoginFormTemplate: loginForm(sso, cfg.User, cfg.Password),
	})
	if err != nil {
		l.Close()
		return nil, err
	}

	// Users and service providers are created through samlidp's REST API,
	// called in-process: that API has no authentication, so it is not
	// served on the port, where anyone on this machine could add a user.
	user, _ := json.Marshal(samlidp.User{
		Name:              cfg.User,
		Email:             cfg.User,
		PlaintextPassword: &cfg.Password,
		Groups:            cfg.Groups,
	})
	if err := p.api(http.MethodPut, "/users/"+url.PathEscape(cfg.User), user); err != nil {
		l.Close()
		return nil, fmt.Errorf("creating the demo user: %w", err)
	}
	if p.Metadata, err = p.get("/metadata"); err != nil {
		l.Close()
		return nil, err
	}

	mux := http.NewServeMux()
	mux.Handle("GET /metadata", p.samlidp)
	// GET: the module's redirect with the AuthnRequest. POST: our login
	// form (see loginForm).
	mux.Handle("/sso", p.samlidp)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "This demo IdP only signs you in through ConsoleMe: open a challenge_url.", http.StatusNotFound)
	})

	p.serve(l, mux)
	// "localhost" may resolve to ::1 first. Serve there too when the same
	// port is free, so no other local server answers for the IdP; browsers
	// fall back to 127.0.0.1 when nothing listens on ::1.
	if l6, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(port))); err == nil {
		p.serve(l6, mux)
	}
	return p, nil
}

func (p *demoIdP) serve(l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	p.servers = append(p.servers, srv)
	go srv.Serve(l)
}

func (p *demoIdP) close() error {
	var errs []error
	for _, srv := range p.servers {
		errs = append(errs, srv.Close())
	}
	return errors.Join(errs...)
}

// RegisterSP tells the IdP about a service provider, by its metadata.
func (p *demoIdP) RegisterSP(name string, metadata []byte) error {
	if err := p.api(http.MethodPut, "/services/"+url.PathEscape(name), metadata); err != nil {
		return fmt.Errorf("registering the SP at the IdP: %w", err)
	}
	return nil
}

// api makes one call to samlidp's REST API without going through a socket.
func (p *demoIdP) api(method, path string, body []byte) error {
	rec := httptest.NewRecorder()
	p.samlidp.ServeHTTP(rec, httptest.NewRequest(method, path, bytes.NewReader(body)))
	if rec.Code/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, rec.Code, bytes.TrimSpace(rec.Body.Bytes()))
	}
	return nil
}

func (p *demoIdP) get(path string) ([]byte, error) {
	rec := httptest.NewRecorder()
	p.samlidp.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d", path, rec.Code)
	}
	return rec.Body.Bytes(), nil
}

// loginForm is the IdP's login page. It replaces samlidp's own, whose form
// posts to /login: in crewjam/saml v0.5.x that endpoint only creates an IdP
// session and answers with JSON, so the browser never returns to the
// service provider (crewjam/saml issue 613). This form posts the same fields
// (user, password, and the pending SAMLRequest and RelayState) to /sso
// instead, where samlidp checks the password, creates the session and
// answers the pending request in one step: the auto-submitting form that
// POSTs the signed assertion to Caddy's /saml/acs.
//
// samlidp fills in .Toast (an error such as a wrong password), .SAMLRequest
// and .RelayState.
func loginForm(ssoURL, user, password string) *template.Template {
	return template.Must(template.New("login").Funcs(template.FuncMap{
		"ssoURL":   func() string { return ssoURL },
		"user":     func() string { return user },
		"password": func() string { return password },
	}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · demo IdP</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#eef1f4;color:#1d2330;margin:0}
main{max-width:26rem;margin:4rem auto;background:#fff;border-radius:8px;padding:2rem 2.5rem;box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.3rem;margin-top:0}label{display:block;margin:.8rem 0 .2rem}
input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}
button{margin-top:1.2rem;background:#2e7d32;color:#fff;border:0;border-radius:6px;padding:.7rem 1.6rem;font-size:1rem;cursor:pointer}
.toast{background:#fdecea;border-left:4px solid #d32f2f;padding:.6rem .9rem}.hint{color:#5a6272;font-size:.9rem}
</style></head><body><main>
<h1>Demo identity provider</h1>
<p class="hint">A SAML IdP running inside the demo. Demo user <b>{{user}}</b>, password <b>{{password}}</b>.</p>
{{if .Toast}}<p class="toast" id="toast">{{.Toast}}</p>{{end}}
<form method="post" action="{{ssoURL}}">
<label for="user">User</label><input id="user" name="user" value="{{user}}" autocomplete="username">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" autofocus>
<input type="hidden" name="SAMLRequest" value="{{.SAMLRequest}}">
<input type="hidden" name="RelayState" value="{{.RelayState}}">
<button type="submit" id="sign-in">Sign in</button>
</form>
</main></body></html>
`))
}
