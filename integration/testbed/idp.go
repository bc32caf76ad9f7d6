package testbed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"time"

	"github.com/crewjam/saml/samlidp"
)

// Attribute names of github.com/crewjam/saml's DefaultAssertionMaker
// (identity_provider.go, v0.5.1): the user's email goes out as "mail" and
// the user's groups, one value each, as "eduPersonAffiliation". The NameID
// is the user's email too (samlidp session.go sets NameID to user.Email),
// with the transient format.
const (
	SAMLAttrMail        = "urn:oid:0.9.2342.19200300.100.1.3"
	SAMLAttrAffiliation = "urn:oid:1.3.6.1.4.1.5923.1.1.1.1"
)

// IdPUser is an account at the IdP.
type IdPUser struct {
	Name     string // login name
	Password string
	Email    string
	Groups   []string
}

// IdPOptions configures StartIdP.
type IdPOptions struct {
	// Host is the host name in the IdP's URL: "127.0.0.1" (default), or
	// "localhost" to put it on another site than a Caddy on 127.0.0.1, so
	// a browser's POST to the ACS is cross-site as in production.
	Host string
	// Port to listen on; 0 picks a free one.
	Port int
	// KeyPair signs the assertions; a fresh one when nil.
	KeyPair *KeyPair
	// Log receives samlidp's log; io.Discard when nil.
	Log io.Writer
	// LoginForm makes the page that replaces samlidp's login page, given
	// the IdP's SSO URL (see DemoLoginForm).
	LoginForm func(ssoURL string) *template.Template
	// OnlySSO serves only /metadata and /sso on the port, keeping
	// samlidp's unauthenticated REST API (users, services) in-process.
	OnlySSO bool
	Users   []IdPUser
}

// IdP is a crewjam/saml samlidp server on loopback.
type IdP struct {
	URL         string // base URL, http://<host>:<port>
	MetadataURL string
	SSOURL      string
	Metadata    []byte
	Server      *samlidp.Server

	servers []*http.Server
}

// StartIdP starts an IdP with the given users. Service providers are
// registered later with RegisterSP, because a module's metadata only exists
// once Caddy runs.
func StartIdP(o IdPOptions) (_ *IdP, err error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.KeyPair == nil {
		kp, err := NewKeyPair("testbed-idp")
		if err != nil {
			return nil, err
		}
		o.KeyPair = &kp
	}
	// The IdP must know its own URL before it serves, so listen first.
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port)))
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	base, _ := url.Parse("http://" + net.JoinHostPort(o.Host, strconv.Itoa(port)))
	p := &IdP{URL: base.String(), MetadataURL: base.String() + "/metadata", SSOURL: base.String() + "/sso"}
	var form *template.Template
	if o.LoginForm != nil {
		form = o.LoginForm(p.SSOURL)
	}
	defer func() {
		if err != nil {
			l.Close()
			p.Close()
		}
	}()
	p.Server, err = samlidp.New(samlidp.Options{
		URL:               *base,
		Key:               o.KeyPair.Key,
		Certificate:       o.KeyPair.Cert,
		Store:             &samlidp.MemoryStore{},
		Logger:            log.New(o.Log, "idp: ", log.Lmicroseconds),
		LoginFormTemplate: form,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the IdP: %w", err)
	}
	for _, u := range o.Users {
		if err := p.AddUser(u); err != nil {
			return nil, err
		}
	}
	if p.Metadata, err = p.api(http.MethodGet, "/metadata", nil); err != nil {
		return nil, err
	}

	var h http.Handler = p.Server
	if o.OnlySSO {
		mux := http.NewServeMux()
		mux.Handle("GET /metadata", p.Server)
		// GET: the module's redirect with the AuthnRequest. POST: the
		// login form (see DemoLoginForm).
		mux.Handle("/sso", p.Server)
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "This IdP only signs you in through ConsoleMe: open a challenge_url.", http.StatusNotFound)
		})
		h = mux
	}
	p.serve(l, h)
	if o.Host == "localhost" {
		// "localhost" may resolve to ::1 first. Serve there too when the
		// same port is free, so no other local server answers for the
		// IdP; browsers fall back to 127.0.0.1 when nothing listens on ::1.
		if l6, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(port))); err == nil {
			p.serve(l6, h)
		}
	}
	return p, nil
}

func (p *IdP) serve(l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	p.servers = append(p.servers, srv)
	go srv.Serve(l)
}

// Close stops the IdP.
func (p *IdP) Close() error {
	var errs []error
	for _, srv := range p.servers {
		errs = append(errs, srv.Close())
	}
	p.servers = nil
	return errors.Join(errs...)
}

// AddUser creates an account through samlidp's REST API (in-process),
// which hashes the password.
func (p *IdP) AddUser(u IdPUser) error {
	body, _ := json.Marshal(samlidp.User{
		Name:              u.Name,
		Email:             u.Email,
		PlaintextPassword: &u.Password,
		Groups:            u.Groups,
	})
	if _, err := p.api(http.MethodPut, "/users/"+url.PathEscape(u.Name), body); err != nil {
		return fmt.Errorf("creating the IdP user %s: %w", u.Name, err)
	}
	return nil
}

// RegisterSP tells the IdP about a service provider, by its metadata XML.
func (p *IdP) RegisterSP(name string, metadata []byte) error {
	if _, err := p.api(http.MethodPut, "/services/"+url.PathEscape(name), metadata); err != nil {
		return fmt.Errorf("registering the SP at the IdP: %w", err)
	}
	return nil
}

// RegisterSPFromURL fetches a service provider's metadata (e.g. the
// module's GET /saml/metadata), registers it and returns it.
func (p *IdP) RegisterSPFromURL(name, metadataURL string) ([]byte, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(metadataURL)
	if err != nil {
		return nil, fmt.Errorf("fetching SP metadata: %w", err)
	}
	defer resp.Body.Close()
	md, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", metadataURL, resp.StatusCode, md)
	}
	return md, p.RegisterSP(name, md)
}

// api makes one call to samlidp's REST API without going through a socket.
func (p *IdP) api(method, path string, body []byte) ([]byte, error) {
	rec := httptest.NewRecorder()
	p.Server.ServeHTTP(rec, httptest.NewRequest(method, path, bytes.NewReader(body)))
	if rec.Code/100 != 2 {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, rec.Code, bytes.TrimSpace(rec.Body.Bytes()))
	}
	return rec.Body.Bytes(), nil
}

// DemoLoginForm is a friendlier login page for a person. It replaces
// samlidp's own, whose form posts to /login: in crewjam/saml v0.5.x that
// endpoint only creates an IdP session and answers with JSON, so the
// browser never returns to the service provider (crewjam/saml issue 613).
// This form posts the same fields (user, password, and the pending
// SAMLRequest and RelayState) to /sso instead, where samlidp checks the
// password, creates the session and answers the pending request in one
// step: the auto-submitting form that POSTs the signed assertion to the
// module's /saml/acs. The user is filled in and the password shown.
//
// samlidp fills in .Toast (an error such as a wrong password), .SAMLRequest
// and .RelayState.
func DemoLoginForm(ssoURL, user, password string) *template.Template {
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
