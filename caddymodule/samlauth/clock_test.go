package samlauth

import (
	"sync"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// expiredBy is the response of e's IdP to l whose assertion (Conditions
// and bearer confirmation) expired ago, issued just now.
func expiredBy(t *testing.T, e *attackEnv, l attackLogin, ago time.Duration) []byte {
	t.Helper()
	r := e.response(l)
	end := time.Now().UTC().Add(-ago)
	r.Assertion.Conditions.NotOnOrAfter = end
	r.Assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.NotOnOrAfter = end
	return r.XML(t)
}

// TestClockSkewIsPerProvider: a Provider's clock tolerances are its own.
// Another site's larger clock_skew (in the same process) does not let a
// Provider accept an assertion expired beyond its own, and a reload with a
// smaller clock_skew narrows the window at once.
func TestClockSkewIsPerProvider(t *testing.T) {
	e := newAttackEnv(t, nil)
	wide := newAttackProvider(t, e.mdFile, func(c *Config) { c.ClockSkew = 30 * time.Minute })
	narrow := newAttackProvider(t, e.mdFile, func(c *Config) { c.ClockSkew = time.Minute })

	verify := func(p *Provider, raw []byte, requestID string) error {
		_, err := p.Verify(t.Context(), raw, samltest.SPBaseURL, requestID, newMemGuard(), time.Now())
		return err
	}
	// Expired ten minutes ago: beyond the default 3 min and beyond 1 min.
	for _, tc := range []struct {
		name string
		p    *Provider
		skew time.Duration
	}{{"default clock_skew", e.p, 3 * time.Minute}, {"clock_skew 1m", narrow, time.Minute}} {
		name, p := tc.name, tc.p
		pe := *e
		pe.p = p
		l := pe.login(t)
		if err := verify(p, expiredBy(t, &pe, l, 10*time.Minute), l.requestID); err == nil {
			t.Errorf("%s: an assertion expired 10 min ago was accepted (another provider has clock_skew 30m)", name)
		}
		// Within its own tolerance, the same provider accepts.
		l = pe.login(t)
		if err := verify(p, expiredBy(t, &pe, l, tc.skew/2), l.requestID); err != nil {
			t.Errorf("%s: expired %v ago: %v", name, tc.skew/2, err)
		}
	}
	we := *e
	we.p = wide
	l := we.login(t)
	if err := verify(wide, expiredBy(t, &we, l, 10*time.Minute), l.requestID); err != nil {
		t.Errorf("clock_skew 30m: an assertion expired 10 min ago: %v", err)
	}
}

// TestProvisionWhileVerifying: Providers created (as a configuration
// reload does) while another verifies responses touch no state the
// verification reads; run with -race, which reports the library's
// tolerances being written under a lock while read without one.
func TestProvisionWhileVerifying(t *testing.T) {
	e := newAttackEnv(t, nil)
	cfg := spConfig(t, e.mdFile)
	const rounds = 20
	type login struct {
		id  string
		raw []byte
	}
	logins := make([]login, rounds)
	for i := range logins {
		l := e.login(t)
		logins[i] = login{l.requestID, e.response(l).XML(t)}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range rounds {
			c := cfg
			c.ClockSkew = time.Duration(i+1) * time.Minute
			if _, err := New(c, nil); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for _, l := range logins {
			if _, err := e.p.Verify(t.Context(), l.raw, samltest.SPBaseURL, l.id, e.guard, time.Now()); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
}
