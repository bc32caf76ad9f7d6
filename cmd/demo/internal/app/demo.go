package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	// Caddy's standard modules (reverse_proxy, the Caddyfile adapter, …)
	// and ours: what `xcaddy build --with` would compile in.
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/consoleme-auth/caddy-consoleme-auth/caddymodule"
	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// demo is one running demo: three servers and the temporary directory that
// holds their keys and configuration.
type demo struct {
	cfg config
	dir string

	CaddyURL    string // ConsoleMe as users see it: Caddy with consoleme_auth
	IdPURL      string // the demo SAML IdP
	UpstreamURL string // ConsoleMe (stand-in or real), reached through Caddy
	// RealConsoleMe is set when the upstream is the real ConsoleMe.
	RealConsoleMe *testbed.RealConsoleMe
	Caddyfile     string // path of the generated Caddyfile

	// closers undo start, newest first.
	closers []func() error
}

// start brings up the stand-in ConsoleMe, the IdP and Caddy, in that order
// (each needs the one before), and registers Caddy's SAML service provider
// at the IdP. On error everything already started is stopped again.
func start(ctx context.Context, cfg config) (_ *demo, err error) {
	if cfg.User == "" || cfg.Password == "" {
		return nil, errors.New("the demo user needs a name and a password")
	}
	d := &demo{cfg: cfg}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.close())
		}
	}()

	// Everything the servers need on disk (the module reads its keys and the
	// IdP metadata from files, as in production) goes into one private
	// directory (mode 0700) that close removes.
	if d.dir, err = os.MkdirTemp("", "consoleme-demo-"); err != nil {
		return nil, err
	}
	d.closers = append(d.closers, func() error { return os.RemoveAll(d.dir) })

	// ConsoleMe and the module must share the jwt_secret; a fresh random one
	// per run means no token outlives the demo.
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	jwtSecret := hex.EncodeToString(secret)

	if cfg.ConsoleMe != "" {
		dir := filepath.Join(d.dir, "consoleme")
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, err
		}
		cm, err := testbed.StartRealConsoleMe(cfg.ConsoleMe, testbed.RealConsoleMeOptions{
			Secret: jwtSecret, Mapping: demoMapping(cfg), Dir: dir,
		})
		if err != nil {
			return nil, fmt.Errorf("starting the real ConsoleMe from %s: %w", cfg.ConsoleMe, err)
		}
		d.closers = append(d.closers, func() error { cm.Stop(); return nil })
		d.RealConsoleMe = cm
		d.UpstreamURL = cm.URL
	} else {
		upstream, err := startConsoleMe(jwtSecret, cfg.UpstreamPort)
		if err != nil {
			return nil, fmt.Errorf("starting the stand-in ConsoleMe: %w", err)
		}
		d.closers = append(d.closers, upstream.Close)
		d.UpstreamURL = upstream.URL()
	}

	caddyPort := cfg.CaddyPort
	if caddyPort == 0 {
		// Caddy must know its port before it starts, because the port is
		// part of public_url (and so of the SAML entity ID and ACS URL, or
		// of the OpenID redirect URI).
		if caddyPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	d.CaddyURL = "http://127.0.0.1:" + strconv.Itoa(caddyPort)

	data := caddyfileData{
		Port:       caddyPort,
		PublicURL:  d.CaddyURL,
		JWTSecret:  jwtSecret,
		Upstream:   strings.TrimPrefix(d.UpstreamURL, "http://"),
		StorageDir: filepath.Join(d.dir, "caddy-data"),
		LogLevel:   cfg.LogLevel,
	}
	var idp *testbed.IdP
	if cfg.OIDC {
		op, block, err := startOIDCProvider(cfg, d.CaddyURL, d.dir)
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, func() error { op.Stop(); return nil })
		d.IdPURL, data.OIDC = op.Issuer, block
	} else {
		if idp, err = startIdP(cfg); err != nil {
			return nil, fmt.Errorf("starting the demo IdP: %w", err)
		}
		d.closers = append(d.closers, idp.Close)
		d.IdPURL = idp.URL
		// Caddy reads the IdP's metadata from a file rather than its URL: a
		// URL is fetched in the background, and a browser that is quicker
		// than that fetch would get "sign-in unavailable".
		data.IdPMetadataFile = filepath.Join(d.dir, "idp-metadata.xml")
		if err := os.WriteFile(data.IdPMetadataFile, idp.Metadata, 0o600); err != nil {
			return nil, err
		}
		data.SPCert, data.SPKey = filepath.Join(d.dir, "saml-sp.crt"), filepath.Join(d.dir, "saml-sp.key")
		spKeyPair, err := testbed.NewKeyPair("consoleme-demo-sp")
		if err == nil {
			err = spKeyPair.WriteFiles(data.SPCert, data.SPKey)
		}
		if err != nil {
			return nil, fmt.Errorf("making the SAML SP key pair: %w", err)
		}
	}

	caddyfile, err := renderCaddyfile(data)
	if err != nil {
		return nil, err
	}
	// Written out only so that you can read it while the demo runs.
	d.Caddyfile = filepath.Join(d.dir, "Caddyfile")
	if err := os.WriteFile(d.Caddyfile, caddyfile, 0o600); err != nil {
		return nil, err
	}
	if err := loadCaddy(caddyfile); err != nil {
		return nil, fmt.Errorf("%w (if port %d is taken, choose another with -caddy-port, or 0 for any free port)", err, caddyPort)
	}
	d.closers = append(d.closers, caddy.Stop)

	if idp == nil {
		return d, nil // the OpenID provider knows the client already
	}
	// The IdP only answers service providers it knows. Register ours with
	// the metadata the module itself serves, as an IdP administrator would.
	spMetadata, err := fetch(ctx, d.CaddyURL+"/saml/metadata")
	if err != nil {
		return nil, fmt.Errorf("fetching the SP metadata from Caddy: %w", err)
	}
	if err := idp.RegisterSP("consoleme", spMetadata); err != nil {
		return nil, err
	}
	return d, nil
}

