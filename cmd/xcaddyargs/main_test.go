package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestBuildArgs(t *testing.T) {
	args, err := buildArgs(strings.NewReader(`{"caddy_version":"v2.11.9",
		"plugins":[{"module_path":"github.com/a/b","version":"v1.2.3"},{"module_path":"github.com/c/d"}],
		"replacements":[{"old":"github.com/a/b","new":"../b"}]}`), "./caddy")
	if err != nil {
		t.Fatal(err)
	}
	want := "xcaddy build v2.11.9 --with github.com/a/b@v1.2.3 --with github.com/c/d --replace github.com/a/b=../b --output ./caddy"
	if got := strings.Join(args, " "); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for _, bad := range []string{`{}`, `{"caddy_version":"v2"`, `{"caddy_version":"v2","plugins":[{"module_path":""}]}`,
		`{"caddy_version":"v2","unknown":1}`, `{"caddy_version":"v2","replacements":[{"old":"x"}]}`} {
		if _, err := buildArgs(strings.NewReader(bad), ""); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestManifestMatchesGoMod keeps the xcaddy build and `go build ./cmd/caddy`
// at the same Caddy version.
func TestManifestMatchesGoMod(t *testing.T) {
	f, err := os.Open("../../xcaddy.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	args, err := buildArgs(f, "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/caddyserver/caddy/v2").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	if gomod := strings.TrimSpace(string(out)); args[2] != gomod {
		t.Errorf("xcaddy.json caddy_version %s, go.mod requires %s", args[2], gomod)
	}
	// xcaddy imports each --with path as a package (and `go get`s it), so it
	// must name a package of this module, not merely the module: the module
	// root holds no package.
	mod, err := exec.Command("go", "list", "-m").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	ours := 0
	for i, a := range args {
		if a != "--with" || i+1 >= len(args) {
			continue
		}
		pkg, _, _ := strings.Cut(args[i+1], "@")
		out, err := exec.Command("go", "list", "-f", "{{.Module.Path}} {{.Name}}", pkg).CombinedOutput()
		if err != nil {
			t.Errorf("--with %s: not a package xcaddy can import: %v\n%s", pkg, err, out)
			continue
		}
		if f := strings.Fields(string(out)); len(f) == 2 && f[0] == strings.TrimSpace(string(mod)) && f[1] != "main" {
			ours++
		}
	}
	if ours == 0 {
		t.Errorf("manifest builds no package of this module: %v", args)
	}
}
