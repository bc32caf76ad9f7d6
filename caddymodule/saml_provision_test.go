package consolemeauth

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// TestProvisionDuringSAMLLogins: provisioning handlers with SAML blocks
// (a configuration reload, each with its own clock_skew) while a running
// one accepts logins at its ACS touches nothing the running one reads; run
// under -race, which used to report the SAML library's process-wide
// tolerances being widened under a lock while the verification read them
// without one.
func TestProvisionDuringSAMLLogins(t *testing.T) {
	e := newAttackEnv(t, nil)
	var done atomic.Bool
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		defer done.Store(true)
		for i := range 4 {
			newAttackHandler(t, e.mdFile, func(c *SAMLConfig) { c.ClockSkew = caddy.Duration(time.Duration(i+5) * time.Minute) }, nil)
		}
	}()
	// At most 40 logins: one client may start 60 a minute (login_rate_limit),
	// and a slow machine provisions slowly.
	logins := 0
	for (!done.Load() || logins == 0) && logins < 40 {
		l := e.login(t)
		e.expectLogin(t, e.post(t, l.relay, e.response(l).XML(t)), l, "alice@example.com")
		logins++
	}
	<-finished
	t.Logf("%d logins while 4 handlers were provisioned", logins)
}
