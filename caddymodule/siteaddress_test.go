package consolemeauth

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// TestSiteAddressReadsCaddysHelper pins what siteAddress reads by
// reflection: Caddy's httpcaddyfile.Helper offers no exported way to the
// address of the site block a directive is in, so siteAddress reads the
// unexported field parentBlock (a caddyfile.ServerBlock) and its Keys. If a
// Caddy upgrade renames or retypes it, configuration errors would quietly
// name a file and line instead of the site; this test fails first, saying
// what changed.
func TestSiteAddressReadsCaddysHelper(t *testing.T) {
	field, ok := reflect.TypeOf(httpcaddyfile.Helper{}).FieldByName("parentBlock")
	if !ok {
		t.Fatal("Caddy's httpcaddyfile.Helper has no field parentBlock any more: " +
			"siteAddress (caddyfile.go) must find the site's address another way")
	}
	if field.Type != reflect.TypeOf(caddyfile.ServerBlock{}) {
		t.Fatalf("httpcaddyfile.Helper.parentBlock is a %s now, not a caddyfile.ServerBlock: update siteAddress", field.Type)
	}
	keys, ok := field.Type.FieldByName("Keys")
	if !ok || keys.Type != reflect.TypeOf([]caddyfile.Token{}) {
		t.Fatalf("caddyfile.ServerBlock.Keys is not a []caddyfile.Token now: update siteAddress")
	}

	// And end to end, through Caddy's own adapter.
	src := "a.example.com, b.example.com {\n\tconsoleme_auth {\n\t\tjwt_secret x\n\t}\n}\n"
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	h := findHandlerJSON(cfg, "consoleme_auth")
	if h == nil {
		t.Fatalf("no consoleme_auth handler in %s", out)
	}
	if got := h["site"]; got != "a.example.com, b.example.com" {
		t.Errorf("site = %v, want the site block's addresses %q", got, "a.example.com, b.example.com")
	}
}

// findHandlerJSON returns the first JSON object with "handler": name in v.
func findHandlerJSON(v any, name string) map[string]any {
	switch v := v.(type) {
	case map[string]any:
		if v["handler"] == name {
			return v
		}
		for _, e := range v {
			if h := findHandlerJSON(e, name); h != nil {
				return h
			}
		}
	case []any:
		for _, e := range v {
			if h := findHandlerJSON(e, name); h != nil {
				return h
			}
		}
	}
	return nil
}
