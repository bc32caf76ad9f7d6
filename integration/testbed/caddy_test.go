package testbed

import (
	"errors"
	"strings"
	"testing"
)

// TestStartCaddyFailures checks that a Caddy that cannot start is an error
// that says why and shows the Caddyfile, instead of a wait that never ends.
func TestStartCaddyFailures(t *testing.T) {
	if _, err := StartCaddy("/nonexistent/caddy", t.TempDir(), Caddyfile{}); err == nil || !strings.Contains(err.Error(), "http_port") {
		t.Errorf("a Caddyfile without http_port: %v, want an error naming http_port", err)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cf := Caddyfile{Global: Global{HTTPPort: port}}
	// false(1) exits at once, as a Caddy that rejects its configuration.
	_, err = StartCaddy("false", t.TempDir(), cf)
	if err == nil || !strings.Contains(err.Error(), "exited during start-up") || !strings.Contains(err.Error(), cf.String()) {
		t.Errorf("a process that exits: %v, want an error saying it exited, with the Caddyfile", err)
	}
	// sh(1) takes `run` for a script, complains on stderr and exits: what
	// the process wrote must be in the error.
	_, err = StartCaddy("sh", t.TempDir(), cf)
	if err == nil {
		t.Fatal("sh as Caddy started")
	}
	if _, out, _ := strings.Cut(err.Error(), "caddy output:\n"); !strings.Contains(out, "run") {
		t.Errorf("a process that complains and exits: %v, want an error with its output", err)
	}
}

// TestFindChromiumHonoursCHROMIUM checks that $CHROMIUM wins over PATH and
// that a missing browser is ErrNoChromium.
func TestFindChromiumHonoursCHROMIUM(t *testing.T) {
	t.Setenv("CHROMIUM", "/nonexistent/chromium")
	if _, err := FindChromium(); !errors.Is(err, ErrNoChromium) || !strings.Contains(err.Error(), "/nonexistent/chromium") {
		t.Errorf("FindChromium with CHROMIUM naming no file: %v, want ErrNoChromium naming it", err)
	}
	t.Setenv("CHROMIUM", "true") // any program on PATH
	if p, err := FindChromium(); err != nil || !strings.HasSuffix(p, "/true") {
		t.Errorf("FindChromium with CHROMIUM=true: %q, %v, want the path of true", p, err)
	}
}
