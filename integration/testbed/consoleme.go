package testbed

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// RealConsoleMe is the real ConsoleMe web server (python3 -m consoleme) with
// its private redis-server, started by this project's launcher,
// integration/realconsoleme (setup.sh, start.sh, stop.sh), on 127.0.0.1.
type RealConsoleMe struct {
	URL       string // http://127.0.0.1:<Port>
	Port      int
	RedisPort int
	Secret    string
	Mapping   GroupMapping
	Dir       string // the launcher's WORKDIR: config.yaml, consoleme.log, pid files

	launcher string
	stopOnce sync.Once
}

// Addr is host:port, as reverse_proxy wants it.
func (c *RealConsoleMe) Addr() string { return strings.TrimPrefix(c.URL, "http://") }

// Log returns what ConsoleMe has logged so far.
func (c *RealConsoleMe) Log() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "consoleme.log"))
	return string(b)
}

// RealConsoleMeOptions configures one real ConsoleMe.
type RealConsoleMeOptions struct {
	// Secret is ConsoleMe's jwt_secret; it must not contain quotes,
	// backslashes or newlines (start.sh writes it into YAML).
	Secret string
	// Mapping is dynamic_config.group_mapping; DefaultMapping when nil.
	Mapping GroupMapping
	// ClockOffset starts ConsoleMe (not its Redis) under libfaketime with
	// this offset, e.g. -5s for a ConsoleMe whose clock is 5 s behind.
	ClockOffset time.Duration
	// Dir is the launcher's work directory; it must exist.
	Dir string
	// CookieName, EmailClaim and GroupsClaim are ConsoleMe's
	// auth_cookie_name and jwt.attributes.email/groups; ConsoleMe's
	// defaults (consoleme_auth, email, groups) when empty.
	CookieName, EmailClaim, GroupsClaim string
}

// ErrNotInstalled says that the real ConsoleMe cannot run on this machine;
// the message says what is missing and how to install it.
var ErrNotInstalled = errors.New("real ConsoleMe is not installed")

// LauncherDir finds the real ConsoleMe's launcher: $REAL_CONSOLEME_DIR, or
// integration/realconsoleme under the module root (moduleRoot may be "").
func LauncherDir(moduleRoot string) (string, error) {
	cands := []string{}
	if d := os.Getenv("REAL_CONSOLEME_DIR"); d != "" {
		cands = append(cands, d)
	}
	if moduleRoot != "" {
		cands = append(cands, filepath.Join(moduleRoot, "integration", "realconsoleme"))
	}
	for _, d := range cands {
		if _, err := os.Stat(filepath.Join(d, "start.sh")); err == nil {
			return filepath.Abs(d)
		}
	}
	return "", fmt.Errorf("%w: no launcher (start.sh) in %s; set REAL_CONSOLEME_DIR to the integration/realconsoleme directory",
		ErrNotInstalled, strings.Join(cands, " or "))
}

// ModuleRoot finds the directory holding go.mod, starting at the working
// directory.
func ModuleRoot() (string, error) {
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
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// CacheDir is where scripts/test-deps keeps what it fetches, builds and
// installs for the tests: $CONSOLEME_AUTH_TEST_CACHE, else
// caddy-consoleme-auth in the user's cache directory
// (${XDG_CACHE_HOME:-$HOME/.cache} on Linux).
func CacheDir() string {
	if d := os.Getenv("CONSOLEME_AUTH_TEST_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "caddy-consoleme-auth")
	}
	return filepath.Join(os.TempDir(), "caddy-consoleme-auth")
}

// installDir is where setup.sh installs ConsoleMe: $REAL_CONSOLEME_HOME, or
// real-consoleme in CacheDir (setup.sh's own default).
func installDir() string {
	if d := os.Getenv("REAL_CONSOLEME_HOME"); d != "" {
		return d
	}
	return filepath.Join(CacheDir(), "real-consoleme")
}

// ConsoleMeSource finds ConsoleMe's source as scripts/test-deps does:
// $CONSOLEME_SOURCE, ../shared/consoleme beside the module root, or the
// clone in CacheDir. It reports "" when there is none.
func ConsoleMeSource(moduleRoot string) string {
	cands := []string{os.Getenv("CONSOLEME_SOURCE")}
	if moduleRoot != "" {
		cands = append(cands, filepath.Join(moduleRoot, "..", "shared", "consoleme"))
	}
	cands = append(cands, filepath.Join(CacheDir(), "src", "consoleme"))
	for _, d := range cands {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "setup.py")); err == nil {
			return d
		}
	}
	return ""
}

