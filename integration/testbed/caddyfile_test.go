package testbed

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/consoleme-auth/caddy-consoleme-auth/caddymodule"
)

// everything sets every field of the builder.
func everything() Caddyfile {
	return Caddyfile{
		Global: Global{
			Admin: "127.0.0.1:2999", Debug: true, HTTPPort: 8000, HTTPSPort: 8443, AutoHTTPSOff: true,
			SkipInstallTrust: true, TrustedProxies: []string{"127.0.0.1/32", "10.0.0.0/8"},
			ClientIPHeaders: []string{"X-Forwarded-For"}, PersistConfigOff: true, StorageDir: `/tmp/a dir`,
			StorageCleanOff: true, GracePeriod: "2s", LogLevel: "WARN",
		},
		Sites: []Site{{
			Address: "https://localhost:8443",
			TLS:     &TLS{Internal: true, ClientAuthMode: "verify_if_given", ClientTrustPool: "/tmp/ca.pem"},
			Auth: &Module{
				JWTSecret: "s e c r e t", PublicURL: "https://localhost:8443", CookieName: "cm", JWTExpiration: "30m",
				EmailClaim: "mail", GroupsClaim: "memberOf", ChallengeTTL: "1m", MaxPending: 7,
				Store: "redis redis://127.0.0.1:6379/0", GeneratorRateLimit: "off", PollerRateLimit: "10 1m",
				DisableValidatorIPCheck: true, DisablePollerIPCheck: true,
				SAML: &SAML{IdPMetadataFile: "/tmp/idp.xml", SPCert: "/tmp/sp.crt", SPKey: "/tmp/sp.key",
					EntityID: "urn:sp", EmailAttribute: "email", GroupsAttribute: "groups", ClockSkew: "10m"},
				MTLS: &MTLS{User: "cn", Domain: "example.com", Groups: "static",
					StaticGroups: map[string][]string{"b@example.com": {"g2"}, "a@example.com": {"g1", "g2"}}, TokenLifetime: "1m"},
				WebLogin: &WebLogin{PublicPaths: []string{"/healthcheck", "/static/"}, MaxSessionAge: "12h", RenewBefore: "15m"},
			},
			Upstreams: []string{"127.0.0.1:9001"},
		}, {
			Address: "http://127.0.0.1:8001", Upstreams: []string{"127.0.0.1:9001", "127.0.0.1:9002"}, LBPolicy: "round_robin",
		}, {
			Address: "http://127.0.0.1:8002", Respond: "ok",
		}},
	}
}

// TestCaddyfileFormattedAndAdapted: the builder writes what `caddy fmt`
// writes, and Caddy's adapter reads every field back into the JSON the
// module and Caddy's own modules see.
func TestCaddyfileFormattedAndAdapted(t *testing.T) {
	text := everything().String()
	if got := string(caddyfile.Format([]byte(text))); got != text {
		t.Errorf("not formatted; caddy fmt makes it:\n%s\nfrom:\n%s", got, text)
	}
	adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(text), nil)
	if err != nil {
		t.Fatalf("adapting:\n%s\n%v", text, err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %v", warnings)
	}
	var doc any
	if err := json.Unmarshal(adapted, &doc); err != nil {
		t.Fatal(err)
	}
	js := string(adapted)
	for _, want := range []string{
		`"jwt_secret":"s e c r e t"`, `"cookie_name":"cm"`, `"max_pending":7`, `"clock_skew":600000000000`,
		`"idp_metadata_file":"/tmp/idp.xml"`, `"a@example.com":["g1","g2"]`, `"public_paths":["/healthcheck","/static/"]`,
		`"selection_policy":{"policy":"round_robin"}`, `"body":"ok"`, `"root":"/tmp/a dir"`, `"pem_files":["/tmp/ca.pem"]`,
		`"disable_validator_ip_check":true`, `"disable_poller_ip_check":true`, `"redis://127.0.0.1:6379/0"`,
	} {
		if !strings.Contains(js, want) {
			t.Errorf("the adapted JSON lacks %s:\n%s", want, js)
		}
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain":            "plain",
		"":                 "``",
		`C:\Users\A B\tmp`: "`C:\\Users\\A B\\tmp`",
		"a`b c":            `"a` + "`" + `b c"`,
		"{env.X}":          "`{env.X}`",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestRolesFor(t *testing.T) {
	m := GroupMapping{
		"g1":            {Roles: []string{Role("r1")}, CLIOnlyRoles: []string{Role("cli")}},
		"g2":            {Roles: []string{Role("r2"), Role("r1")}},
		"a@example.com": {Roles: []string{Role("a")}},
	}
	got := strings.Join(m.RolesFor("a@example.com", []string{"g1", "g2", "unknown"}, true), " ")
	want := strings.Join([]string{Role("a"), Role("cli"), Role("r1"), Role("r2")}, " ")
	if got != want {
		t.Errorf("RolesFor all: %s, want %s", got, want)
	}
	if got := m.RolesFor("b@example.com", []string{"g1"}, false); len(got) != 1 || got[0] != Role("r1") {
		t.Errorf("RolesFor without all: %v", got)
	}
}
