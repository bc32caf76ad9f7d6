package testbed

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// SyncBuffer is a bytes.Buffer safe for the concurrent writes of a child
// process's stdout and stderr and of server loggers.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// processLog is where a child process writes its stdout and stderr: a
// file, read back whole. A file rather than a pipe into a buffer, because
// what the process wrote before it answered a request is in the file when
// the answer arrives, while a pipe's copying goroutine may not have caught
// up yet, and a test that checks the log right after a request would fail
// now and then.
type processLog string

// createProcessLog creates the file path for cmd's stdout and stderr. The
// caller closes the returned file once the process has started (the child
// keeps its own descriptor).
func createProcessLog(cmd *exec.Cmd, path string) (*os.File, processLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("creating the process log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	return f, processLog(path), nil
}

// String returns everything the process has written so far.
func (l processLog) String() string {
	b, _ := os.ReadFile(string(l))
	return string(b)
}

// BuildCaddy builds ./cmd/caddy of the module in moduleRoot (see ModuleRoot)
// into the file out: Caddy with the consoleme_auth module.
func BuildCaddy(moduleRoot, out string) error {
	cmd := exec.Command("go", "build", "-o", out, "./cmd/caddy")
	cmd.Dir = moduleRoot
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building Caddy with the module (go build ./cmd/caddy in %s): %w\n%s", moduleRoot, err, output)
	}
	return nil
}

// Caddy is a running `caddy run` process.
type Caddy struct {
	Port      int
	BaseURL   string // http://127.0.0.1:<Port>
	Caddyfile Caddyfile
	Config    string // Caddyfile, rendered

	cmd     *exec.Cmd
	out     processLog
	exited  chan struct{}
	exitErr error
}

// StartCaddy runs `bin run` with the Caddyfile cf, written into dir, which
// also holds Caddy's output (caddy.log), autosave and certificate storage
// (instead of the user's home). It waits until the port named by cf's global http_port
// option accepts connections, for at most 20 s. When the start fails the
// process is stopped and the error carries the Caddyfile and Caddy's output.
func StartCaddy(bin, dir string, cf Caddyfile) (*Caddy, error) {
	port := cf.Global.HTTPPort
	if port == 0 {
		return nil, fmt.Errorf("starting caddy: the Caddyfile has no global http_port option:\n%s", cf)
	}
	c := &Caddy{
		Port:      port,
		BaseURL:   fmt.Sprintf("http://127.0.0.1:%d", port),
		Caddyfile: cf,
		Config:    cf.String(),
		exited:    make(chan struct{}),
	}
	cfgPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(c.Config), 0o600); err != nil {
		return nil, fmt.Errorf("writing the Caddyfile: %w", err)
	}
	c.cmd = exec.Command(bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	c.cmd.Env = append(os.Environ(),
		"HOME="+dir,
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
	)
	logFile, out, err := createProcessLog(c.cmd, filepath.Join(dir, "caddy.log"))
	if err != nil {
		return nil, err
	}
	c.out = out
	err = c.cmd.Start()
	logFile.Close()
	if err != nil {
		return nil, fmt.Errorf("starting caddy: %w", err)
	}
	go func() {
		c.exitErr = c.cmd.Wait()
		close(c.exited)
	}()

	err = WaitFor(20*time.Second, 50*time.Millisecond, func() error {
		if c.Exited() {
			return nil // nothing left to wait for
		}
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return err
	})
	switch {
	case err == nil && c.Exited():
		err = fmt.Errorf("caddy exited during start-up: %v", c.exitErr)
	case err != nil:
		err = fmt.Errorf("caddy did not listen on port %d: %w", port, err)
	}
	if err != nil {
		c.Stop()
		return nil, fmt.Errorf("%w\nCaddyfile:\n%s\ncaddy output:\n%s", err, c.Config, c.Output())
	}
	return c, nil
}

// Output returns everything the process has written so far.
func (c *Caddy) Output() string { return c.out.String() }

// Exited reports whether the process has ended.
func (c *Caddy) Exited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// Stop asks Caddy to shut down gracefully (SIGINT) and kills it if it has
// not exited after 10 s. It returns once the process is gone.
func (c *Caddy) Stop() {
	stopProcess(c.cmd.Process.Pid, false, syscall.SIGINT, c.exited, 10*time.Second)
}

// stopProcess sends sig to the process pid (to its whole process group
// with group), waits for exited to close, and sends SIGKILL after grace.
func stopProcess(pid int, group bool, sig syscall.Signal, exited <-chan struct{}, grace time.Duration) {
	select {
	case <-exited:
		return
	default:
	}
	if group {
		pid = -pid
	}
	_ = syscall.Kill(pid, sig)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-exited
	}
}