var (
	setupOnce sync.Once
	setupErr  error
)

// EnsureInstalled makes sure the real ConsoleMe is installed where start.sh
// looks for it. When it is not, but its source is at hand (see
// ConsoleMeSource) and the Debian packages are installed, it runs the
// launcher's setup.sh once per process; otherwise the error says to run
// scripts/test-deps, which installs the packages and fetches the source.
func EnsureInstalled(launcher string) error {
	setupOnce.Do(func() {
		const hint = "run scripts/test-deps, which installs it"
		if _, err := exec.LookPath("redis-server"); err != nil {
			setupErr = fmt.Errorf("%w: redis-server is missing (%s)", ErrNotInstalled, hint)
			return
		}
		home := installDir()
		if installed(home) {
			return
		}
		root, _ := ModuleRoot()
		src := ConsoleMeSource(root)
		if src == "" {
			setupErr = fmt.Errorf("%w: not in %s, and no ConsoleMe source to install it from (%s)", ErrNotInstalled, home, hint)
			return
		}
		out, err := exec.Command("bash", filepath.Join(launcher, "setup.sh"), src, home).CombinedOutput()
		if err != nil || !installed(home) {
			setupErr = fmt.Errorf("%w: %s/setup.sh failed (%v; %s):\n%s", ErrNotInstalled, launcher, err, hint, out)
		}
	})
	return setupErr
}

func installed(home string) bool {
	_, e1 := os.Stat(filepath.Join(home, "consoleme", "consoleme", "__main__.py"))
	_, e2 := os.Stat(filepath.Join(home, "site", "consoleme-0.0.0.dist-info"))
	return e1 == nil && e2 == nil
}

// faketimeLib finds libfaketime.so.1 (Debian's faketime package).
func faketimeLib() (string, error) {
	for _, p := range []string{
		"/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
		"/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
		"/usr/lib/faketime/libfaketime.so.1",
		"/usr/local/lib/faketime/libfaketime.so.1",
	} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if m, _ := filepath.Glob("/usr/lib/*/faketime/libfaketime.so.1"); len(m) > 0 {
		return m[0], nil
	}
	return "", fmt.Errorf("%w: libfaketime.so.1 not found (apt-get install faketime)", ErrNotInstalled)
}

// StartRealConsoleMe starts ConsoleMe and its Redis on free loopback ports
// and waits until /healthcheck answers. Stop ends both.
func StartRealConsoleMe(launcher string, o RealConsoleMeOptions) (*RealConsoleMe, error) {
	if err := EnsureInstalled(launcher); err != nil {
		return nil, err
	}
	if o.Mapping == nil {
		o.Mapping = DefaultMapping()
	}
	tmpl, err := configTemplate(launcher, o)
	if err != nil {
		return nil, err
	}
	tmplPath := filepath.Join(o.Dir, "config.yaml.tmpl")
	if err := os.WriteFile(tmplPath, []byte(tmpl), 0o600); err != nil {
		return nil, err
	}
	env := append(os.Environ(), "REAL_CONSOLEME_CONFIG_TMPL="+tmplPath)
	if o.ClockOffset != 0 {
		lib, err := faketimeLib()
		if err != nil {
			return nil, err
		}
		// libfaketime's relative offset: "-5s" runs the clock 5 s behind.
		env = append(env, fmt.Sprintf("REAL_CONSOLEME_WRAPPER=env LD_PRELOAD=%s FAKETIME=%+ds", lib, int(o.ClockOffset.Seconds())))
	}
	var lastErr error
	// A free port can be taken by another process before start.sh binds it;
	// try again with fresh ports.
	for attempt := 0; attempt < 3; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		redisPort, err := FreePort()
		if err != nil {
			return nil, err
		}
		c := &RealConsoleMe{
			URL: fmt.Sprintf("http://127.0.0.1:%d", port), Port: port, RedisPort: redisPort,
			Secret: o.Secret, Mapping: o.Mapping, Dir: o.Dir, launcher: launcher,
		}
		cmd := exec.Command("bash", filepath.Join(launcher, "start.sh"),
			fmt.Sprint(port), fmt.Sprint(redisPort), o.Secret, o.Dir)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err == nil {
			return c, nil
		}
		c.Stop()
		lastErr = fmt.Errorf("start.sh: %v\n%s", err, out)
		if !strings.Contains(string(out), "in use") {
			break
		}
	}
	return nil, lastErr
}

