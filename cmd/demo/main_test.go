package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The launcher builds the demo, says it is compiling when that takes
// longer than a build from the cache, and the result is the demo.
func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the demo, Caddy included; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "demo")
	var msgs bytes.Buffer
	// after 0: the notice comes at once, as it does on a first run.
	if err := build(bin, &msgs, 0); err != nil {
		t.Fatalf("%v\n%s", err, msgs.String())
	}
	if !strings.Contains(msgs.String(), "about 6½ minutes on 2 cores") || !strings.Contains(msgs.String(), "demo: compiled in") {
		t.Errorf("the build said:\n%s\nwant the compiling notice with its duration", msgs.String())
	}
	out, err := exec.Command(bin, "login", "-h").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Usage: go run ./cmd/demo login") {
		t.Errorf("the built demo's login -h: %v\n%s", err, out)
	}

	// Up to date: the go command has nothing to do, and the launcher says
	// nothing.
	msgs.Reset()
	if err := build(bin, &msgs, time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, msgs.String())
	}
	if msgs.Len() != 0 {
		t.Errorf("a build from the cache said:\n%s", msgs.String())
	}
}
