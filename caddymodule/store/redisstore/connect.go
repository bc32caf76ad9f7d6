package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// client is what New needs of a connected go-redis client, whichever kind.
type client struct {
	rdb redis.UniversalClient
	// pin returns a connection of its own to the primary that holds key,
	// for a script and the WAIT after it (WAIT counts the replicas that
	// have the writes made on its own connection).
	pin         func(ctx context.Context, key string) (*redis.Conn, error)
	poolSize    int
	callTimeout time.Duration
}

// connect makes the client opts ask for: one server, Sentinel or Cluster.
func connect(opts Options) (*client, error) {
	sentinel := opts.MasterName != "" || len(opts.SentinelAddrs) > 0
	cluster := len(opts.ClusterAddrs) > 0
	switch {
	case sentinel && cluster:
		return nil, errors.New("redis store: sentinel and cluster are exclusive")
	case (sentinel || cluster) && opts.URL != "":
		return nil, errors.New("redis store: url is for a single server, not with sentinel or cluster")
	case !sentinel && (opts.SentinelUsername != "" || opts.SentinelPassword != ""):
		return nil, errors.New("redis store: sentinel credentials need a sentinel master name and addresses")
	case sentinel:
		return connectSentinel(opts)
	case cluster:
		return connectCluster(opts)
	}
	return connectServer(opts)
}

// connectServer connects to the one server of opts.URL.
func connectServer(opts Options) (*client, error) {
	raw := opts.URL
	if raw == "" {
		raw = DefaultURL
	}
	ro, err := parseURL(raw)
	if err != nil {
		return nil, err
	}
	if opts.Username != "" {
		ro.Username = opts.Username
	}
	if opts.Password != "" {
		ro.Password = opts.Password
	}
	ro.DialTimeout = choose(opts.DialTimeout, ro.DialTimeout, DefaultDialTimeout)
	ro.ReadTimeout = choose(opts.ReadTimeout, ro.ReadTimeout, DefaultReadTimeout)
	ro.WriteTimeout = choose(opts.WriteTimeout, ro.WriteTimeout, DefaultWriteTimeout)
	if opts.PoolSize > 0 {
		ro.PoolSize = opts.PoolSize
	}
	// A failed call is answered at once (the client asks again) rather than
	// retried: retries would multiply the time a request waits on a dead
	// server. One dial attempt per call, for the same reason.
	if ro.MaxRetries == 0 {
		ro.MaxRetries = -1
	}
	if ro.DialerRetries == 0 {
		ro.DialerRetries = 1
	}
	ro.ContextTimeoutEnabled = true

	if opts.TLS && ro.TLSConfig == nil {
		host := ro.Addr
		if h, _, err := net.SplitHostPort(ro.Addr); err == nil {
			host = h
		}
		ro.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	if opts.InsecureSkipVerify {
		if ro.TLSConfig == nil {
			return nil, errors.New("redis store: insecure_skip_verify needs TLS (a rediss:// URL or tls)")
		}
		ro.TLSConfig.InsecureSkipVerify = true
	}
	// No maintenance-notification handshake: Redis before 8 answers it
	// with an error, and go-redis then rewrites its options under a lock
	// that a pinned connection (Conn) does not share, a data race.
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	rdb := redis.NewClient(ro)
	return &client{rdb: rdb, pin: pinClient(rdb), poolSize: rdb.Options().PoolSize,
		callTimeout: ro.DialTimeout + ro.WriteTimeout + ro.ReadTimeout}, nil
}

// connectSentinel connects to the primary the sentinels name, and follows
// it through failovers.
func connectSentinel(opts Options) (*client, error) {
	if opts.MasterName == "" || len(opts.SentinelAddrs) == 0 {
		return nil, errors.New("redis store: sentinel needs a master name and at least one sentinel address")
	}
	if err := checkAddrs("sentinel", opts.SentinelAddrs); err != nil {
		return nil, err
	}
	tc, err := tlsConfig(opts)
	if err != nil {
		return nil, err
	}
	fo := &redis.FailoverOptions{
		MasterName:       opts.MasterName,
		SentinelAddrs:    opts.SentinelAddrs,
		SentinelUsername: opts.SentinelUsername,
		SentinelPassword: opts.SentinelPassword,
		Username:         opts.Username,
		Password:         opts.Password,
		DialTimeout:      choose(opts.DialTimeout, 0, DefaultDialTimeout),
		ReadTimeout:      choose(opts.ReadTimeout, 0, DefaultReadTimeout),
		WriteTimeout:     choose(opts.WriteTimeout, 0, DefaultWriteTimeout),
		PoolSize:         opts.PoolSize,
		// As for one server: no retries, one dial attempt per call.
		MaxRetries:            -1,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
		TLSConfig:             tc,
	}
	rdb := redis.NewFailoverClient(fo)
	return &client{rdb: rdb, pin: pinClient(rdb), poolSize: rdb.Options().PoolSize,
		callTimeout: fo.DialTimeout + fo.WriteTimeout + fo.ReadTimeout}, nil
}

// connectCluster connects to a Redis Cluster through some of its nodes.
func connectCluster(opts Options) (*client, error) {
	if err := checkAddrs("cluster", opts.ClusterAddrs); err != nil {
		return nil, err
	}
	tc, err := tlsConfig(opts)
	if err != nil {
		return nil, err
	}
	co := &redis.ClusterOptions{
		Addrs:                 opts.ClusterAddrs,
		Username:              opts.Username,
		Password:              opts.Password,
		DialTimeout:           choose(opts.DialTimeout, 0, DefaultDialTimeout),
		ReadTimeout:           choose(opts.ReadTimeout, 0, DefaultReadTimeout),
		WriteTimeout:          choose(opts.WriteTimeout, 0, DefaultWriteTimeout),
		PoolSize:              opts.PoolSize,
		MaxRetries:            -1,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
		TLSConfig:             tc,
		// As for one server (connectServer): no maintenance-notification handshake.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	rdb := redis.NewClusterClient(co)
	pin := func(ctx context.Context, key string) (*redis.Conn, error) {
		node, err := rdb.MasterForKey(ctx, key)
		if err != nil {
			return nil, err
		}
		return node.Conn(), nil
	}
	return &client{rdb: rdb, pin: pin, poolSize: rdb.Options().PoolSize,
		callTimeout: co.DialTimeout + co.WriteTimeout + co.ReadTimeout}, nil
}

func pinClient(rdb *redis.Client) func(context.Context, string) (*redis.Conn, error) {
	return func(context.Context, string) (*redis.Conn, error) { return rdb.Conn(), nil }
}

// tlsConfig is the TLS configuration for Sentinel and Cluster, whose
// server names are those of the hosts dialled.
func tlsConfig(opts Options) (*tls.Config, error) {
	if !opts.TLS {
		if opts.InsecureSkipVerify {
			return nil, errors.New("redis store: insecure_skip_verify needs tls")
		}
		return nil, nil
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: opts.InsecureSkipVerify}, nil //nolint:gosec // tests only, documented
}

// checkAddrs refuses an address that is not host:port.
func checkAddrs(what string, addrs []string) error {
	for _, a := range addrs {
		_, port, err := net.SplitHostPort(a)
		if err != nil {
			return fmt.Errorf("redis store: %s address %q: want host:port", what, a)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("redis store: %s address %q: %q is not a valid port", what, a, port)
		}
	}
	return nil
}
