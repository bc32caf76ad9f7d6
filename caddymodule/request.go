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
		return h.baseStr
	}
	return string(h.appendBaseURL(nil, r))
}

// appendBaseURL appends baseURL(r) to b.
func (h *Handler) appendBaseURL(b []byte, r *http.Request) []byte {
	switch {
	case h.base != nil:
		return append(b, h.baseStr...)
	case r.TLS != nil:
		b = append(b, "https://"...)
	default:
		b = append(b, "http://"...)
	}
	return append(b, r.Host...)
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
