package consolemeauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/redisstore"
)

// StoreConfig selects the challenge store.
type StoreConfig struct {
	// Type is "memory" (default; one Caddy instance) or "redis" (several
	// instances behind one load balancer share one Redis or Valkey).
	Type string `json:"type,omitempty"`

	// URL of the Redis server (redis only): redis://[[user]:password@]host[:port][/db],
	// rediss://... for TLS, or unix:///path/to/socket. Placeholders are
	// expanded. Default: redis://127.0.0.1:6379/0.
	URL string `json:"url,omitempty"`

	// Username and Password replace those in the URL (redis only), so the
	// password can come from a placeholder such as {env.REDIS_PASSWORD}.
	// Never logged.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`

	// KeyPrefix starts every Redis key. Default: consoleme_auth:<site>:,
	// where <site> is derived from the site's identity (a keyed hash of its
	// jwt_secret, public_url (or, without one, the site's address), cookie
	// and claim names, SAML IdP and entity ID, and group policy): the instances of one site share their
	// challenges, and two sites on one Redis never see each other's
	// challenges, logins or replay marks. Setting it by hand, give every
	// site its own prefix.
	KeyPrefix string `json:"key_prefix,omitempty"`

	// DialTimeout, ReadTimeout and WriteTimeout bound each Redis call, so
	// the challenge routes answer 503 quickly when Redis is down or slow.
	// Defaults: 2s, 1s, 1s.
	DialTimeout  caddy.Duration `json:"dial_timeout,omitempty"`
	ReadTimeout  caddy.Duration `json:"read_timeout,omitempty"`
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`

	// PoolSize is the number of Redis connections. Default: 10 per CPU.
	PoolSize int `json:"pool_size,omitempty"`

	// TLS uses TLS for a redis:// URL too (rediss:// always does).
	TLS bool `json:"tls,omitempty"`

	// InsecureSkipVerify accepts any Redis server certificate (tests only).
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
}

// checkRedisURL refuses a redis:// or rediss:// URL whose port is not a
// port number, which would otherwise only fail at the first connection.
func checkRedisURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Port() == "" {
		return nil // the Redis client reports what it cannot parse
	}
	if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("url: %q is not a valid port", u.Port())
	}
	return nil
}

// storeBounds are the limits a store enforces.
type storeBounds struct {
	pending         int // challenges and logins held (memory store only)
	loginsPerClient int // logins in progress per client
}

// validate checks the store settings.
func (sc *StoreConfig) validate() error {
	switch sc.Type {
	case "", "memory":
		if sc.URL != "" || sc.Password != "" || sc.KeyPrefix != "" {
			return errors.New("url, password and key_prefix are for the redis store")
		}
	case "redis":
		if sc.DialTimeout < 0 || sc.ReadTimeout < 0 || sc.WriteTimeout < 0 || sc.PoolSize < 0 {
			return errors.New("redis timeouts and pool_size must be positive")
		}
	default:
		return fmt.Errorf("unknown type %q (want memory or redis)", sc.Type)
	}
	return nil
}

// siteKey names this site's state in the stores: a keyed hash of what makes
// a site a site, so that two sites in one Caddy or on one Redis share no
// challenge, login or replay mark, while the instances (and reloads) of one
// site do. Secret settings only enter through the HMAC key.
func (h *Handler) siteKey() string {
	mac := hmac.New(sha256.New, []byte(h.JWTSecret))
	parts := []string{"consoleme_auth site", h.PublicURL, h.CookieName, h.EmailClaim, h.GroupsClaim, h.UserMatch,
		strings.Join(h.AllowedGroups, ","), strings.Join(h.DeniedGroups, ","), strings.Join(h.GroupsFilter, ",")}
	if h.SAML != nil {
		parts = append(parts, h.SAML.IDPMetadataURL, h.SAML.IDPMetadataFile, h.SAML.IDPEntityID, h.SAML.EntityID)
	}
	if h.PublicURL == "" {
		// Without public_url the site's address tells sites apart.
		parts = append(parts, h.Site)
	}
	for _, p := range parts {
		mac.Write([]byte(p))
		mac.Write([]byte{0})
	}
	return hex.EncodeToString(mac.Sum(nil))[:16]
}

// open returns the configured store and the function that releases it.
func (sc *StoreConfig) open(ctx caddy.Context, repl *caddy.Replacer, site string, bounds storeBounds, logger *zap.Logger) (store.Store, func() error, error) {
	switch sc.Type {
	case "redis":
		rawURL := repl.ReplaceAll(sc.URL, "")
		if err := checkRedisURL(rawURL); err != nil {
			return nil, nil, err
		}
		quietRedisClient(logger)
		keyPrefix := sc.KeyPrefix
		if keyPrefix == "" {
			keyPrefix = "consoleme_auth:" + site + ":"
		}
		rs, err := redisstore.New(redisstore.Options{
			URL:                rawURL,
			Username:           repl.ReplaceAll(sc.Username, ""),
			Password:           repl.ReplaceAll(sc.Password, ""),
			KeyPrefix:          keyPrefix,
			DialTimeout:        time.Duration(sc.DialTimeout),
			ReadTimeout:        time.Duration(sc.ReadTimeout),
			WriteTimeout:       time.Duration(sc.WriteTimeout),
			PoolSize:           sc.PoolSize,
			TLS:                sc.TLS,
			InsecureSkipVerify: sc.InsecureSkipVerify,
			ExpiredGrace:       expiredGrace,
			MaxLoginsPerClient: bounds.loginsPerClient,
		})
		if err != nil {
			return nil, nil, err
		}
		// Start-up never waits for Redis, but says when it is not there.
		go func() {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := rs.Ping(pctx); err != nil && ctx.Err() == nil {
				logger.Warn("redis store not reachable at start-up; challenge routes answer 503 until it is", zap.Error(err))
			}
		}()
		return rs, rs.Close, nil
	case "", "memory":
		// One memory store per site and bound, shared across config
		// reloads so that a reload does not forget the challenges in
		// flight, and never shared between sites.
		key := fmt.Sprintf("memory/%s/%d/%d", site, bounds.pending, bounds.loginsPerClient)
		v, _, err := memoryStores.LoadOrNew(key, func() (caddy.Destructor, error) {
			return memoryStore{store.NewMemory(store.MemoryOptions{
				MaxPending: bounds.pending, MaxLoginsPerClient: bounds.loginsPerClient, ExpiredGrace: expiredGrace,
			})}, nil
		})
		if err != nil {
			return nil, nil, err
		}
		return v.(memoryStore).Memory, func() error {
			_, err := memoryStores.Delete(key)
			return err
		}, nil
	default:
		return nil, nil, fmt.Errorf("store type %q is not available", sc.Type)
	}
}

var memoryStores = caddy.NewUsagePool()

var redisLoggerOnce sync.Once

// quietRedisClient sends the Redis client's own log lines (one per failed
// dial during an outage) to debug level: the outage itself is logged once
// by watchedStore. The client's logger is process-wide, hence once.
func quietRedisClient(logger *zap.Logger) {
	redisLoggerOnce.Do(func() { redis.SetLogger(redisLogger{logger.Named("redis")}) })
}

type redisLogger struct{ l *zap.Logger }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	if ce := r.l.Check(zapcore.DebugLevel, "redis client"); ce != nil {
		ce.Write(zap.String("detail", fmt.Sprintf(format, v...)))
	}
}

// memoryStore adapts the memory store to caddy.Destructor for the pool.
type memoryStore struct{ *store.Memory }

func (m memoryStore) Destruct() error { return m.Close() }
