package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// TestReferenceJSON: the JSON section of docs/reference.md is what `caddy
// adapt` prints for the handler of its Caddyfile section, so the two cannot
// drift apart.
func TestReferenceJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy")
	}
	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "docs", "reference.md"))
	if err != nil {
		t.Fatal(err)
	}
	caddyfile := fencedBlock(t, string(readme), "## Caddyfile\n", "caddy")
	want := fencedBlock(t, string(readme), "## JSON\n", "json")

	got := adaptedHandler(t, caddyfile)
	var wantJSON any
	if err := json.Unmarshal([]byte(want), &wantJSON); err != nil {
		t.Fatalf("docs/reference.md's JSON section: %v", err)
	}
	if !reflect.DeepEqual(got, wantJSON) {
		pretty, _ := json.MarshalIndent(got, "", "  ")
		t.Errorf("docs/reference.md's JSON section differs from what caddy adapt prints for its Caddyfile section:\n%s", pretty)
	}
}

// fencedBlock returns the first ```lang block after the heading.
func fencedBlock(t *testing.T, doc, heading, lang string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "\n"+heading)
	if !ok {
		t.Fatalf("the document has no %q section", strings.TrimSpace(heading))
	}
	_, rest, ok = strings.Cut(rest, "```"+lang+"\n")
	if !ok {
		t.Fatalf("the %q section has no ```%s block", strings.TrimSpace(heading), lang)
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("the %q section: unterminated ```%s block", strings.TrimSpace(heading), lang)
	}
	return block
}

// findHandler returns the first JSON object with "handler": name in v.
func findHandler(v any, name string) map[string]any {
	switch v := v.(type) {
	case map[string]any:
		if v["handler"] == name {
			return v
		}
		for _, e := range v {
			if h := findHandler(e, name); h != nil {
				return h
			}
		}
	case []any:
		for _, e := range v {
			if h := findHandler(e, name); h != nil {
				return h
			}
		}
	}
	return nil
}

// TestREADMEMinimalCaddyfile: the Caddyfile README's deployment checklist
// starts from adapts, and gives a handler that signs browsers in with SAML
// under web_login.
func TestREADMEMinimalCaddyfile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy")
	}
	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	caddyfile := fencedBlock(t, string(readme), "## Minimal Caddyfile\n", "caddy")
	h := adaptedHandler(t, caddyfile)
	if h["saml"] == nil || h["web_login"] == nil || h["public_url"] != "https://consoleme.example.com" {
		t.Errorf("README's minimal Caddyfile gives the handler %v, want saml, web_login and public_url", h)
	}
}

// adaptedHandler adapts a Caddyfile with the built Caddy and returns the
// consoleme_auth handler of the JSON it gives.
func adaptedHandler(t *testing.T, caddyfile string) map[string]any {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := caddyCmd(t, nil, "adapt", "--config", path)
	if err != nil {
		t.Fatalf("caddy adapt: %v\n%s", err, out)
	}
	// adapt prints the JSON on one line; warnings (logs) go on other lines.
	var adapted any
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, `{"apps":`) {
			if err := json.Unmarshal([]byte(line), &adapted); err != nil {
				t.Fatalf("caddy adapt output: %v\n%s", err, out)
			}
		}
	}
	h := findHandler(adapted, "consoleme_auth")
	if h == nil {
		t.Fatalf("no consoleme_auth handler in the adapted config:\n%s", out)
	}
	return h
}