// demoMapping is the real ConsoleMe's group mapping for the demo: each of
// the user's groups stands for one role of that name, and the user has a
// personal role too.
func demoMapping(cfg config) testbed.GroupMapping {
	m := testbed.GroupMapping{}
	for _, g := range cfg.Groups {
		m[g] = testbed.Grant{Roles: []string{testbed.Role(g)}}
	}
	local, _, _ := strings.Cut(cfg.User, "@")
	m[cfg.User] = testbed.Grant{Roles: []string{testbed.Role(local + "_personal")}}
	return m
}

// close stops everything start started and removes the temporary directory.
func (d *demo) close() error {
	var errs []error
	for i := len(d.closers) - 1; i >= 0; i-- {
		errs = append(errs, d.closers[i]())
	}
	d.closers = nil
	return errors.Join(errs...)
}

type caddyfileData struct {
	Port            int
	PublicURL       string
	JWTSecret       string
	IdPMetadataFile string
	SPCert, SPKey   string
	OIDC            *testbed.OIDC // instead of SAML
	Upstream        string
	StorageDir      string
	LogLevel        string
}

// renderCaddyfile is the configuration a real deployment would have, minus
// TLS (see Caddyfile.example and docs/reference.md for every option): nothing
// outside this process may change it and it is not saved to
// ~/.config/caddy/autosave.json; loopback only, plain http; Caddy's data goes
// to the demo's temporary directory instead of ~/.local/share/caddy, and the
// storage cleaner, which would write an instance ID there regardless, stays
// off. The SAML attributes are what crewjam/saml's IdP sends: the email as
// "mail", the groups as the multi-valued "eduPersonAffiliation". Everything
// that is not a challenge or SAML route goes to ConsoleMe.
func renderCaddyfile(data caddyfileData) ([]byte, error) {
	cf := testbed.Caddyfile{
		Global: testbed.Global{
			PersistConfigOff: true,
			AutoHTTPSOff:     true,
			StorageDir:       data.StorageDir,
			StorageCleanOff:  true,
			GracePeriod:      "2s",
			LogLevel:         data.LogLevel,
		},
		Sites: []testbed.Site{{
			Address: fmt.Sprintf("http://:%d", data.Port),
			Auth: &testbed.Module{
				JWTSecret: data.JWTSecret,
				PublicURL: data.PublicURL,
				Store:     "memory",
				SAML: &testbed.SAML{
					IdPMetadataFile: data.IdPMetadataFile,
					SPCert:          data.SPCert,
					SPKey:           data.SPKey,
					EmailAttribute:  "mail",
					GroupsAttribute: "eduPersonAffiliation",
				},
			},
			Upstreams: []string{data.Upstream},
		}},
	}
	if data.OIDC != nil {
		cf.Sites[0].Auth.SAML, cf.Sites[0].Auth.OIDC = nil, data.OIDC
	}
	return []byte(cf.String()), nil
}

