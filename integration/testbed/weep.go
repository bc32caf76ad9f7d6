package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// WeepClient logs in the way Weep's challenge authentication does (Weep's
// pkg/httpAuth/challenge), so the demo shows the exact calls a real CLI makes.
type WeepClient struct {
	BaseURL   string        // Weep's consoleme_url, without a trailing slash
	PollEvery time.Duration // Weep: 3 s, first poll after one interval
	Timeout   time.Duration // Weep: 2 minutes
	Out       io.Writer
	HTTP      *http.Client // nil: http.DefaultClient, as Weep

	// Open, when set, opens the challenge URL in the browser, as Weep
	// does; the URL is printed either way. OpenWith names the opener.
	Open     func(url string) error
	OpenWith string

	// StopWhenCancelled ends the polling at once, with ErrCancelled, when
	// a challenge that was pending becomes unknown. The module forgets a
	// challenge that has not expired only when it hands out its token
	// (which this client would have received) or when "This wasn't me"
	// cancels it, so for this client unknown after pending means
	// cancelled (a Redis failover that loses the challenge looks the
	// same, and ends the same way: no credentials). Weep itself keeps polling until its timeout, which is
	// what the poller's answer, ConsoleMe's own "unknown", leaves it to do.
	StopWhenCancelled bool
}

// ErrCancelled says that the challenge was cancelled in the browser ("This
// wasn't me"): no credentials were issued.
var ErrCancelled = errors.New(`the request was cancelled in the browser ("This wasn't me"): no credentials were issued`)

// WeepChallenge is the generator's answer.
type WeepChallenge struct {
	ChallengeURL string `json:"challenge_url"`
	PollingURL   string `json:"polling_url"`
}

// WeepCredentials is the poller's answer; on success Weep saves it as
// ~/.weep/credentials and sends EncodedJWT as the CookieName cookie.
type WeepCredentials struct {
	Status     string `json:"status"`
	EncodedJWT string `json:"encoded_jwt,omitempty"`
	CookieName string `json:"cookie_name,omitempty"`
	Expiration int64  `json:"expiration,omitempty"`
	User       string `json:"user,omitempty"`
}

func (c *WeepClient) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Login asks for a challenge for user, prints its URL for the browser, polls
// until the challenge is approved and then calls ConsoleMe with the token.
func (c *WeepClient) Login(ctx context.Context, user string) (*WeepCredentials, error) {
	ch, err := c.Challenge(ctx, user)
	if err != nil {
		return nil, err
	}
	if c.Open == nil {
		fmt.Fprintf(c.out(), "\nOpen this URL in your browser, sign in and click Approve:\n\n    %s\n\n", ch.ChallengeURL)
	} else {
		fmt.Fprintf(c.out(), "\nOpening this URL in your browser (%s); sign in there and click Approve:\n\n    %s\n\n", c.OpenWith, ch.ChallengeURL)
		if err := c.Open(ch.ChallengeURL); err != nil {
			fmt.Fprintf(c.out(), "Could not open it (%v): open it yourself.\n\n", err)
		}
	}
	fmt.Fprintf(c.out(), "Polling %s every %s for up to %s…\n", ch.PollingURL, c.PollEvery, c.Timeout)

	creds, err := c.Poll(ctx, ch.PollingURL)
	if err != nil {
		return nil, err
	}
	pretty, _ := json.MarshalIndent(creds, "", "  ")
	fmt.Fprintf(c.out(), "\nApproved. The poller's answer (what Weep saves to ~/.weep/credentials):\n%s\n", pretty)

	// Now use the token, as Weep's `weep list` does.
	rolesURL := c.BaseURL + "/api/v2/get_roles?all=true"
	fmt.Fprintf(c.out(), "\nCalling ConsoleMe with it:\n\n    curl -s -H 'Cookie: %s=%s' '%s'\n\n", creds.CookieName, creds.EncodedJWT, rolesURL)
	var roles RolesResponse
	if err := c.getJSON(ctx, rolesURL, creds.CookieName+"="+creds.EncodedJWT, &roles); err != nil {
		return creds, fmt.Errorf("calling ConsoleMe: %w", err)
	}
	fmt.Fprintf(c.out(), "ConsoleMe accepted the token for %s. Roles:\n", creds.User)
	for _, r := range roles.Data.Roles {
		fmt.Fprintf(c.out(), "    %s\n", r.Arn)
	}
	if len(roles.Data.Roles) == 0 {
		fmt.Fprintln(c.out(), "    (none)")
	}
	return creds, nil
}

