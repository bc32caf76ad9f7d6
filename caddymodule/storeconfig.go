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
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
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
	// expanded. Default: redis://127.0.0.1:6379/0. Not with sentinel or
	// cluster.
	URL string `json:"url,omitempty"`

	// Sentinel reaches the primary through Redis Sentinel (redis only),
	// following it through failovers without a restart. Database 0.
	Sentinel *SentinelConfig `json:"sentinel,omitempty"`

	// Cluster lists some nodes of a Redis Cluster, host:port each (redis
	// only); the rest of the cluster is learnt from them. Placeholders are
	// expanded.
	Cluster []string `json:"cluster,omitempty"`

	// Username and Password replace those in the URL (redis only), so the
	// password can come from a placeholder such as {env.REDIS_PASSWORD}.
	// With sentinel or cluster they authenticate to every Redis server.
	// Never logged.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`

	// KeyPrefix starts every Redis key. Default: consoleme_auth:<site>:,
	// where <site> is derived from the site's identity (a keyed hash of its
	// jwt_secret, public_url (or, without one, the site's address), cookie
	// and claim names, SAML IdP and entity ID, and group policy): the instances of one site share their
	// challenges, and two sites on one Redis never see each other's
	// challenges, logins or replay marks. Setting it by hand, give every
	// site its own prefix. In a Redis Cluster each prefix gets a hash tag
	// of its own for its logins; a prefix holding a hash tag ("app:{eu}:")
	// keeps all its keys in that tag's slot, and one whose first "{" is
	// followed at once by "}" is refused.
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

	// ReplicaAcks is how many replicas must acknowledge that a success is
	// taken before the poller hands it out, so that a replica promoted by a
	// failover never hands it out again (redis only). 0, the default, waits
	// for every replica connected to the primary at that moment, none when
	// there is none; a number N waits for N replicas even when fewer are
	// connected (a primary cut off from its replicas then hands out
	// nothing); -1 never waits. In the Caddyfile: auto, off or N.
	ReplicaAcks int `json:"replica_acks,omitempty"`

	// ReplicaAckTimeout bounds that wait; when it runs out the poller
	// answers 503 and the success is kept for its next poll. Default: 500ms.
	ReplicaAckTimeout caddy.Duration `json:"replica_ack_timeout,omitempty"`
}