// loadCaddy adapts the Caddyfile to Caddy's JSON and runs it in this process.
func loadCaddy(caddyfile []byte) error {
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		return errors.New("the caddyfile adapter is not compiled in")
	}
	cfgJSON, warnings, err := adapter.Adapt(caddyfile, map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return fmt.Errorf("adapting the Caddyfile: %w", err)
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "Caddyfile warning:", w.String())
	}
	if err := caddy.Load(cfgJSON, true); err != nil {
		return fmt.Errorf("starting Caddy: %w", err)
	}
	return nil
}

// printInstructions tells a newcomer what runs where and how to walk the
// flow by hand.
func (d *demo) printInstructions(out io.Writer) {
	user, cookie := d.cfg.User, "consoleme_auth"
	loginCmd := "go run ./cmd/demo login " + shellQuote(user)
	if d.CaddyURL != fmt.Sprintf("http://127.0.0.1:%d", defaultCaddyPort) {
		loginCmd = "go run ./cmd/demo login -url " + d.CaddyURL + " " + shellQuote(user)
	}
	upstream, intro, whoami := "stand-in ConsoleMe upstream", "everything runs in this process", "/"
	idpName := "demo SAML IdP (crewjam/saml)       "
	if d.cfg.OIDC {
		idpName = "OpenID provider (oidc-provider)    "
	}
	if d.RealConsoleMe != nil {
		upstream = "real ConsoleMe upstream     "
		intro = "the real ConsoleMe runs beside this process"
		whoami = "/api/v2/user_profile"
	}
	fmt.Fprintf(out, `
ConsoleMe challenge login demo: %[11]s, on loopback only.

  ConsoleMe (Caddy + consoleme_auth)  %[1]s
  %[14]s %[2]s
  %[12]s         %[3]s  (reached through Caddy)
  Caddyfile in use                    %[4]s  (deleted on exit)

  demo user  %[5]s   password: %[6]s   groups: %[7]s

Walk the flow by hand, as Weep does:

  1. Ask for a challenge:

       curl -s %[10]s

  2. Open the "challenge_url" it returns in your browser, sign in at the IdP as
     %[5]s / %[6]s, and click Approve.

  3. Poll the "polling_url" it returned until "status" is "success"
     (Weep polls every 3 s for up to 2 minutes):

       curl -s %[1]s/noauth/v1/challenge_poller/<token from step 1>

  4. Call ConsoleMe with the "encoded_jwt" of that answer as its cookie:

       curl -s -H 'Cookie: %[8]s=<encoded_jwt>' '%[1]s/api/v2/get_roles?all=true'

Or let the built-in Weep-like client do steps 1, 3 and 4 (it also opens the
link of step 2 in your desktop's browser when it can; you still approve there):

       %[9]s

Open %[1]s%[13]s in the browser to see whom ConsoleMe takes you for.
Press Ctrl-C to stop.
`, d.CaddyURL, d.IdPURL, d.UpstreamURL, d.Caddyfile,
		user, d.cfg.Password, strings.Join(d.cfg.Groups, ", "), cookie, loginCmd,
		shellQuote(d.CaddyURL+"/noauth/v1/challenge_generator/"+user), intro, upstream, whoami, idpName)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@._+-:/") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before Caddy binds it; for a demo that risk is acceptable.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// listen binds a loopback port (0: any free one); an error names the flag
// that chooses another port.
func listen(port int, flagName string) (net.Listener, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("%w (choose another port with %s, or 0 for any free port)", err, flagName)
	}
	return l, nil
}

// fetch GETs url and returns the body of a 200 answer.
func fetch(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}
