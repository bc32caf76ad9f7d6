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

// The shapes of ConsoleMe's GET /api/v2/get_roles answer, as Weep decodes it.
type (
	rolesResponse struct {
		Status     string `json:"status"`
		StatusCode int    `json:"status_code"`
		Data       struct {
			Roles []role `json:"roles"`
		} `json:"data"`
	}
	role struct {
		Arn                 string `json:"arn"`
		AccountID           string `json:"account_id"`
		AccountFriendlyName string `json:"account_friendly_name"`
		RoleName            string `json:"role_name"`
		Apps                struct {
			AppDetails []appDetail `json:"app_details"`
		} `json:"apps"`
	}
	appDetail struct {
		Name     string `json:"name"`
		Owner    string `json:"owner"`
		OwnerURL string `json:"owner_url"`
		AppURL   string `json:"app_url"`
	}
)
