//go:build !unix

package redistest

import "testing"

// Freeze needs SIGSTOP, which only Unix has: the test is skipped.
func (s *Server) Freeze(tb testing.TB) (resume func()) {
	tb.Helper()
	tb.Skip("freezing a process needs SIGSTOP (Unix only)")
	return func() {}
}
