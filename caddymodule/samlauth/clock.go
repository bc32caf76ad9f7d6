package samlauth

import (
	"errors"
	"fmt"
	"time"

	"github.com/crewjam/saml"
)

// Clock tolerances
//
// The SAML library checks an assertion's validity window with two package
// variables, saml.MaxClockSkew (how far NotBefore and NotOnOrAfter may be
// off) and saml.MaxIssueDelay (how old an IssueInstant may be), which it
// reads without any lock and shares among every SP in the process.
// Changing them while a response is being verified is a data race, and a
// per-site setting cannot live there. So this package sets them once, when
// the program starts, to the widest any Config may ask for (MaxClockSkew),
// never writes them again, and checks every validity window a second time
// with the Provider's own tolerances once the library has accepted a
// response (checkWindow), and a LogoutResponse's age likewise. A Provider's
// tolerances are its own: another site's larger ClockSkew does not widen
// them, and a reload with a smaller one narrows them at once.
//
// The library also reads the time from its own package clock
// (saml.TimeNow); so does checkWindow, so that both see one time.

// MaxClockSkew is the largest Config.ClockSkew accepted.
const MaxClockSkew = time.Hour

// The library's defaults, which a zero Config.ClockSkew keeps.
const (
	defaultClockSkew  = 180 * time.Second
	defaultIssueDelay = 90 * time.Second
)

func init() {
	saml.MaxClockSkew = MaxClockSkew
	saml.MaxIssueDelay = defaultIssueDelay + MaxClockSkew
}

// tolerances are the clock tolerances of a Config: skew, how far NotBefore
// and NotOnOrAfter may be off, and issueDelay, how old an IssueInstant may
// be.
func (c *Config) tolerances() (skew, issueDelay time.Duration) {
	if c.ClockSkew == 0 {
		return defaultClockSkew, defaultIssueDelay
	}
	return c.ClockSkew, defaultIssueDelay + c.ClockSkew
}

// Tolerances returns the clock tolerances of a Provider whose ClockSkew is
// zero (the SAML library's defaults): skew, how far an assertion's
// NotBefore and NotOnOrAfter may be off, and issueDelay, how old an
// IssueInstant may be. Tests use it to build responses just inside or
// outside the window.
func Tolerances() (skew, issueDelay time.Duration) {
	return defaultClockSkew, defaultIssueDelay
}

// Tolerances returns p's clock tolerances (see the package function).
func (p *Provider) Tolerances() (skew, issueDelay time.Duration) {
	return p.cfg.tolerances()
}

// checkWindow checks, with p's tolerances and at the library's time, the
// windows the library checked with its process-wide ones: the Response's
// IssueInstant (responseIssued), and the assertion's IssueInstant,
// Conditions and bearer SubjectConfirmationData NotOnOrAfter.
func (p *Provider) checkWindow(responseIssued string, a *saml.Assertion) error {
	skew, delay := p.Tolerances()
	now := saml.TimeNow()
	if responseIssued != "" {
		t, err := time.Parse(time.RFC3339, responseIssued)
		if err != nil {
			return fmt.Errorf("response IssueInstant %q is not a time", responseIssued)
		}
		if t.Add(delay).Before(now) {
			return fmt.Errorf("response IssueInstant expired at %s", t.Add(delay))
		}
	}
	if a.IssueInstant.Add(delay).Before(now) {
		return fmt.Errorf("expired on %s", a.IssueInstant.Add(delay))
	}
	if a.Subject != nil {
		for _, sc := range a.Subject.SubjectConfirmations {
			if d := sc.SubjectConfirmationData; d != nil && d.NotOnOrAfter.Add(skew).Before(now) {
				return errors.New("assertion SubjectConfirmationData is expired")
			}
		}
	}
	if c := a.Conditions; c != nil {
		if c.NotBefore.Add(-skew).After(now) {
			return errors.New("assertion Conditions is not yet valid")
		}
		if c.NotOnOrAfter.Add(skew).Before(now) {
			return errors.New("assertion Conditions is expired")
		}
	}
	return nil
}
