// Command demo runs the whole ConsoleMe CLI challenge login on this machine,
// with nothing to configure:
//
//	go run ./cmd/demo
//
// It starts, in one process and on loopback only:
//
//   - Caddy with the consoleme_auth module (memory store), configured from a
//     generated Caddyfile;
//   - a demo SAML identity provider (github.com/crewjam/saml/samlidp) that
//     knows one demo user, or with -oidc a real OpenID provider
//     (oidc-provider on Node.js);
//   - a stand-in for ConsoleMe behind Caddy's reverse_proxy, which checks the
//     consoleme_auth cookie with ConsoleMe's rules and shows who is signed in;
//     or, given -consoleme (or $REAL_CONSOLEME_DIR) naming the launcher
//     directory integration/realconsoleme, the real Netflix ConsoleMe that
//     scripts/test-deps installed, with its own Redis, mapping the demo
//     user's groups to roles.
//
// It then prints the curl commands that walk the flow by hand. The same
// program is also a tiny Weep-like client:
//
//	go run ./cmd/demo login alice@example.com
//
// asks for a challenge, prints the link and opens it in the desktop's
// browser when there is one (xdg-open, or open on macOS; -no-open turns that
// off), polls until the browser approves it (or stops at once when "This
// wasn't me" cancels it) and calls ConsoleMe with the token it got.
//
// Keys, the JWT secret and the Caddyfile are made at start in a temporary
// directory that is removed on exit (Ctrl-C).
//
// This command itself only builds the demo (cmd/demo/internal/app, which
// compiles Caddy) into the user's cache directory and runs it, so that it
// can say what is going on while the first, long compilation runs: this
// package uses the standard library alone and compiles in seconds.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// appPackage is the demo proper.
const appPackage = "github.com/consoleme-auth/caddy-consoleme-auth/cmd/demo/internal/app"

// noticeAfter is how long a build may take before the demo says it is
// compiling: a build from Go's cache takes a second or two.
const noticeAfter = 3 * time.Second

// compileNotice is printed when the build is not served from the cache.
const compileNotice = `demo: compiling the demo (Caddy with the consoleme_auth module, a SAML IdP, a stand-in ConsoleMe).
      The first time, with an empty Go build cache, this takes about 6½ minutes on 2 cores,
      downloads included (the go: downloading lines); later runs start in seconds.
`

func main() {
	bin, err := binaryPath()
	if err == nil {
		err = build(bin, os.Stderr, noticeAfter)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	os.Exit(run(bin, os.Args[1:]))
}

// binaryPath is where the built demo is kept: caddy-consoleme-auth/demo-<id>
// in the user's cache directory (or the temporary directory without one),
// where <id> stands for this checkout, so that two checkouts on one machine
// never run each other's demo.
func binaryPath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "caddy-consoleme-auth")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("making a directory for the demo's binary: %w", err)
	}
	name := "demo"
	if _, file, _, ok := runtime.Caller(0); ok {
		sum := sha256.Sum256([]byte(filepath.Dir(file)))
		name += "-" + hex.EncodeToString(sum[:6])
	}
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	return filepath.Join(dir, name), nil
}

// build runs `go build -o bin` for the demo, with the go command's own
// messages on msgs; when it takes longer than after, it says first that it
// is compiling and for about how long.
func build(bin string, msgs io.Writer, after time.Duration) error {
	// The go command's output is copied by os/exec's goroutines unless
	// msgs is a file; the notice is written from here: one lock for both.
	msgs = &lockedWriter{w: msgs}
	cmd := exec.Command(goCommand(), "build", "-o", bin, appPackage)
	cmd.Stdout, cmd.Stderr = msgs, msgs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("building the demo: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	start := time.Now()
	select {
	case err := <-done:
		return buildErr(err)
	case <-time.After(after):
		fmt.Fprint(msgs, compileNotice)
	}
	err := <-done
	if err == nil {
		fmt.Fprintf(msgs, "demo: compiled in %s.\n", time.Since(start).Round(time.Second))
	}
	return buildErr(err)
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func buildErr(err error) error {
	if err != nil {
		return fmt.Errorf("building the demo (go build %s): %w", appPackage, err)
	}
	return nil
}

// goCommand is the go command that runs this program (go run puts its
// GOROOT in the environment), else the one on PATH.
func goCommand() string {
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// run runs the demo with args and returns its exit status. Ctrl-C reaches
// the demo straight from the terminal (it is in the same process group), and
// the demo stops cleanly; this process ignores it and waits. A SIGTERM sent
// to this process alone is passed on.
func run(bin string, args []string) int {
	signal.Ignore(os.Interrupt)
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	go func() {
		for sig := range terms {
			_ = cmd.Process.Signal(sig)
		}
	}()
	err := cmd.Wait()
	signal.Stop(terms)
	if err == nil {
		return 0
	}
	if exit, ok := err.(*exec.ExitError); ok && exit.ExitCode() >= 0 {
		return exit.ExitCode()
	}
	fmt.Fprintln(os.Stderr, "demo:", err)
	return 1
}
