// Command caddy is Caddy with its standard modules plus consoleme_auth: what
// `xcaddy build --with github.com/consoleme-auth/caddy-consoleme-auth/caddymodule` makes,
// buildable with plain `go build ./cmd/caddy` at the versions go.mod pins.
//
//	go run ./cmd/caddy run --config Caddyfile.example
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// plug in Caddy modules here
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/consoleme-auth/caddy-consoleme-auth/caddymodule"
)

func main() {
	caddycmd.Main()
}
