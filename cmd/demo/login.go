package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// weepClient logs in the way Weep's challenge authentication does (Weep's
// pkg/httpAuth/challenge), so the demo shows the exact calls a real CLI makes.
type weepClient struct {
	BaseURL   string        // Weep's consoleme_url, without a trailing slash
	PollEvery time.Duration // Weep: 3 s, first poll after one interval
	Timeout   time.Duration // Weep: 2 minutes
	Out       io.Writer
	HTTP      *http.Client // nil: http.DefaultClient, as Weep

	// Open, when set, opens the challenge URL in the browser, as Weep
	// does; the URL is printed either way. OpenWith names the opener.
	Open     func(url string) error
	OpenWith string
}

// challenge is the generator's answer.
type challenge struct {
	ChallengeURL string `json:"challenge_url"`
	PollingURL   string `json:"polling_url"`
}

// credentials is the poller's answer; on success Weep saves it as
// ~/.weep/credentials and sends EncodedJWT as the CookieName cookie.
type credentials struct {
	Status     string `json:"status"`
	EncodedJWT string `json:"encoded_jwt,omitempty"`
	CookieName string `json:"cookie_name,omitempty"`
	Expiration int64  `json:"expiration,omitempty"`
	User       string `json:"user,omitempty"`
}

func (c *weepClient) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Login asks for a challenge for user, prints its URL for the browser, polls
// until the challenge is approved and then calls ConsoleMe with the token.
func (c *weepClient) Login(ctx context.Context, user string) (*credentials, error) {
	// Weep puts the user into the path as it is, without escaping.
	genURL := c.BaseURL + "/noauth/v1/challenge_generator/" + user
	fmt.Fprintf(c.Out, "GET %s\n", genURL)
	var ch challenge
	if err := c.getJSON(ctx, genURL, "", &ch); err != nil {
		return nil, fmt.Errorf("asking for a challenge: %w", err)
	}
	if ch.ChallengeURL == "" || ch.PollingURL == "" {
		return nil, errors.New("asking for a challenge: the answer has no challenge_url or polling_url")
	}
	if c.Open == nil {
		fmt.Fprintf(c.Out, "\nOpen this URL in your browser, sign in and click Approve:\n\n    %s\n\n", ch.ChallengeURL)
	} else {
		fmt.Fprintf(c.Out, "\nOpening this URL in your browser (%s); sign in there and click Approve:\n\n    %s\n\n", c.OpenWith, ch.ChallengeURL)
		if err := c.Open(ch.ChallengeURL); err != nil {
			fmt.Fprintf(c.Out, "Could not open it (%v): open it yourself.\n\n", err)
		}
	}
	fmt.Fprintf(c.Out, "Polling %s every %s for up to %s…\n", ch.PollingURL, c.PollEvery, c.Timeout)

	creds, err := c.poll(ctx, ch.PollingURL)
	if err != nil {
		return nil, err
	}
	pretty, _ := json.MarshalIndent(creds, "", "  ")
	fmt.Fprintf(c.Out, "\nApproved. The poller's answer (what Weep saves to ~/.weep/credentials):\n%s\n", pretty)

	// Now use the token, as Weep's `weep list` does.
	rolesURL := c.BaseURL + "/api/v2/get_roles?all=true"
	fmt.Fprintf(c.Out, "\nCalling ConsoleMe with it:\n\n    curl -s -H 'Cookie: %s=%s' '%s'\n\n", creds.CookieName, creds.EncodedJWT, rolesURL)
	var roles rolesResponse
	if err := c.getJSON(ctx, rolesURL, creds.CookieName+"="+creds.EncodedJWT, &roles); err != nil {
		return creds, fmt.Errorf("calling ConsoleMe: %w", err)
	}
	fmt.Fprintf(c.Out, "ConsoleMe accepted the token for %s. Roles:\n", creds.User)
	for _, r := range roles.Data.Roles {
		fmt.Fprintf(c.Out, "    %s\n", r.Arn)
	}
	if len(roles.Data.Roles) == 0 {
		fmt.Fprintln(c.Out, "    (none)")
	}
	return creds, nil
}

// poll asks polling_url every PollEvery until it says success. Like Weep it
// treats every other status (pending, unknown, expired, unauthorized) as
// "not yet" and gives up after Timeout.
func (c *weepClient) poll(ctx context.Context, pollingURL string) (*credentials, error) {
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
		var creds credentials
		if err := c.getJSON(ctx, pollingURL, "", &creds); err != nil {
			return nil, fmt.Errorf("polling: %w", err)
		}
		if creds.Status == "success" {
			return &creds, nil
		}
		if creds.Status != last {
			fmt.Fprintf(c.Out, "  status: %s\n", creds.Status)
			last = creds.Status
		}
	}
}

// getJSON GETs url as Weep does (Content-Type: application/json, an optional
// cookie) and decodes the JSON answer into v. Unlike Weep, which ignores the
// status, it reports a non-2xx answer with its body, so a refusal shows.
func (c *weepClient) getJSON(ctx context.Context, url, cookie string, v any) error {
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
