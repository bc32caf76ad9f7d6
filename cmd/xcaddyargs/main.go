// Command xcaddyargs turns the build manifest xcaddy.json (shaped like
// xcaddy's Builder JSON: caddy_version, plugins[].module_path/version,
// replacements[].old/new) into the xcaddy command line that builds it.
// As in xcaddy, a plugin's module_path is the import path of the package to
// compile in (xcaddy's Dependency.PackagePath), which may lie inside a
// module: here github.com/consoleme-auth/caddy-consoleme-auth/caddymodule.
// A plugin without a version gets the latest release. Usage:
//
//	$(go run ./cmd/xcaddyargs)              # runs: xcaddy build v2.11.9 --with ...
//	go run ./cmd/xcaddyargs -manifest path/to/xcaddy.json -output ./caddy
//
// xcaddy itself reads no manifest; this keeps the versions in one file that
// a test checks against go.mod, so an xcaddy build and `go build ./cmd/caddy`
// cannot drift apart.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// manifest is the subset of xcaddy's Builder JSON that a build needs.
type manifest struct {
	CaddyVersion string `json:"caddy_version"`
	Plugins      []struct {
		ModulePath string `json:"module_path"` // a package's import path
		Version    string `json:"version"`
	} `json:"plugins"`
	Replacements []struct {
		Old string `json:"old"`
		New string `json:"new"`
	} `json:"replacements"`
}

func main() {
	path := flag.String("manifest", "xcaddy.json", "build manifest")
	output := flag.String("output", "", "xcaddy --output value (optional)")
	flag.Parse()
	f, err := os.Open(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "xcaddyargs:", err)
		os.Exit(1)
	}
	defer f.Close()
	args, err := buildArgs(f, *output)
	if err != nil {
		fmt.Fprintf(os.Stderr, "xcaddyargs: %s: %v\n", *path, err)
		os.Exit(1)
	}
	fmt.Println(strings.Join(args, " "))
}

// buildArgs reads a manifest and returns the xcaddy command line.
func buildArgs(r io.Reader, output string) ([]string, error) {
	var m manifest
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parsing manifest: %w", err)
	}
	if m.CaddyVersion == "" {
		return nil, errors.New("caddy_version is required")
	}
	args := []string{"xcaddy", "build", m.CaddyVersion}
	for i, p := range m.Plugins {
		if p.ModulePath == "" || strings.ContainsAny(p.ModulePath, " \t@=") {
			return nil, fmt.Errorf("plugins[%d].module_path %q is invalid", i, p.ModulePath)
		}
		w := p.ModulePath
		if p.Version != "" {
			w += "@" + p.Version
		}
		args = append(args, "--with", w)
	}
	for i, rp := range m.Replacements {
		if rp.Old == "" || rp.New == "" {
			return nil, fmt.Errorf("replacements[%d] needs old and new", i)
		}
		args = append(args, "--replace", rp.Old+"="+rp.New)
	}
	if output != "" {
		args = append(args, "--output", output)
	}
	return args, nil
}
