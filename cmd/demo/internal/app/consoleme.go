package main

import (
	"fmt"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// startConsoleMe starts the test bed's stand-in for an unchanged ConsoleMe
// behind Caddy. It knows nothing about the module: like ConsoleMe, it only
// shares the jwt_secret and trusts a consoleme_auth cookie that passes
// ConsoleMe's checks.
//
//	GET /                            who is signed in, as a page
//	GET /api/v2/get_roles?all=true   Weep's role list (ConsoleMe's JSON; one
//	                                 role per group)
func startConsoleMe(secret string, port int) (*testbed.StandIn, error) {
	c, err := testbed.StartStandIn(secret, port)
	if err != nil {
		return nil, fmt.Errorf("%w (choose another port with -upstream-port, or 0 for any free port)", err)
	}
	return c, nil
}

// The test bed's Weep-like client (it logs in the way Weep's challenge
// authentication does, so the demo shows the exact calls a real CLI makes)
// and the answers it decodes.
type (
	weepClient    = testbed.WeepClient
	challenge     = testbed.WeepChallenge
	credentials   = testbed.WeepCredentials
	rolesResponse = testbed.RolesResponse
)
