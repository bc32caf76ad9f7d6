package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

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
		if buildErr = testbed.BuildCaddy(root, out); buildErr == nil {
			caddyBin = out
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return caddyBin
}

// skipOrFail skips the test because something it needs cannot run here,
// and fails it instead under CI=true, where a missing dependency is a
// broken set-up rather than a developer machine without it.
func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago. The
// listener is closed before returning, so a small race with other processes
// remains; it is accepted for tests.
func freePort(t testing.TB) int {
	t.Helper()
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	return port
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

// syncBuffer is a bytes.Buffer safe for concurrent writes (the test bed's).
type syncBuffer = testbed.SyncBuffer

// caddyProc is a running Caddy process: the test bed's, stopped by the
// test that started it.
type caddyProc struct{ *testbed.Caddy }

// stop asks Caddy to shut down gracefully and kills it if it does not.
func (c *caddyProc) stop() { c.Stop() }

// startCaddy runs `caddy run` with the given Caddyfile and waits until the
// port named by its global http_port option accepts connections. The process
// is stopped when the test ends; its Caddyfile and output are logged if the
// test failed.
func startCaddy(t testing.TB, cf testbed.Caddyfile) *caddyProc {
	t.Helper()
	bin := caddyBinary(t)
	c, err := testbed.StartCaddy(bin, t.TempDir(), cf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("Caddyfile:\n%s\ncaddy output:\n%s", c.Config, c.Output())
		}
	})
	return &caddyProc{c}
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
// saml block's settings promoted (every such test signs in with SAML), plus
// the global options the tests change. Empty fields are left out so the
// module's defaults apply.
type moduleConfig struct {
	testbed.Module
	testbed.SAML

	AdminAddr string // admin endpoint address instead of "admin off"
	Debug     bool   // Caddy's debug logging
}

// module is the consoleme_auth block cfg describes.
func (m moduleConfig) module() *testbed.Module {
	mod, saml := m.Module, m.SAML
	mod.SAML = &saml
	return &mod
}
