package samlauth

import (
	"sync"
	"time"

	"github.com/crewjam/saml"
)

// The SAML library checks an assertion's validity window with two package
// variables, saml.MaxClockSkew (how far NotBefore and NotOnOrAfter may be
// off) and saml.MaxIssueDelay (how old an IssueInstant may be), shared by
// every SP in the process. It also reads the time from its own package
// clock (saml.TimeNow), which this package leaves alone: swapping it per
// call would race between concurrent logins.
//
// New widens the tolerances to a Provider's ClockSkew and never narrows
// them, so that one site asking for more leeway does not cut another's
// short; the result is the largest ClockSkew of any Provider created in the
// process. toleranceMu serialises the widening and the reads made through
// Tolerances.
var toleranceMu sync.Mutex

// widenTolerances raises saml.MaxClockSkew to skew and saml.MaxIssueDelay
// to 90 s + skew where they are smaller; it never lowers them.
func widenTolerances(skew time.Duration) {
	toleranceMu.Lock()
	defer toleranceMu.Unlock()
	if skew > saml.MaxClockSkew {
		saml.MaxClockSkew = skew
	}
	if d := 90*time.Second + skew; d > saml.MaxIssueDelay {
		saml.MaxIssueDelay = d
	}
}

// Tolerances returns the SAML library's current process-wide tolerances:
// skew, how far an assertion's NotBefore and NotOnOrAfter may be off, and
// issueDelay, how old an IssueInstant may be. Tests use it to build
// responses just inside or outside the window.
func Tolerances() (skew, issueDelay time.Duration) {
	toleranceMu.Lock()
	defer toleranceMu.Unlock()
	return saml.MaxClockSkew, saml.MaxIssueDelay
}