// Challenge asks the generator for a challenge for user, as Weep does.
func (c *WeepClient) Challenge(ctx context.Context, user string) (*WeepChallenge, error) {
	// Weep puts the user into the path as it is, without escaping.
	genURL := c.BaseURL + "/noauth/v1/challenge_generator/" + user
	fmt.Fprintf(c.out(), "GET %s\n", genURL)
	var ch WeepChallenge
	if err := c.getJSON(ctx, genURL, "", &ch); err != nil {
		return nil, fmt.Errorf("asking for a challenge: %w", err)
	}
	if ch.ChallengeURL == "" || ch.PollingURL == "" {
		return nil, errors.New("asking for a challenge: the answer has no challenge_url or polling_url")
	}
	return &ch, nil
}

func (c *WeepClient) out() io.Writer {
	if c.Out == nil {
		return io.Discard
	}
	return c.Out
}

// Poll asks polling_url every PollEvery until it says success. Like Weep it
// treats every other status (pending, unknown, expired, unauthorized) as
// "not yet" and gives up after Timeout; with StopWhenCancelled it returns
// ErrCancelled as soon as a pending challenge turns unknown.
func (c *WeepClient) Poll(ctx context.Context, pollingURL string) (*WeepCredentials, error) {
	tick := time.NewTicker(c.PollEvery)
	defer tick.Stop()
	timeout := time.NewTimer(c.Timeout)
	defer timeout.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout.C:
			return nil, fmt.Errorf("not approved after %s (last status %q)", c.Timeout, last)
		case <-tick.C:
		}
		var creds WeepCredentials
		if err := c.getJSON(ctx, pollingURL, "", &creds); err != nil {
			return nil, fmt.Errorf("polling: %w", err)
		}
		if creds.Status == "success" {
			return &creds, nil
		}
		if c.StopWhenCancelled && last == "pending" && creds.Status == "unknown" {
			return nil, ErrCancelled
		}
		if creds.Status != last {
			fmt.Fprintf(c.out(), "  status: %s\n", creds.Status)
			last = creds.Status
		}
	}
}

// getJSON GETs url as Weep does (Content-Type: application/json, an optional
// cookie) and decodes the JSON answer into v. Unlike Weep, which ignores the
// status, it reports a non-2xx answer with its body, so a refusal shows.
func (c *WeepClient) getJSON(ctx context.Context, url, cookie string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

// RolesResponse is ConsoleMe's GET /api/v2/get_roles answer, as Weep
// decodes it.
type RolesResponse struct {
	Status     string `json:"status"`
	StatusCode int    `json:"status_code"`
	Data       struct {
		Roles []RoleEntry `json:"roles"`
	} `json:"data"`
}

// RoleEntry is one role of a RolesResponse.
type RoleEntry struct {
	Arn                 string `json:"arn"`
	AccountID           string `json:"account_id"`
	AccountFriendlyName string `json:"account_friendly_name"`
	RoleName            string `json:"role_name"`
	Apps                struct {
		AppDetails []struct {
			Name     string `json:"name"`
			Owner    string `json:"owner"`
			OwnerURL string `json:"owner_url"`
			AppURL   string `json:"app_url"`
		} `json:"app_details"`
	} `json:"apps"`
}
