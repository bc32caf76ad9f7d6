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
	nodes       *nodes // a cluster's nodes, to follow redirections; nil otherwise
	poolSize    int
	callTimeout time.Duration
}

// connect makes the client opts ask for: one server, Sentinel or Cluster.
// The three share their settings (common); only the addresses differ.
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
	case sentinel && (opts.MasterName == "" || len(opts.SentinelAddrs) == 0):
		return nil, errors.New("redis store: sentinel needs a master name and at least one sentinel address")
	case sentinel:
		if err := checkAddrs("sentinel", opts.SentinelAddrs); err != nil {
			return nil, err
		}
	case cluster:
		if err := checkAddrs("cluster", opts.ClusterAddrs); err != nil {
			return nil, err
		}
	}
	if !sentinel && !cluster {
		return connectServer(opts)
	}

	u, err := common(opts, nil)
	if err != nil {
		return nil, err
	}
	callTimeout := u.DialTimeout + u.WriteTimeout + u.ReadTimeout
	if sentinel {
		u.MasterName, u.Addrs = opts.MasterName, opts.SentinelAddrs
		u.SentinelUsername, u.SentinelPassword = opts.SentinelUsername, opts.SentinelPassword
		// go-redis turns the maintenance notifications off for a
		// failover client itself (FailoverOptions has no such setting).
		rdb := redis.NewFailoverClient(u.Failover())
		return &client{rdb: rdb, pin: pinClient(rdb), poolSize: rdb.Options().PoolSize, callTimeout: callTimeout}, nil
	}
	u.Addrs = opts.ClusterAddrs
	rdb := redis.NewClusterClient(u.Cluster())
	n := &nodes{}
	n.track(rdb)
	rdb.AddHook(layoutHook{rdb})
	rdb.AddHook(followHook{n})
	pin := func(ctx context.Context, key string) (*redis.Conn, error) {
		node, err := rdb.MasterForKey(ctx, key)
		if err != nil {
			return nil, err
		}
		return node.Conn(), nil
	}
	return &client{rdb: rdb, pin: pin, nodes: n, poolSize: rdb.Options().PoolSize, callTimeout: callTimeout}, nil
}

// connectServer connects to the one server of opts.URL, whose query
// parameters (go-redis's) give what opts leaves unset.
func connectServer(opts Options) (*client, error) {
	raw := opts.URL
	if raw == "" {
		raw = DefaultURL
	}
	ro, err := parseURL(raw)
	if err != nil {
		return nil, err
	}
	u, err := common(opts, ro)
	if err != nil {
		return nil, err
	}
	// The URL's address, database, network and other parameters stay;
	// what every kind of deployment shares comes from common.
	ro.Username, ro.Password, ro.TLSConfig = u.Username, u.Password, u.TLSConfig
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = u.DialTimeout, u.ReadTimeout, u.WriteTimeout
	ro.PoolSize, ro.MaxRetries, ro.DialerRetries = u.PoolSize, u.MaxRetries, u.DialerRetries
	ro.ContextTimeoutEnabled, ro.MaintNotificationsConfig = u.ContextTimeoutEnabled, u.MaintNotificationsConfig
	rdb := redis.NewClient(ro)
	return &client{rdb: rdb, pin: pinClient(rdb), poolSize: rdb.Options().PoolSize,
		callTimeout: ro.DialTimeout + ro.WriteTimeout + ro.ReadTimeout}, nil
}

// common returns the settings every kind of deployment gets alike. For one
// server, url holds what its URL sets; opts takes precedence over it, and
// the defaults apply to what neither sets.
func common(opts Options, url *redis.Options) (*redis.UniversalOptions, error) {
	if url == nil {
		url = &redis.Options{}
	}
	u := &redis.UniversalOptions{
		Username:     cmp(opts.Username, url.Username),
		Password:     cmp(opts.Password, url.Password),
		DialTimeout:  choose(opts.DialTimeout, url.DialTimeout, DefaultDialTimeout),
		ReadTimeout:  choose(opts.ReadTimeout, url.ReadTimeout, DefaultReadTimeout),
		WriteTimeout: choose(opts.WriteTimeout, url.WriteTimeout, DefaultWriteTimeout),
		PoolSize:     url.PoolSize,
		// A failed call is answered at once (the client asks again) rather
		// than retried: retries would multiply the time a request waits on
		// a dead server. One dial attempt per call, for the same reason.
		// A URL's max_retries is kept.
		MaxRetries:    url.MaxRetries,
		DialerRetries: 1,
		// A cluster client retries through MaxRedirects instead, up to
		// three times by default, also after a timeout (and so runs a
		// script again on a master that was only slow). None: a call that
		// gets no answer fails, and the layout is learnt again for the
		// next (layoutHook); a call redirected (MOVED, ASK) is sent once to
		// the node named (redirect.go).
		MaxRedirects:          -1,
		ContextTimeoutEnabled: true,
		TLSConfig:             url.TLSConfig,
		// No maintenance-notification handshake: Redis before 8 answers
		// it with an error, and go-redis then rewrites its options under a
		// lock that a pinned connection (Conn) does not share, a data race.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if opts.PoolSize > 0 {
		u.PoolSize = opts.PoolSize
	}
	if u.MaxRetries == 0 {
		u.MaxRetries = -1
	}
	if opts.TLS && u.TLSConfig == nil {
		// The server name is the host dialled; for one server it is
		// written here, so that it shows in the options.
		u.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if url.Addr != "" {
			host := url.Addr
			if h, _, err := net.SplitHostPort(url.Addr); err == nil {
				host = h
			}
			u.TLSConfig.ServerName = host
		}
	}
	if opts.InsecureSkipVerify {
		if u.TLSConfig == nil {
			return nil, errors.New("redis store: insecure_skip_verify needs TLS (tls, or a rediss:// URL)")
		}
		u.TLSConfig.InsecureSkipVerify = true // documented as for tests only
	}
	return u, nil
}

// cmp returns the first of a and b that is not empty.
func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func pinClient(rdb *redis.Client) func(context.Context, string) (*redis.Conn, error) {
	return func(context.Context, string) (*redis.Conn, error) { return rdb.Conn(), nil }
}

// layoutHook has a cluster client learn the cluster's layout again (which
// master serves which slot) when a call gets no answer from a node, or
// hears that a key moved (MOVED; an ASK changes no layout). go-redis on its own reloads the layout after a
// redirection, which a master that died never sends, and otherwise once a
// minute: the dead master's slots would stay unreachable that long after
// its replica took over. The reload runs in the background, one at a time.
type layoutHook struct{ cc *redis.ClusterClient }

func (h layoutHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h layoutHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		relearn(ctx, h.cc, err)
		return err
	}
}

func (h layoutHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		relearn(ctx, h.cc, err)
		return err
	}
}

// relearn reloads cc's layout (cc may be nil: not a cluster) after err, if
// err says that the layout may have changed: no answer from a node, or a
// key moved. Errors that Redis answered with otherwise say nothing about
// the layout: an ASK, in particular, is about one key while its slot moves.
func relearn(ctx context.Context, cc *redis.ClusterClient, err error) {
	if cc == nil || err == nil || errors.Is(err, context.Canceled) {
		return
	}
	_, moved := redis.IsMovedError(err)
	var answered redis.Error
	if moved || !errors.As(err, &answered) {
		cc.ReloadState(ctx)
	}
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
