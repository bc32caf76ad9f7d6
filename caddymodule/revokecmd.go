package consolemeauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// adminFlags are how a subcommand finds the running Caddy's admin
// endpoint, as `caddy reload` does.
type adminFlags struct {
	address, config, adapter string
}

func (f *adminFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.address, "address", "", "the admin endpoint of the running Caddy (default: from --config, else localhost:2019)")
	c.Flags().StringVarP(&f.config, "config", "c", "", "the running Caddy's config file, to find its admin endpoint")
	c.Flags().StringVarP(&f.adapter, "adapter", "a", "", "the adapter of --config")
}

// call makes one admin API request and decodes its JSON answer into out.
func (f *adminFlags) call(method, uri string, body any, out any) error {
	addr, err := caddycmd.DetermineAdminAPIAddress(f.address, nil, f.config, f.adapter)
	if err != nil {
		return fmt.Errorf("finding the admin endpoint: %w", err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, http.Header{}, rd)
	if err != nil {
		return fmt.Errorf("asking the running Caddy at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

func revokeCommand() *cobra.Command {
	var req RevokeRequest
	var admin adminFlags
	c := &cobra.Command{
		Use:   "revoke --user <email> | --session <id> [--site <address>] [--block <duration> | --unblock]",
		Short: "End a user's sessions (or one session) on the running Caddy, on every instance",
		Long: `
Ends, through the running Caddy's admin endpoint, every session of a user
begun before now (--user), or one session (--session, an id from
'caddy consoleme-auth sessions'): their tokens, browser cookies and CLI
tokens alike, are refused at the proxy from now on, by every instance that
shares the store within a second. --block also refuses the user any new
token (sign-in, approval, client certificate) for that long, as when
someone leaves the company; --unblock lifts it. Without --site, every
consoleme_auth site of that Caddy is concerned.
`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := req.check(); err != nil {
				return err
			}
			var out struct {
				Revoked []RevokeResult `json:"revoked"`
			}
			if err := admin.call(http.MethodPost, "/consoleme-auth/revoke", req, &out); err != nil {
				return err
			}
			for _, r := range out.Revoked {
				fmt.Fprintln(cmd.OutOrStdout(), describeRevoke(r))
			}
			return nil
		},
	}
	c.Flags().StringVar(&req.User, "user", "", "end every session of this user begun before now")
	c.Flags().StringVar(&req.Session, "session", "", "end this one session")
	c.Flags().StringVar(&req.Site, "site", "", "only this site (its address, public_url or host)")
	c.Flags().StringVar(&req.Block, "block", "", "also refuse the user new sign-ins and certificates for this long, e.g. 24h")
	c.Flags().BoolVar(&req.Unblock, "unblock", false, "lift the user's block (ends nothing)")
	admin.add(c)
	return c
}

// describeRevoke says what was done on one site.
func describeRevoke(r RevokeResult) string {
	var s string
	switch {
	case r.Unblocked:
		s = "lifted the block of " + r.User
	case r.User != "" && r.Session != "":
		s = "ended session " + r.Session + " and every session of " + r.User + " begun before " + r.RevokedAt.Format("2006-01-02 15:04:05 MST")
	case r.User != "":
		s = "ended every session of " + r.User + " begun before " + r.RevokedAt.Format("2006-01-02 15:04:05 MST")
	default:
		s = "ended session " + r.Session
	}
	if r.BlockedUntil != nil {
		s += "; blocked until " + r.BlockedUntil.Format("2006-01-02 15:04:05 MST")
	}
	return r.Site + ": " + s
}

func sessionsCommand() *cobra.Command {
	var user, site string
	var asJSON bool
	var admin adminFlags
	c := &cobra.Command{
		Use:   "sessions --user <email> [--site <address>] [--json]",
		Short: "List a user's live sessions on the running Caddy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if why := checkUser(user); why != "" {
				return errors.New("--user: " + why)
			}
			q := url.Values{"user": {user}}
			if site != "" {
				q.Set("site", site)
			}
			var out struct {
				User  string         `json:"user"`
				Sites []SiteSessions `json:"sites"`
			}
			if err := admin.call(http.MethodGet, "/consoleme-auth/sessions?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			for _, s := range out.Sites {
				fmt.Fprintf(w, "%s: %d live session(s) of %s", s.Site, len(s.Sessions), out.User)
				if s.BlockedUntil != nil {
					fmt.Fprintf(w, " (blocked until %s)", s.BlockedUntil.Format("2006-01-02 15:04:05 MST"))
				}
				fmt.Fprintln(w)
				for _, ss := range s.Sessions {
					fmt.Fprintf(w, "  %s  %-9s  from %-15s  since %s  until %s\n", ss.ID, ss.Method, ss.IP,
						ss.Created.Format("2006-01-02 15:04:05 MST"), ss.Expires.Format("2006-01-02 15:04:05 MST"))
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&user, "user", "", "the user (email)")
	c.Flags().StringVar(&site, "site", "", "only this site (its address, public_url or host)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the answer as JSON")
	admin.add(c)
	return c
}
