//go:build unix

package redistest

import (
	"syscall"
	"testing"
)

// Freeze stops the process (SIGSTOP) until the returned resume is called
// (or the test ends): the kernel still accepts connections, but the process
// reads nothing, answers nothing and, as a replica, acknowledges nothing.
func (s *Server) Freeze(tb testing.TB) (resume func()) {
	tb.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		tb.Fatalf("SIGSTOP %s: %v", s.Addr, err)
	}
	resumed := false
	resume = func() {
		if !resumed {
			resumed = true
			if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil && s.done != nil {
				tb.Errorf("SIGCONT %s: %v", s.Addr, err)
			}
		}
	}
	tb.Cleanup(resume)
	return resume
}