// SentinelConfig locates the primary through Redis Sentinel.
type SentinelConfig struct {
	// MasterName is the name the sentinels monitor the primary under.
	MasterName string `json:"master_name,omitempty"`
	// Addrs are the sentinels, host:port each (Sentinel's port is usually
	// 26379). Placeholders are expanded.
	Addrs []string `json:"addrs,omitempty"`
	// Username and Password authenticate to the sentinels, when they ask
	// for it; placeholders are expanded. Never logged.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
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

// unmarshalRedis parses the rest of `store redis [<url>] [{ ... }]`:
//
//	store redis [<url>] {
//		url <url>
//		sentinel <master_name> <host:port>...
//		sentinel_username <name>
//		sentinel_password <password>
//		cluster <host:port>...
//		username <name>
//		password <password>
//		key_prefix <prefix>
//		dial_timeout|read_timeout|write_timeout <duration>
//		pool_size <n>
//		tls
//		insecure_skip_verify
//		replica_acks auto|off|<n>
//		replica_ack_timeout <duration>
//	}
func (sc *StoreConfig) unmarshalRedis(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		sc.URL = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	sentinel := func() *SentinelConfig {
		if sc.Sentinel == nil {
			sc.Sentinel = &SentinelConfig{}
		}
		return sc.Sentinel
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		var err error
		switch name {
		case "url":
			err = oneString(d, &sc.URL)
		case "sentinel":
			var args []string
			if args, err = someArgs(d); err == nil && len(args) < 2 {
				err = d.Errf("store redis: sentinel wants a master name and at least one sentinel address")
			} else if err == nil {
				sentinel().MasterName, sentinel().Addrs = args[0], args[1:]
			}
		case "sentinel_username":
			err = oneString(d, &sentinel().Username)
		case "sentinel_password":
			err = oneString(d, &sentinel().Password)
		case "cluster":
			sc.Cluster, err = someArgs(d)
		case "username":
			err = oneString(d, &sc.Username)
		case "password":
			err = oneString(d, &sc.Password)
		case "key_prefix":
			err = oneString(d, &sc.KeyPrefix)
		case "dial_timeout":
			err = oneDuration(d, &sc.DialTimeout)
		case "read_timeout":
			err = oneDuration(d, &sc.ReadTimeout)
		case "write_timeout":
			err = oneDuration(d, &sc.WriteTimeout)
		case "pool_size":
			err = oneInt(d, &sc.PoolSize, 1, 1<<31-1)
		case "tls":
			err = noArgs(d)
			sc.TLS = true
		case "insecure_skip_verify":
			err = noArgs(d)
			sc.InsecureSkipVerify = true
		case "replica_acks":
			err = sc.unmarshalReplicaAcks(d)
		case "replica_ack_timeout":
			err = oneDuration(d, &sc.ReplicaAckTimeout)
		default:
			return d.Errf("store redis: unrecognized subdirective '%s'", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unmarshalReplicaAcks parses `replica_acks auto|off|<n>`.
func (sc *StoreConfig) unmarshalReplicaAcks(d *caddyfile.Dispenser) error {
	var v string
	if err := oneString(d, &v); err != nil {
		return err
	}
	switch v {
	case "auto":
		sc.ReplicaAcks = 0
	case "off":
		sc.ReplicaAcks = redisstore.ReplicaAcksOff
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return d.Errf("store redis: replica_acks %q: want auto, off or a number of replicas", v)
		}
		sc.ReplicaAcks = n
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
		if sc.URL != "" || sc.Password != "" || sc.KeyPrefix != "" || sc.Sentinel != nil || len(sc.Cluster) > 0 {
			return errors.New("url, sentinel, cluster, password and key_prefix are for the redis store")
		}
	case "redis":
		if sc.DialTimeout < 0 || sc.ReadTimeout < 0 || sc.WriteTimeout < 0 || sc.PoolSize < 0 || sc.ReplicaAckTimeout < 0 {
			return errors.New("redis timeouts and pool_size must be positive")
		}
		if sc.ReplicaAcks < redisstore.ReplicaAcksOff {
			return fmt.Errorf("replica_acks: %d; want -1 (off), 0 (auto) or a number of replicas", sc.ReplicaAcks)
		}
		if sc.Sentinel != nil && (sc.Sentinel.MasterName == "" || len(sc.Sentinel.Addrs) == 0) {
			return errors.New("sentinel: needs master_name and at least one address")
		}
		if n := btoi(sc.URL != "") + btoi(sc.Sentinel != nil) + btoi(len(sc.Cluster) > 0); n > 1 {
			return errors.New("url, sentinel and cluster are exclusive")
		}
	default:
		return fmt.Errorf("unknown type %q (want memory or redis)", sc.Type)
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// siteKey names this site's state in the stores: a keyed hash of what makes
// a site a site, so that two sites in one Caddy or on one Redis share no
// challenge, login or replay mark, while the instances (and reloads) of one
// site do. Secret settings only enter through the HMAC key.
func (h *Handler) siteKey() string {
	parts := []string{"consoleme_auth site", h.PublicURL, h.CookieName, h.EmailClaim, h.GroupsClaim, h.UserMatch,
		strings.Join(h.AllowedGroups, ","), strings.Join(h.DeniedGroups, ","), strings.Join(h.GroupsFilter, ",")}
	if h.SAML != nil {
		parts = append(parts, h.SAML.IDPMetadataURL, h.SAML.IDPMetadataFile, h.SAML.IDPEntityID, h.SAML.EntityID)
	}
	return h.keyedName(parts...)
}

// keyedName is a short keyed hash (HMAC over jwt_secret) of parts, plus
// the site's address when there is no public_url (it then tells sites
// apart): a store name that says nothing of the settings.
func (h *Handler) keyedName(parts ...string) string {
	if h.PublicURL == "" {
		parts = append(parts, h.Site)
	}
	mac := hmac.New(sha256.New, []byte(h.JWTSecret))
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
		opts := sc.redisOptions(repl, rawURL, keyPrefix)
		opts.MaxLoginsPerClient = bounds.loginsPerClient
		rs, err := redisstore.New(opts)
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

// redisOptions are the connection settings of the redis store, with the
// placeholders expanded.
func (sc *StoreConfig) redisOptions(repl *caddy.Replacer, rawURL, keyPrefix string) redisstore.Options {
	opts := redisstore.Options{
		URL:                rawURL,
		ClusterAddrs:       replaceAll(repl, sc.Cluster),
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
		ReplicaAcks:        sc.ReplicaAcks,
		ReplicaAckTimeout:  time.Duration(sc.ReplicaAckTimeout),
	}
	if st := sc.Sentinel; st != nil {
		opts.MasterName = repl.ReplaceAll(st.MasterName, "")
		opts.SentinelAddrs = replaceAll(repl, st.Addrs)
		opts.SentinelUsername = repl.ReplaceAll(st.Username, "")
		opts.SentinelPassword = repl.ReplaceAll(st.Password, "")
	}
	return opts
}

// replaceAll expands the placeholders in each of vals.
func replaceAll(repl *caddy.Replacer, vals []string) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = repl.ReplaceAll(v, "")
	}
	return out
}

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
