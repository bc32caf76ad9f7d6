package integration

import (
	"sort"
	"testing"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// The stand-in ConsoleMe is the test bed's (testbed.StandIn): it accepts
// the consoleme_auth cookie with ConsoleMe's rules, answers Weep's two API
// calls with ConsoleMe's JSON shapes, echoes requests under /echo/ and
// records every request it receives.
type (
	consoleMe       = testbed.StandIn
	upstreamRequest = testbed.UpstreamRequest
	authOutcome     = testbed.AuthOutcome
	echoReply       = testbed.EchoReply
	echoCookie      = testbed.EchoCookie
	standInSession  = testbed.StandInSession
)

const (
	tokenValid    = testbed.TokenValid
	tokenRejected = testbed.TokenRejected
	tokenCrash    = testbed.TokenCrash
)

// newConsoleMe starts the stand-in on 127.0.0.1 with ConsoleMe's default
// cookie and claim names; it is closed when the test ends.
func newConsoleMe(t testing.TB, secret string) *consoleMe {
	t.Helper()
	c, err := testbed.StartStandIn(secret, 0)
	if err != nil {
		t.Fatalf("starting the stand-in ConsoleMe: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rolesFor is the stand-in's role for each group.
func rolesFor(groups []string) []string { return testbed.StandInRoles(groups) }

// jsonInteger reports whether v is a JSON number written as an integer.
func jsonInteger(v any) (int64, bool) { return testbed.JSONInteger(v) }

// sortedCopy returns a sorted copy, for order-insensitive comparisons.
func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}
