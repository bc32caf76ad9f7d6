package integration

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
		root, err := moduleRoot()
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

// moduleRoot finds the directory holding go.mod, starting at the test's
// working directory (the package directory under go test).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the integration directory")
		}
		dir = parent
	}
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
	Port    int
	BaseURL string // http://127.0.0.1:<Port>
	Config  string

	cmd     *exec.Cmd
	out     *syncBuffer
	exited  chan struct{}
	exitErr error
}

// Output returns everything the process has written so far.
func (c *caddyProc) Output() string { return c.out.String() }

var httpPortRE = regexp.MustCompile(`(?m)^\s*http_port\s+(\d+)\s*$`)

// startCaddy runs `caddy run` with the given Caddyfile and waits until the
// port named by its global http_port option accepts connections. The process
// is stopped when the test ends; its output is logged if the test failed.
func startCaddy(t testing.TB, caddyfile string) *caddyProc {
	t.Helper()
	bin := caddyBinary(t)

	m := httpPortRE.FindStringSubmatch(caddyfile)
	if m == nil {
		t.Fatalf("startCaddy: the Caddyfile has no global http_port option:\n%s", caddyfile)
	}
	port, _ := strconv.Atoi(m[1])

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}

	c := &caddyProc{
		Port:    port,
		BaseURL: fmt.Sprintf("http://127.0.0.1:%d", port),
		Config:  caddyfile,
		out:     &syncBuffer{},
		exited:  make(chan struct{}),
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

	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-c.exited:
			t.Fatalf("caddy exited during start-up: %v", c.exitErr)
		default:
		}
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not listen on port %d within 20s", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
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

// globalOptions is the global options block every test server uses: only
// the HTTP port on 127.0.0.1, no admin endpoint, and 127.0.0.1 trusted as a
// proxy so a test can present another client IP with X-Forwarded-For.
func globalOptions(port int) string {
	return fmt.Sprintf(`{
	admin off
	default_bind 127.0.0.1
	auto_https off
	http_port %d
	servers {
		trusted_proxies static 127.0.0.1/32
		client_ip_headers X-Forwarded-For
	}
}
`, port)
}

// siteCaddyfile is a whole Caddyfile: the global options and one site on
// 127.0.0.1:<port> that runs the given consoleme_auth block and proxies
// everything else to upstream (host:port).
func siteCaddyfile(port int, moduleBlock, upstream string) string {
	return globalOptions(port) + fmt.Sprintf(`
http://127.0.0.1:%d {
%s
	reverse_proxy %s
}
`, port, indent(moduleBlock, "\t"), upstream)
}

// moduleConfig describes one consoleme_auth block. Empty fields are left
// out so the module's defaults apply.
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
	DisableValidatorIPCheck bool
	DisablePollerIPCheck    bool
	Extra                   []string // further subdirective lines, verbatim
	GlobalExtra             string   // further global option lines (not part of the block)
	AdminAddr               string   // admin endpoint address instead of "admin off"

	IdPMetadataURL  string
	IdPMetadataFile string
	SPCert          string
	SPKey           string
	EntityID        string
	EmailAttribute  string
	GroupsAttribute string
}

// block renders the consoleme_auth directive.
func (m moduleConfig) block() string {
	var b strings.Builder
	line := func(name, value string) {
		if value != "" {
			fmt.Fprintf(&b, "\t%s %s\n", name, value)
		}
	}
	b.WriteString("consoleme_auth {\n")
	line("jwt_secret", m.JWTSecret)
	line("public_url", m.PublicURL)
	line("cookie_name", m.CookieName)
	line("jwt_expiration", m.JWTExpiration)
	line("email_claim", m.EmailClaim)
	line("groups_claim", m.GroupsClaim)
	line("challenge_ttl", m.ChallengeTTL)
	if m.MaxPending > 0 {
		line("max_pending", strconv.Itoa(m.MaxPending))
	}
	line("store", m.Store)
	if m.DisableValidatorIPCheck {
		b.WriteString("\tdisable_validator_ip_check\n")
	}
	if m.DisablePollerIPCheck {
		b.WriteString("\tdisable_poller_ip_check\n")
	}
	for _, x := range m.Extra {
		fmt.Fprintf(&b, "\t%s\n", x)
	}
	b.WriteString("\tsaml {\n")
	sline := func(name, value string) {
		if value != "" {
			fmt.Fprintf(&b, "\t\t%s %s\n", name, value)
		}
	}
	sline("idp_metadata_url", m.IdPMetadataURL)
	sline("idp_metadata_file", m.IdPMetadataFile)
	sline("sp_cert", m.SPCert)
	sline("sp_key", m.SPKey)
	sline("entity_id", m.EntityID)
	sline("email_attribute", m.EmailAttribute)
	sline("groups_attribute", m.GroupsAttribute)
	b.WriteString("\t}\n}")
	return b.String()
}

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}
