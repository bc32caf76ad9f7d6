package testbed

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Redis is a redis-server process on a loopback port, without persistence.
type Redis struct {
	Port int
	URL  string // redis://127.0.0.1:<Port>/0
	Dir  string // its working directory and log

	cmd  *exec.Cmd
	done chan struct{}
}

// ErrNoRedis says that redis-server is not installed.
var ErrNoRedis = errors.New("redis-server is not installed (apt-get install redis-server)")

// StartRedis starts redis-server on a free loopback port, working in dir,
// and waits until it answers PING.
func StartRedis(dir string) (*Redis, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, ErrNoRedis
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	r := &Redis{Port: port, URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), Dir: dir}
	return r, r.Start()
}

// Start starts the server (again, after Stop) on the same port.
func (r *Redis) Start() error {
	r.cmd = exec.Command("redis-server", "--port", fmt.Sprint(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.Dir, "--logfile", filepath.Join(r.Dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(r.cmd, r.done)
	err := WaitFor(10*time.Second, 50*time.Millisecond, func() error {
		select {
		case <-r.done:
			return errors.New("redis-server exited")
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.Port), 200*time.Millisecond)
		if err != nil {
			return err
		}
		defer c.Close()
		_, _ = c.Write([]byte("PING\r\n"))
		buf := make([]byte, 16)
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		n, _ := c.Read(buf)
		if !strings.HasPrefix(string(buf[:n]), "+PONG") {
			return fmt.Errorf("PING answered %q", buf[:n])
		}
		return nil
	})
	if err != nil {
		r.Stop()
		log, _ := os.ReadFile(filepath.Join(r.Dir, "redis.log"))
		return fmt.Errorf("redis-server did not answer PING: %v\n%s", err, log)
	}
	return nil
}

// Stop kills the server and waits for it to exit.
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}
