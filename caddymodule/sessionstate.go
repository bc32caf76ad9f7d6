package consolemeauth

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/revocation"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/redisstore"
)

// sessionState is what the instances of one site share in a process, so
// that a config reload keeps it without a gap: the store of live sessions
// and revocations, and the revocation list kept current from it.
type sessionState struct {
	store  store.SessionStore
	list   *revocation.List
	keeper *revocation.Keeper
	close  func() error
}

// Destruct stops the keeper and closes the store.
func (s *sessionState) Destruct() error {
	s.keeper.Stop()
	if s.close != nil {
		return s.close()
	}
	return nil
}

var sessionStates = caddy.NewUsagePool()

// sessionKey names a site's sessions and revocations: like siteKey, but
// from what decides which tokens are the site's only (secret, cookie,
// email claim, public_url or address), so that an edit of the group policy
// or of the identity provider keeps them.
func (h *Handler) sessionKey() string {
	return h.keyedName("consoleme_auth sessions", h.PublicURL, h.CookieName, h.EmailClaim)
}

// fingerprint tells store settings apart that reach different data.
func (sc *StoreConfig) fingerprint(repl *caddy.Replacer) string {
	parts := []string{sc.Type, repl.ReplaceAll(sc.URL, ""), strings.Join(replaceAll(repl, sc.Cluster), ","),
		repl.ReplaceAll(sc.KeyPrefix, ""), repl.ReplaceAll(sc.Username, "")}
	if sc.Sentinel != nil {
		parts = append(parts, sc.Sentinel.MasterName, strings.Join(sc.Sentinel.Addrs, ","))
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:8])
}

// openSessions returns the site's shared session state, made on first use,
// and the function that releases it.
func (sc *StoreConfig) openSessions(repl *caddy.Replacer, key string, logger *zap.Logger) (*sessionState, func() error, error) {
	poolKey := "sessions/" + key + "/" + sc.fingerprint(repl)
	v, _, err := sessionStates.LoadOrNew(poolKey, func() (caddy.Destructor, error) {
		st, closer, err := sc.newSessionStore(repl, key)
		if err != nil {
			return nil, err
		}
		state := &sessionState{store: st, list: revocation.NewList(), close: closer}
		state.keeper = &revocation.Keeper{Store: st, List: state.list, OnError: func(err error) {
			logger.Warn("loading revocations failed; the ones already known stay enforced", zap.Error(err))
		}}
		state.keeper.Start()
		return state, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return v.(*sessionState), func() error {
		_, err := sessionStates.Delete(poolKey)
		return err
	}, nil
}

// newSessionStore opens the session store the settings name: in memory,
// or on the Redis the challenges use, under a prefix of its own.
func (sc *StoreConfig) newSessionStore(repl *caddy.Replacer, key string) (store.SessionStore, func() error, error) {
	if sc.Type != "redis" {
		return store.NewMemorySessions(), nil, nil
	}
	prefix := repl.ReplaceAll(sc.KeyPrefix, "")
	if prefix == "" {
		prefix = "consoleme_auth:" + key + ":"
	}
	rs, err := redisstore.New(sc.redisOptions(repl, repl.ReplaceAll(sc.URL, ""), prefix))
	if err != nil {
		return nil, nil, err
	}
	return rs.Sessions(prefix + "s:"), rs.Close, nil
}
