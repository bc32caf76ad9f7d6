package oidcauth

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Identity is who a verified callback logs in.
type Identity struct {
	// Email is the user's email: the EmailClaim of the ID token or, when
	// absent there, of the userinfo response; surrounding spaces are
	// trimmed. Exchange never returns an empty one.
	Email string

	// Groups are the values of the GroupsClaim (from the ID token, or from
	// userinfo with GroupsFromUserinfo), each trimmed, empty values dropped,
	// in the order the provider sent them. Never nil; empty without a
	// GroupsClaim.
	Groups []string

	// Subject is the ID token's sub, the provider's stable user ID.
	Subject string

	// Issuer is the ID token's iss.
	Issuer string

	// Expiry is the ID token's exp.
	Expiry time.Time

	// IDToken is the raw ID token, for the id_token_hint of LogoutURL. It
	// proves the login to this client only; keep it server-side if at all.
	IDToken string
}

// claimSet is a decoded set of claims.
type claimSet map[string]json.RawMessage

// identity runs steps 5 and 6 of Exchange on a verified ID token.
func (p *Provider) identity(ctx context.Context, d *discovered, idt *oidc.IDToken, raw string, token *oauth2.Token) (*Identity, error) {
	var fromToken claimSet
	if err := idt.Claims(&fromToken); err != nil {
		return nil, refuse("ID token claims: "+err.Error(), MessageNotAccepted)
	}
	emailClaim := p.cfg.emailClaim()
	claims := fromToken
	_, hasEmail := fromToken[emailClaim]
	var fromUserinfo claimSet
	if p.cfg.GroupsFromUserinfo && d.userinfo == "" {
		return nil, refuse("groups_from_userinfo is set but the provider has no userinfo_endpoint", MessageNotAccepted)
	}
	if p.cfg.GroupsFromUserinfo || (!hasEmail && d.userinfo != "") {
		ui, err := d.op.UserInfo(ctx, oauth2.StaticTokenSource(token))
		if err != nil {
			return nil, fmt.Errorf("userinfo: %w", err)
		}
		if ui.Subject != idt.Subject {
			return nil, refuse(fmt.Sprintf("userinfo sub %q is not the ID token's %q", ui.Subject, idt.Subject), MessageNotAccepted)
		}
		if err := ui.Claims(&fromUserinfo); err != nil {
			return nil, refuse("userinfo claims: "+err.Error(), MessageNotAccepted)
		}
		if !hasEmail {
			claims = fromUserinfo
		}
	}
	id := &Identity{Groups: []string{}, Subject: idt.Subject, Issuer: idt.Issuer, Expiry: idt.Expiry, IDToken: raw}
	var email string
	if v, ok := claims[emailClaim]; ok && json.Unmarshal(v, &email) != nil {
		return nil, refuse(fmt.Sprintf("claim %q is not a string", emailClaim), MessageNoEmail)
	}
	if id.Email = strings.TrimSpace(email); id.Email == "" {
		return nil, refuse(fmt.Sprintf("no %q claim in the ID token nor in userinfo", emailClaim), MessageNoEmail)
	}
	if v, ok := claims["email_verified"]; ok && emailClaim == DefaultEmailClaim && !truthy(v) {
		return nil, refuse(fmt.Sprintf("email_verified is %s for %s", v, id.Email), MessageEmailNotVerified)
	}
	if p.cfg.GroupsClaim != "" {
		src := fromToken
		if p.cfg.GroupsFromUserinfo {
			src = fromUserinfo
		}
		groups, err := stringList(src[p.cfg.GroupsClaim])
		if err != nil {
			return nil, refuse(fmt.Sprintf("claim %q: %v", p.cfg.GroupsClaim, err), MessageNotAccepted)
		}
		id.Groups = groups
	}
	return id, nil
}

// truthy reads email_verified: true, or the string "true" some providers
// send.
func truthy(v json.RawMessage) bool {
	var b bool
	if json.Unmarshal(v, &b) == nil {
		return b
	}
	var s string
	return json.Unmarshal(v, &s) == nil && strings.EqualFold(s, "true")
}

// stringList reads a groups claim: absent or null (no groups), one string,
// or an array of strings. Values are trimmed and empty ones dropped.
func stringList(v json.RawMessage) ([]string, error) {
	out := []string{}
	if len(v) == 0 || string(v) == "null" {
		return out, nil
	}
	var list []string
	if err := json.Unmarshal(v, &list); err != nil {
		var one string
		if json.Unmarshal(v, &one) != nil {
			return nil, fmt.Errorf("not a string nor an array of strings")
		}
		list = []string{one}
	}
	for _, g := range list {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out, nil
}
