package consolemeauth

import (
	"fmt"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"reflect"
	"strings"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("consoleme_auth", parseCaddyfile)
	// Ordered like Caddy's own auth directives, so that nothing else in
	// the site (handle, route, respond, reverse_proxy ...) runs before the
	// login; this spares users an `order` line.
	httpcaddyfile.RegisterDirectiveOrder("consoleme_auth", httpcaddyfile.Before, "basic_auth")
}

// parseCaddyfile sets up the handler from Caddyfile tokens.
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var m Handler
	err := m.UnmarshalCaddyfile(h.Dispenser)
	m.Site = siteAddress(h)
	return &m, err
}

// siteAddress is the address of the site block the directive is in, for
// error messages. Caddy's Helper keeps the block unexported and offers no
// exported way to it, so it is read by reflection;
// TestSiteAddressReadsCaddysHelper fails, naming what changed, when a Caddy
// upgrade moves it. Should it ever fail at run time, the Caddyfile position
// is used.
func siteAddress(h httpcaddyfile.Helper) string {
	keys := reflect.ValueOf(h).FieldByName("parentBlock")
	if keys.IsValid() {
		keys = keys.FieldByName("Keys")
	}
	var addrs []string
	if keys.IsValid() && keys.Kind() == reflect.Slice {
		for i := 0; i < keys.Len(); i++ {
			if text := keys.Index(i).FieldByName("Text"); text.IsValid() && text.Kind() == reflect.String {
				addrs = append(addrs, text.String())
			}
		}
	}
	if len(addrs) > 0 {
		return strings.Join(addrs, ", ")
	}
	return fmt.Sprintf("%s:%d", h.File(), h.Line())
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax (a
// site gives a saml or an oidc block, not both; every subdirective is
// explained in docs/reference.md, and a test keeps this list, that one and
// the parser together):
//
//	consoleme_auth {
//		jwt_secret      <secret>
//		public_url      <url>
//		site_name       <name>
//		cookie_name     <name>
//		jwt_expiration  <duration>
//		email_claim     <claim>
//		groups_claim    <claim>
//		challenge_ttl   <duration>
//		max_session_age <duration>
//		max_pending     <n>
//		max_logins_per_client <n>
//		ipv6_prefix     <bits>
//		user_match      exact | case_insensitive
//		allowed_groups  <group...>
//		denied_groups   <group...>
//		groups_filter   <regexp...>
//		generator_rate_limit <events> <window> | off
//		poller_rate_limit    <events> <window> | off
//		login_rate_limit     <events> <window> | off
//		store           memory | redis [<url>] [{
//			url                 <url>
//			sentinel            <master_name> <host:port...>
//			sentinel_username   <name>
//			sentinel_password   <password>
//			cluster             <host:port...>
//			username            <name>
//			password            <password>
//			key_prefix          <prefix>
//			dial_timeout        <duration>
//			read_timeout        <duration>
//			write_timeout       <duration>
//			pool_size           <n>
//			tls
//			insecure_skip_verify
//			replica_acks        auto | off | <n>
//			replica_ack_timeout <duration>
//		}]
//		disable_validator_ip_check
//		disable_poller_ip_check
//		mtls {
//			user           san_email | san_uri | cn
//			uri_prefix     <prefix>
//			domain         <domain>
//			groups         ou | static | none
//			static_groups  <user> <group...>
//			token_lifetime <duration>
//		}
//		web_login {
//			public_paths    <path...>
//			max_session_age <duration>
//			renew_before    <duration>
//		}
//		oidc {
//			issuer               <url>
//			client_id            <id>
//			client_secret        <secret>
//			private_key_file     <path>
//			private_key_id       <kid>
//			scopes               <scope...>
//			email_claim          <claim>
//			groups_claim         <claim>
//			groups_from_userinfo
//			discovery_refresh    <duration>
//			clock_skew           <duration>
//		}
//		saml {
//			idp_metadata_url     <url>
//			idp_metadata_file    <path>
//			idp_metadata_refresh <duration>
//			idp_metadata_signing_cert <pem file or text...>
//			sp_cert              <path>
//			sp_key               <path>
//			entity_id            <id>
//			email_attribute      <name>
//			groups_attribute     <name>
//			name_id_format       unspecified | email | persistent | transient
//			clock_skew           <duration>
//			idp_entity_id        <entity id>
//			sign_authn_requests
//			allow_rsa1_5
//			data_ciphers         <cipher...>
//		}
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return d.Errf("%s already specified", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "jwt_secret":
			err = oneString(d, &h.JWTSecret)
		case "public_url":
			err = oneString(d, &h.PublicURL)
		case "site_name":
			err = oneString(d, &h.SiteName)
		case "cookie_name":
			err = oneString(d, &h.CookieName)
		case "email_claim":
			err = oneString(d, &h.EmailClaim)
		case "groups_claim":
			err = oneString(d, &h.GroupsClaim)
		case "jwt_expiration":
			err = oneDuration(d, &h.JWTExpiration)
		case "challenge_ttl":
			err = oneDuration(d, &h.ChallengeTTL)
		case "max_session_age":
			err = oneDuration(d, &h.MaxSessionAge)
		case "max_pending":
			err = oneInt(d, &h.MaxPending, 1, 1<<31-1)
		case "max_logins_per_client":
			err = oneInt(d, &h.MaxLoginsPerClient, 1, 1<<31-1)
		case "ipv6_prefix":
			err = oneInt(d, &h.IPv6Prefix, 1, 128)
		case "login_rate_limit":
			h.LoginRateLimit, err = unmarshalRateLimit(d)
		case "disable_validator_ip_check":
			err = noArgs(d)
			h.DisableValidatorIPCheck = true
		case "disable_poller_ip_check":
			err = noArgs(d)
			h.DisablePollerIPCheck = true
		case "user_match":
			err = oneString(d, &h.UserMatch)
		case "allowed_groups":
			h.AllowedGroups, err = someArgs(d)
		case "denied_groups":
			h.DeniedGroups, err = someArgs(d)
		case "groups_filter":
			h.GroupsFilter, err = someArgs(d)
		case "generator_rate_limit":
			h.GeneratorRateLimit, err = unmarshalRateLimit(d)
		case "poller_rate_limit":
			h.PollerRateLimit, err = unmarshalRateLimit(d)
		case "store":
			err = h.unmarshalStore(d)
		case "saml":
			err = h.unmarshalSAML(d)
		case "oidc":
			h.OIDC, err = unmarshalOIDC(d)
		case "web_login":
			h.WebLogin, err = unmarshalWebLogin(d)
		case "mtls":
			h.MTLS, err = unmarshalMTLS(d)
		default:
			return d.Errf("unrecognized subdirective '%s'", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unmarshalStore parses `store memory`, `store redis [<url>]` and the redis
// block form (see StoreConfig.unmarshalRedis).
func (h *Handler) unmarshalStore(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	sc := &StoreConfig{Type: d.Val()}
	h.Store = sc
	switch sc.Type {
	case "memory":
		return noArgs(d)
	case "redis":
		return sc.unmarshalRedis(d)
	}
	return d.Errf("store: unknown type '%s' (want memory or redis)", sc.Type)
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)
