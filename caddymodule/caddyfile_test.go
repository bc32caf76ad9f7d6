package consolemeauth

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	// The golden files use reverse_proxy and the rest of the standard set.
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func TestUnmarshalCaddyfileFull(t *testing.T) {
	d := caddyfile.NewTestDispenser(`consoleme_auth {
		jwt_secret {env.SECRET}
		public_url https://cm.example.com
		cookie_name cm_auth
		jwt_expiration 90m
		email_claim mail
		groups_claim memberOf
		challenge_ttl 3m
		max_pending 500
		store memory
		disable_validator_ip_check
		disable_poller_ip_check
		saml {
			idp_metadata_url https://idp.example.com/md
			idp_metadata_refresh 1h
			sp_cert /etc/sp.crt
			sp_key /etc/sp.key
			entity_id urn:cm
			email_attribute mail
			groups_attribute memberOf
			name_id_format email
			clock_skew 5m
			data_ciphers aes256-gcm aes128-gcm
		}
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := Handler{
		JWTSecret: "{env.SECRET}", PublicURL: "https://cm.example.com", CookieName: "cm_auth",
		JWTExpiration: caddy.Duration(90 * time.Minute), EmailClaim: "mail", GroupsClaim: "memberOf",
		ChallengeTTL: caddy.Duration(3 * time.Minute), MaxPending: 500, Store: &StoreConfig{Type: "memory"},
		DisableValidatorIPCheck: true, DisablePollerIPCheck: true,
		SAML: &SAMLConfig{
			IDPMetadataURL: "https://idp.example.com/md", IDPMetadataRefresh: caddy.Duration(time.Hour),
			SPCert: "/etc/sp.crt", SPKey: "/etc/sp.key", EntityID: "urn:cm",
			EmailAttribute: "mail", GroupsAttribute: "memberOf", NameIDFormat: "email",
			ClockSkew: caddy.Duration(5 * time.Minute), DataCiphers: []string{"aes256-gcm", "aes128-gcm"},
		},
	}
	got, _ := json.Marshal(h)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Errorf("got  %s\nwant %s", got, exp)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"consoleme_auth extra", "wrong argument count"},
		{"consoleme_auth {\nbogus 1\n}", "unrecognized subdirective 'bogus'"},
		{"consoleme_auth {\njwt_secret\n}", "jwt_secret: missing value"},
		{"consoleme_auth {\njwt_secret a b\n}", "jwt_secret: too many arguments"},
		{"consoleme_auth {\njwt_secret a\njwt_secret b\n}", "jwt_secret already specified"},
		{"consoleme_auth {\njwt_expiration soon\n}", "jwt_expiration"},
		{"consoleme_auth {\nchallenge_ttl -1m\n}", "challenge_ttl: must be positive"},
		{"consoleme_auth {\nmax_pending many\n}", "max_pending"},
		{"consoleme_auth {\nmax_pending 0\n}", "max_pending"},
		{"consoleme_auth {\nstore etcd\n}", "store: unknown type 'etcd'"},
		{"consoleme_auth {\nstore memory extra\n}", "wrong argument count"},
		{"consoleme_auth {\nstore\n}", "wrong argument count"},
		{"consoleme_auth {\ndisable_poller_ip_check yes\n}", "wrong argument count"},
		{"consoleme_auth {\nsaml {\nbogus x\n}\n}", "saml: unrecognized subdirective 'bogus'"},
		{"consoleme_auth {\nsaml {\nsp_cert\n}\n}", "sp_cert: missing value"},
		{"consoleme_auth {\nsaml {\ndata_ciphers\n}\n}", "data_ciphers"},
		{"consoleme_auth {\nsaml {\nidp_metadata_refresh 0s\n}\n}", "idp_metadata_refresh: must be positive"},
		{"consoleme_auth {\nsaml x {\n}\n}", "wrong argument count"},
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.src, err, tc.want)
		}
	}
}

// TestAdaptGolden adapts each testdata/adapt/*.caddyfiletest (a Caddyfile,
// a line of dashes, then the expected JSON or "error: <substring>") with
// the real Caddyfile adapter, directive order included.
func TestAdaptGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/adapt/*.caddyfiletest")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in, want, ok := strings.Cut(string(raw), "\n----------\n")
			if !ok {
				t.Fatal("no ---------- separator")
			}
			want = strings.TrimSpace(want)
			out, _, err := adapter.Adapt([]byte(in), nil)
			if msg, isErr := strings.CutPrefix(want, "error: "); isErr {
				if err == nil || !strings.Contains(err.Error(), msg) {
					t.Fatalf("error %v, want %q", err, msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if os.Getenv("UPDATE_GOLDEN") == "1" {
				var pretty bytes.Buffer
				_ = json.Indent(&pretty, out, "", "\t")
				if err := os.WriteFile(f, []byte(in+"\n----------\n"+pretty.String()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Skip("golden file rewritten (UPDATE_GOLDEN=1): review the diff")
			}
			var got, exp any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(want), &exp); err != nil {
				t.Fatalf("golden JSON: %v", err)
			}
			g, _ := json.MarshalIndent(got, "", "\t")
			e, _ := json.MarshalIndent(exp, "", "\t")
			if string(g) != string(e) {
				t.Errorf("adapted:\n%s\nwant:\n%s", g, e)
			}
		})
	}
}
