package consolemeauth

import (
	"crypto/x509"
	"net"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// This file holds what the handlers need to know about a request: where it
// comes from and under which public address it is served.

// verifiedLeaf is the client certificate Caddy verified against a trust
// pool, or nil.
func verifiedLeaf(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	return r.TLS.VerifiedChains[0][0]
}

// baseURL is public_url, or the request's own scheme and host.
func (h *Handler) baseURL(r *http.Request) string {
	if h.base != nil {
		return h.base.String()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// clientIP is Caddy's idea of the client IP (honouring trusted_proxies), or
// the socket peer when the request did not come through a Caddy server.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
