package integration

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// The Caddy binary is built at most once per test run, and only when a test
// actually needs it, so the harness's own unit tests run without cmd/caddy.
var (
	buildOnce sync.Once
	buildDir  string // created by TestMain, removed after the run
	caddyBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "consoleme-auth-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating build directory:", err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	stopSharedRealConsoleMe()
	os.RemoveAll(dir)
	os.Exit(code)
}

// caddyBinary returns the path of a Caddy binary that includes the module,
// building it on first use. Every caller fails with the build output when the
// build fails. Under -short the calling test is skipped instead.
func caddyBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: needs a Caddy build, skipped with -short")
	}
	buildOnce.Do(func() {
		if p := os.Getenv("CONSOLEME_AUTH_CADDY_BIN"); p != "" {
			caddyBin = p
			return
		}
		root, err := testbed.ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		out := filepath.Join(buildDir, "caddy")
		cmd := exec.Command("go", "build", "-o", out, "./cmd/caddy")
		cmd.Dir = root
		output, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building Caddy with the module (go build ./cmd/caddy in %s): %v\n%s", root, err, output)
			return
		}
		caddyBin = out
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return caddyBin
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago. The
// listener is closed before returning, so a small race with other processes
// remains; it is accepted for tests.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freePorts returns n distinct free ports on 127.0.0.1, for a Caddy that
// listens on several at once.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := testbed.FreePorts(n)
	if err != nil {
		t.Fatalf("finding free ports: %v", err)
	}
	return ports
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a child
// process's stdout and stderr and of server loggers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// caddyProc is a running Caddy process.
type caddyProc struct {
	Port      int
	BaseURL   string // http://127.0.0.1:<Port>
	Caddyfile testbed.Caddyfile
	Config    string // Caddyfile, rendered

	cmd     *exec.Cmd
	out     *syncBuffer
	exited  chan struct{}
	exitErr error
}

// Output returns everything the process has written so far.
func (c *caddyProc) Output() string { return c.out.String() }

// startCaddy runs `caddy run` with the given Caddyfile and waits until the
// port named by its global http_port option accepts connections. The process
// is stopped when the test ends; its output is logged if the test failed.
func startCaddy(t testing.TB, cf testbed.Caddyfile) *caddyProc {
	t.Helper()
	bin := caddyBinary(t)

	port := cf.Global.HTTPPort
	if port == 0 {
		t.Fatalf("startCaddy: the Caddyfile has no global http_port option:\n%s", cf)
	}
	caddyfile := cf.String()

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}

	c := &caddyProc{
		Port:      port,
		BaseURL:   fmt.Sprintf("http://127.0.0.1:%d", port),
		Caddyfile: cf,
		Config:    caddyfile,
		out:       &syncBuffer{},
		exited:    make(chan struct{}),
	}
	c.cmd = exec.Command(bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	// Keep Caddy's autosave and certificate storage inside the test's
	// directory instead of the user's home.
	c.cmd.Env = append(os.Environ(),
		"HOME="+dir,
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
	)
	c.cmd.Stdout = c.out
	c.cmd.Stderr = c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting caddy: %v", err)
	}
	go func() {
		c.exitErr = c.cmd.Wait()
		close(c.exited)
	}()

	// Registered before the readiness wait so a failed start is cleaned up
	// and its output shown.
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("Caddyfile:\n%s\ncaddy output:\n%s", c.Config, c.Output())
		}
	})

	err := testbed.WaitFor(20*time.Second, 50*time.Millisecond, func() error {
		select {
		case <-c.exited:
			t.Fatalf("caddy exited during start-up: %v", c.exitErr)
		default:
		}
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return err
	})
	if err != nil {
		t.Fatalf("caddy did not listen on port %d: %v", port, err)
	}
	return c
}

// stop asks Caddy to shut down gracefully and kills it if it does not.
func (c *caddyProc) stop() {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// testGlobal is the global options block every test server uses: only the
// HTTP port on 127.0.0.1, no admin endpoint, and 127.0.0.1 trusted as a
// proxy so a test can present another client IP with X-Forwarded-For.
func testGlobal(port int) testbed.Global {
	return testbed.Global{
		HTTPPort:        port,
		AutoHTTPSOff:    true,
		TrustedProxies:  []string{"127.0.0.1/32"},
		ClientIPHeaders: []string{"X-Forwarded-For"},
	}
}

// siteCaddyfile is a whole Caddyfile: the global options (with cfg's admin
// address and debug logging) and one site on 127.0.0.1:<port> that runs
// cfg's consoleme_auth block and proxies everything else to upstream
// (host:port).
func siteCaddyfile(port int, cfg moduleConfig, upstream string) testbed.Caddyfile {
	g := testGlobal(port)
	g.Admin, g.Debug = cfg.AdminAddr, cfg.Debug
	return testbed.Caddyfile{Global: g, Sites: []testbed.Site{{
		Address:   testbed.SiteAddress(port),
		Auth:      cfg.module(),
		Upstreams: []string{upstream},
	}}}
}

// moduleConfig describes one deployment's consoleme_auth block, with its
// saml block inline, plus the global options the tests change. Empty
// fields are left out so the module's defaults apply.
type moduleConfig struct {
	JWTSecret               string
	PublicURL               string
	CookieName              string
	JWTExpiration           string
	EmailClaim              string
	GroupsClaim             string
	ChallengeTTL            string
	MaxPending              int
	Store                   string // e.g. "memory" or "redis redis://..."
	StoreBlock              [][]string
	GeneratorRateLimit      string
	PollerRateLimit         string
	DisableValidatorIPCheck bool
	DisablePollerIPCheck    bool
	WebLogin                *testbed.WebLogin

	AdminAddr string // admin endpoint address instead of "admin off"
	Debug     bool   // Caddy's debug logging

	IdPMetadataURL    string
	IdPMetadataFile   string
	SPCert            string
	SPKey             string
	EntityID          string
	EmailAttribute    string
	GroupsAttribute   string
	ClockSkew         string
	SignAuthnRequests bool
}

// module is the consoleme_auth block cfg describes.
func (m moduleConfig) module() *testbed.Module {
	return &testbed.Module{
		JWTSecret:               m.JWTSecret,
		PublicURL:               m.PublicURL,
		CookieName:              m.CookieName,
		JWTExpiration:           m.JWTExpiration,
		EmailClaim:              m.EmailClaim,
		GroupsClaim:             m.GroupsClaim,
		ChallengeTTL:            m.ChallengeTTL,
		MaxPending:              m.MaxPending,
		Store:                   m.Store,
		StoreBlock:              m.StoreBlock,
		GeneratorRateLimit:      m.GeneratorRateLimit,
		PollerRateLimit:         m.PollerRateLimit,
		DisableValidatorIPCheck: m.DisableValidatorIPCheck,
		DisablePollerIPCheck:    m.DisablePollerIPCheck,
		WebLogin:                m.WebLogin,
		SAML: &testbed.SAML{
			IdPMetadataURL:    m.IdPMetadataURL,
			IdPMetadataFile:   m.IdPMetadataFile,
			SPCert:            m.SPCert,
			SPKey:             m.SPKey,
			EntityID:          m.EntityID,
			EmailAttribute:    m.EmailAttribute,
			GroupsAttribute:   m.GroupsAttribute,
			ClockSkew:         m.ClockSkew,
			SignAuthnRequests: m.SignAuthnRequests,
		},
	}
}