// Stop stops ConsoleMe and its Redis (stop.sh, by PID only).
func (c *RealConsoleMe) Stop() {
	c.stopOnce.Do(func() {
		_ = exec.Command("bash", filepath.Join(c.launcher, "stop.sh"), c.Dir).Run()
	})
}

// configTemplate is the launcher's config.yaml.tmpl with its group mapping
// replaced by o.Mapping and the cookie and claim names of o: everything up
// to the template's dynamic_config section is kept as it is.
func configTemplate(launcher string, o RealConsoleMeOptions) (string, error) {
	b, err := os.ReadFile(filepath.Join(launcher, "config.yaml.tmpl"))
	if err != nil {
		return "", err
	}
	s := string(b)
	i := strings.Index(s, "\ndynamic_config:")
	if i < 0 {
		return "", fmt.Errorf("%s/config.yaml.tmpl has no dynamic_config section", launcher)
	}
	s = s[:i+1]
	if o.CookieName != "" {
		const def = "\nauth_cookie_name: consoleme_auth\n"
		if !strings.Contains(s, def) {
			return "", fmt.Errorf("%s/config.yaml.tmpl does not set auth_cookie_name", launcher)
		}
		s = strings.Replace(s, def, fmt.Sprintf("\nauth_cookie_name: %q\n", o.CookieName), 1)
	}
	if o.EmailClaim != "" || o.GroupsClaim != "" {
		email, groups := o.EmailClaim, o.GroupsClaim
		if email == "" {
			email = "email"
		}
		if groups == "" {
			groups = "groups"
		}
		s += fmt.Sprintf("jwt:\n  attributes:\n    email: %q\n    groups: %q\n", email, groups)
	}
	return s + o.Mapping.yaml(), nil
}

// Grant is one entry of ConsoleMe's dynamic_config.group_mapping.
type Grant struct {
	Roles        []string
	CLIOnlyRoles []string
}

// GroupMapping maps a group, or a user's email, to roles, as ConsoleMe's
// dynamic_config.group_mapping does.
type GroupMapping map[string]Grant

// Role is the ARN of a role in the test account.
func Role(name string) string { return "arn:aws:iam::123456789012:role/" + name }

// DefaultMapping gives every test user a personal role (by email) and the
// groups the tests use a role each, so a role list tells users apart.
func DefaultMapping() GroupMapping {
	return GroupMapping{
		"engineering":         {Roles: []string{Role("engineering")}, CLIOnlyRoles: []string{Role("engineering_cli")}},
		"consoleme-admins":    {Roles: []string{Role("consoleme_admin")}},
		"aws-dev":             {Roles: []string{Role("aws-dev")}},
		"aws-admins":          {Roles: []string{Role("aws-admins")}},
		"alice@example.com":   {Roles: []string{Role("alice_personal")}},
		"dave@example.com":    {Roles: []string{Role("dave_personal")}},
		"carol@example.com":   {Roles: []string{Role("carol_personal")}},
		"mallory@example.com": {Roles: []string{Role("mallory_personal")}},
		"veteran@example.com": {Roles: []string{Role("veteran_personal")}},
		"aws-root":            {Roles: []string{Role("aws-root")}},
	}
}

// RolesFor is what the mapping grants a user with these groups: the roles
// of the email and of each group, plus the CLI-only roles when all is set
// (get_roles?all=true), sorted.
func (m GroupMapping) RolesFor(email string, groups []string, all bool) []string {
	set := map[string]bool{}
	for _, k := range append([]string{email}, groups...) {
		g, ok := m[k]
		if !ok {
			continue
		}
		for _, r := range g.Roles {
			set[r] = true
		}
		if all {
			for _, r := range g.CLIOnlyRoles {
				set[r] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

func (m GroupMapping) yaml() string {
	var b strings.Builder
	b.WriteString("dynamic_config:\n  group_mapping:\n")
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := func(name string, rs []string) {
		if len(rs) == 0 {
			return
		}
		fmt.Fprintf(&b, "      %s:\n", name)
		for _, r := range rs {
			fmt.Fprintf(&b, "        - %q\n", r)
		}
	}
	for _, k := range keys {
		fmt.Fprintf(&b, "    %q:\n", k)
		list("roles", m[k].Roles)
		list("cli_only_roles", m[k].CLIOnlyRoles)
	}
	return b.String()
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago: each is held until all are found, so none is handed out twice.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// WaitFor calls cond every step until it returns nil or timeout has passed,
// and then returns cond's last error.
func WaitFor(timeout, step time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v: %w", timeout, err)
		}
		time.Sleep(step)
	}
}

// Healthy reports whether url answers 200.
func Healthy(url string) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
