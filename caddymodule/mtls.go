package consolemeauth

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// MTLSConfig maps verified client certificates to ConsoleMe identities.
type MTLSConfig struct{}

// mtlsMapper is the provisioned MTLSConfig.
type mtlsMapper struct{}

func (c *MTLSConfig) provision(_ *caddy.Replacer) (*mtlsMapper, error) {
	return nil, errors.New("not implemented yet")
}

// applyMTLS authenticates a proxied request by its verified client
// certificate. It reports handled when it has answered the request itself.
func (h *Handler) applyMTLS(w http.ResponseWriter, r *http.Request) (handled bool, err error) {
	return false, nil
}

// unmarshalMTLS parses the mtls block.
func unmarshalMTLS(d *caddyfile.Dispenser) (*MTLSConfig, error) {
	return nil, d.Err("mtls: not implemented yet")
}
