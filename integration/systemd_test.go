package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// shippedCaddyPath is where deploy/caddy-consoleme-auth.service, and the
// README's deployment checklist, install the binary.
const shippedCaddyPath = "/usr/local/bin/caddy"

// TestSystemdUnit: `systemd-analyze verify` accepts the unit the README's
// deployment checklist installs. systemd checks that ExecStart's program
// exists, so the copy verified here runs the Caddy this test run built
// instead of /usr/local/bin/caddy; nothing else is changed.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		skipOrFail(t, "systemd-analyze is not installed (apt-get install systemd): the shipped systemd unit is not verified")
	}
	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile(filepath.Join(root, "deploy", "caddy-consoleme-auth.service"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(unit)
	for _, want := range []string{
		"ExecStart=" + shippedCaddyPath + " run --config /etc/caddy/Caddyfile",
		"ExecReload=" + shippedCaddyPath + " reload --config /etc/caddy/Caddyfile",
		"EnvironmentFile=/etc/caddy/consoleme-auth.env",
		"User=caddy",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the unit has no line %q, which README's checklist relies on", want)
		}
	}
	// --environ would print the environment, the JWT secret included, to
	// the journal.
	if strings.Contains(text, "--environ") {
		t.Error("the unit runs caddy with --environ, which logs the secrets in its environment")
	}

	bin := caddyBinary(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "caddy-consoleme-auth.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, shippedCaddyPath, bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	// And a unit systemd refuses is refused here: the check can fail.
	bad := filepath.Join(dir, "bad.service")
	if err := os.WriteFile(bad, []byte(strings.Replace(text, "Type=notify", "Type=notifyy", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", bad).CombinedOutput(); err == nil && strings.TrimSpace(string(out)) == "" {
		t.Errorf("systemd-analyze verify accepted a unit with Type=notifyy: it checks nothing here")
	}
}
