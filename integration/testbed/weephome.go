package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// BuildWeep builds the real Weep from its source folder src (see
// WeepSource) into the file out. src may be read-only: the binary goes to
// out, and the module cache is kept writable (GOFLAGS=-modcacherw), as
// scripts/test-deps builds it.
func BuildWeep(src, out string) error {
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -modcacherw"))
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the real Weep (go build in %s): %w\n%s", src, err, output)
	}
	return nil
}

// WeepHome is a home directory for the real Weep: its config in
// ~/.weep/weep.yaml (challenge authentication), its cached token in
// ~/.weep/credentials, and on its PATH an xdg-open that hands the
// challenge URL Weep opens to the caller (see OpenedURL), who plays the
// user's browser.
type WeepHome struct {
	Bin string // the weep binary
	Dir string // $HOME

	opener  string // the folder holding xdg-open
	urlFile string // where xdg-open writes the URL it was given
}

// NewWeepHome prepares dir as Weep's home: consoleme_url is consoleMeURL
// and the challenge is asked for user.
func NewWeepHome(bin, dir, consoleMeURL, user string) (*WeepHome, error) {
	h := &WeepHome{Bin: bin, Dir: dir, opener: filepath.Join(dir, "opener")}
	h.urlFile = filepath.Join(h.opener, "opened-url")
	for _, d := range []string{filepath.Join(dir, ".weep"), h.opener} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	cfg := "consoleme_url: " + consoleMeURL + "\nauthentication_method: challenge\n" +
		"challenge_settings:\n  user: " + user + "\n"
	if err := os.WriteFile(filepath.Join(dir, ".weep", "weep.yaml"), []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	script := "#!/bin/sh\nprintf '%s' \"$1\" >" + h.urlFile + ".tmp && mv " + h.urlFile + ".tmp " + h.urlFile + "\n"
	if err := os.WriteFile(filepath.Join(h.opener, "xdg-open"), []byte(script), 0o755); err != nil {
		return nil, err
	}
	return h, nil
}

// CredentialsPath is the file where Weep caches the poller's answer (the
// token).
func (h *WeepHome) CredentialsPath() string { return filepath.Join(h.Dir, ".weep", "credentials") }

// WeepRun is one weep command, running or done.
type WeepRun struct {
	out  SyncBuffer
	done chan struct{}
	err  error
}

// Start runs weep with args in the home, in the background; ctx bounds it.
func (h *WeepHome) Start(ctx context.Context, args ...string) (*WeepRun, error) {
	cmd := exec.CommandContext(ctx, h.Bin, args...)
	cmd.Dir = h.Dir
	cmd.Env = append(os.Environ(), "HOME="+h.Dir,
		"PATH="+h.opener+string(os.PathListSeparator)+os.Getenv("PATH"))
	r := &WeepRun{done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &r.out, &r.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting weep: %w", err)
	}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	return r, nil
}

// Wait waits for the command to end and returns its error (nil: exit 0).
func (r *WeepRun) Wait() error {
	<-r.done
	return r.err
}

// Done is closed when the command has ended.
func (r *WeepRun) Done() <-chan struct{} { return r.done }

// Exited reports whether the command has ended.
func (r *WeepRun) Exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Output is what the command wrote (stdout and stderr) so far.
func (r *WeepRun) Output() string { return r.out.String() }

// OpenedURL waits up to timeout for Weep to open a URL with xdg-open and
// returns it; each URL is returned once. It gives up early when run ends.
func (h *WeepHome) OpenedURL(run *WeepRun, timeout time.Duration) (string, error) {
	var u string
	err := WaitFor(timeout, 50*time.Millisecond, func() error {
		b, err := os.ReadFile(h.urlFile)
		if err == nil {
			u = string(b)
			return os.Remove(h.urlFile)
		}
		if run != nil && run.Exited() {
			return nil
		}
		return errors.New("weep has opened no URL")
	})
	if err == nil && u == "" {
		err = errors.New("weep ended without opening a URL")
	}
	return u, err
}
