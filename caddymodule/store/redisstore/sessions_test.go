package redisstore

import (
	"testing"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/storetest"
)

// TestSessionsConformance runs the session suite with two Stores (two
// connections, as two Caddy instances) on one server and one prefix.
func TestSessionsConformance(t *testing.T) {
	srv := startRedis(t)
	storetest.RunSessions(t, func(t *testing.T) (store.SessionStore, store.SessionStore) {
		prefix := uniquePrefix()
		a := newStore(t, Options{URL: srv.url()}).Sessions(prefix)
		b := newStore(t, Options{URL: srv.url()}).Sessions(prefix)
		return a, b
	})
}
