// Package storetest is the conformance suite for store.Store: every backend
// runs the same table of cases, so that the handler can rely on the contract
// whatever holds its challenges.
package storetest

import (
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// base is the "now" of the suite. Every time the suite passes is base plus an
// offset, so a backend must use the times it is given, never its own clock.
var base = time.Unix(1_800_000_000, 0)

// ttl is the lifetime of the suite's challenges, as the handler's default.
const ttl = 2 * time.Minute

// Times the suite uses, relative to base.
var (
	created   = base
	soon      = base.Add(10 * time.Second)     // well within the ttl
	expiresAt = base.Add(ttl)                  // the challenges' Expires
	late      = base.Add(ttl + 5*time.Second)  // expired, still remembered
	muchLater = base.Add(ttl + 10*time.Second) // expired, still remembered
	forgotten = base.Add(ttl + 24*time.Hour)   // expired and forgotten
	// authTime is when the suite's approvers signed in, with nanoseconds
	// and in a location of its own, to check that both survive.
	authTime = time.Unix(1_800_000_000-600, 123_456_789).In(time.FixedZone("UTC+5:30", 5*3600+1800))
)

const (
	creatorIP = "192.0.2.10"
	otherIP   = "198.51.100.7"
)

// Config describes the store under test.
type Config struct {
	// MaxLoginsPerClient is the bound of live logins per client the stores
	// are made with; it must be between 1 and 50.
	MaxLoginsPerClient int
}

// Run runs the conformance suite against the stores newStore makes, one
// subtest per case.
//
// newStore must return a new, empty store for each call; Run closes it when
// the subtest ends and fails the subtest if Close fails. The store must
// remember an expired challenge for at least 15 seconds after its expiry
// (the suite checks PollExpired 5 and 10 seconds after it) and forget it
// within a day, must allow at least 100 pending challenges, logins and
// MarkOnce keys, and must bound the logins of one client by
// cfg.MaxLoginsPerClient.
//
// No case waits for the clock: every method takes "now", and the suite
// passes later times to see things expire.
func Run(t *testing.T, cfg Config, newStore func(t *testing.T) store.Store) {
	t.Helper()
	if cfg.MaxLoginsPerClient < 1 || cfg.MaxLoginsPerClient > 50 {
		t.Fatalf("storetest: MaxLoginsPerClient %d, want 1 to 50", cfg.MaxLoginsPerClient)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.run(t, s, cfg)
		})
	}
}

// caseFunc is one case: most ignore the Config.
type caseFunc func(t *testing.T, s store.Store, cfg Config)

// plain adapts a case that needs no Config.
func plain(f func(t *testing.T, s store.Store)) caseFunc {
	return func(t *testing.T, s store.Store, _ Config) { f(t, s) }
}

var cases = []struct {
	name string
	run  caseFunc
}{
	{"CreateGet", plain(testCreateGet)},
	{"CreateCopiesInput", plain(testCreateCopiesInput)},
	{"CreateExisting", plain(testCreateExisting)},
	{"CreateConcurrentSameToken", plain(testCreateConcurrentSameToken)},
	{"CreateChoosesToken", plain(testCreateChoosesToken)},
	{"GetUnknown", plain(testGetUnknown)},
	{"GetReturnsCopy", plain(testGetReturnsCopy)},
	{"GetExpired", plain(testGetExpired)},
	{"TokensAreExactStrings", plain(testTokensAreExactStrings)},
	{"PollUnknown", plain(testPollUnknown)},
	{"PollPending", plain(testPollPending)},
	{"PollPendingAtExpiry", plain(testPollPendingAtExpiry)},
	{"PollOtherIPChecked", plain(testPollOtherIPChecked)},
	{"PollOtherIPUnchecked", plain(testPollOtherIPUnchecked)},
	{"PollExpired", plain(testPollExpired)},
	{"PollExpiredBeforeIPCheck", plain(testPollExpiredBeforeIPCheck)},
	{"PollForgotten", plain(testPollForgotten)},
	{"ViewSetsNonce", plain(testViewSetsNonce)},
	{"ViewTwice", plain(testViewTwice)},
	{"ViewExpired", plain(testViewExpired)},
	{"ViewUnknown", plain(testViewUnknown)},
	{"ViewConcurrent", plain(testViewConcurrent)},
	{"ApproveWithoutView", plain(testApproveWithoutView)},
	{"ApproveWrongNonce", plain(testApproveWrongNonce)},
	{"ApproveUnknown", plain(testApproveUnknown)},
	{"ApproveExpired", plain(testApproveExpired)},
	{"ApproveThenPoll", plain(testApproveThenPoll)},
	{"ApproveCopiesGroups", plain(testApproveCopiesGroups)},
	{"ApproveTwice", plain(testApproveTwice)},
	{"ApproveConcurrent", plain(testApproveConcurrent)},
	{"ApproveAuthTime", plain(testApproveAuthTime)},
	{"CancelThenPoll", plain(testCancelThenPoll)},
	{"CancelApproved", plain(testCancelApproved)},
	{"CancelExpired", plain(testCancelExpired)},
	{"CancelUnknown", plain(testCancelUnknown)},
	{"PollSuccessOtherIPChecked", plain(testPollSuccessOtherIPChecked)},
	{"PollSuccessOtherIPUnchecked", plain(testPollSuccessOtherIPUnchecked)},
	{"PollSuccessAfterExpiry", plain(testPollSuccessAfterExpiry)},
	{"PollConcurrentSuccess", plain(testPollConcurrentSuccess)},
	{"PollSuccessForgets", plain(testPollSuccessForgets)},
	{"Isolation", plain(testIsolation)},
	{"Unicode", plain(testUnicode)},
	{"EmptyGroups", plain(testEmptyGroups)},
	{"LoginRoundTrip", plain(testLoginRoundTrip)},
	{"LoginUnknown", plain(testLoginUnknown)},
	{"LoginExpired", plain(testLoginExpired)},
	{"LoginCopiesInput", plain(testLoginCopiesInput)},
	{"LoginConcurrentTake", plain(testLoginConcurrentTake)},
	{"LoginClientBound", testLoginClientBound},
	{"LoginClientExpiryFreesSlot", testLoginClientExpiryFreesSlot},
	{"LoginClientTakeFreesSlot", testLoginClientTakeFreesSlot},
	{"LoginClientReplace", testLoginClientReplace},
	{"LoginClientConcurrent", testLoginClientConcurrent},
	{"MarkOnce", plain(testMarkOnce)},
	{"MarkOnceConcurrent", plain(testMarkOnceConcurrent)},
	{"MarkOnceAfterExpiry", plain(testMarkOnceAfterExpiry)},
	{"MarkOnceExtends", plain(testMarkOnceExtends)},
	{"MarkOncePastExpiry", plain(testMarkOncePastExpiry)},
}
