package consolemeauth

import "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

// The parsers of the Caddyfile's nested blocks: saml, oidc, web_login and
// mtls (store is parsed in caddyfile.go).

// unmarshalSAML parses the saml block.
func (h *Handler) unmarshalSAML(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	s := &SAMLConfig{}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return d.Errf("saml: %s already specified", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "idp_metadata_url":
			err = oneString(d, &s.IDPMetadataURL)
		case "idp_metadata_file":
			err = oneString(d, &s.IDPMetadataFile)
		case "idp_metadata_refresh":
			err = oneDuration(d, &s.IDPMetadataRefresh)
		case "idp_metadata_signing_cert":
			s.IDPMetadataSigningCerts, err = someArgs(d)
		case "sp_cert":
			err = oneString(d, &s.SPCert)
		case "sp_key":
			err = oneString(d, &s.SPKey)
		case "entity_id":
			err = oneString(d, &s.EntityID)
		case "email_attribute":
			err = oneString(d, &s.EmailAttribute)
		case "groups_attribute":
			err = oneString(d, &s.GroupsAttribute)
		case "name_id_format":
			err = oneString(d, &s.NameIDFormat)
		case "clock_skew":
			err = oneDuration(d, &s.ClockSkew)
		case "idp_entity_id":
			err = oneString(d, &s.IDPEntityID)
		case "sign_authn_requests":
			err = noArgs(d)
			s.SignAuthnRequests = true
		case "allow_rsa1_5":
			err = noArgs(d)
			s.AllowRSA15 = true
		case "data_ciphers":
			s.DataCiphers, err = someArgs(d)
		default:
			return d.Errf("saml: unrecognized subdirective '%s'", name)
		}
		if err != nil {
			return err
		}
	}
	h.SAML = s
	return nil
}

// unmarshalOIDC parses the oidc block.
func unmarshalOIDC(d *caddyfile.Dispenser) (*OIDCConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	c := &OIDCConfig{}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("oidc: %s already specified", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "issuer":
			err = oneString(d, &c.Issuer)
		case "client_id":
			err = oneString(d, &c.ClientID)
		case "client_secret":
			err = oneString(d, &c.ClientSecret)
		case "private_key_file":
			err = oneString(d, &c.PrivateKeyFile)
		case "private_key_id":
			err = oneString(d, &c.PrivateKeyID)
		case "scopes":
			c.Scopes, err = someArgs(d)
		case "email_claim":
			err = oneString(d, &c.EmailClaim)
		case "groups_claim":
			err = oneString(d, &c.GroupsClaim)
		case "groups_from_userinfo":
			err = noArgs(d)
			c.GroupsFromUserinfo = true
		case "discovery_refresh":
			err = oneDuration(d, &c.DiscoveryRefresh)
		case "clock_skew":
			err = oneDuration(d, &c.ClockSkew)
		default:
			return nil, d.Errf("oidc: unrecognized subdirective '%s'", name)
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// unmarshalWebLogin parses `web_login` or its block.
func unmarshalWebLogin(d *caddyfile.Dispenser) (*WebLoginConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	c := &WebLoginConfig{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "public_paths":
			var paths []string
			paths, err = someArgs(d)
			c.PublicPaths = append(c.PublicPaths, paths...)
		case "max_session_age":
			err = oneDuration(d, &c.MaxSessionAge)
		case "renew_before":
			err = oneDuration(d, &c.RenewBefore)
		default:
			return nil, d.Errf("web_login: unrecognized subdirective '%s'", d.Val())
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// unmarshalMTLS parses the mtls block:
//
//	mtls {
//		user           san_email | san_uri | cn
//		uri_prefix     <prefix>
//		domain         <domain>
//		groups         ou | static | none
//		static_groups  <user> <group...>
//		token_lifetime <duration>
//	}
//
// static_groups may be repeated, once per user; the block may be empty
// (`mtls`), which takes the user from the SAN email and the groups from the
// OU values.
func unmarshalMTLS(d *caddyfile.Dispenser) (*MTLSConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	c := &MTLSConfig{}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] && name != "static_groups" {
			return nil, d.Errf("mtls: %s already specified", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "user":
			err = oneString(d, &c.User)
		case "uri_prefix":
			err = oneString(d, &c.URIPrefix)
		case "domain":
			err = oneString(d, &c.Domain)
		case "groups":
			err = oneString(d, &c.Groups)
		case "static_groups":
			args := d.RemainingArgs()
			if len(args) < 2 {
				return nil, d.Errf("mtls: static_groups: want <user> <group...>")
			}
			if args[0] == "" {
				return nil, d.Errf("mtls: static_groups: empty user")
			}
			if c.StaticGroups == nil {
				c.StaticGroups = map[string][]string{}
			}
			c.StaticGroups[args[0]] = append(c.StaticGroups[args[0]], args[1:]...)
		case "token_lifetime":
			err = oneDuration(d, &c.TokenLifetime)
		default:
			return nil, d.Errf("mtls: unrecognized subdirective '%s'", name)
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}
