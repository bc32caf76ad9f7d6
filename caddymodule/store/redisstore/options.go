package redisstore

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of Options.
const (
	DefaultURL               = "redis://127.0.0.1:6379/0"
	DefaultKeyPrefix         = "consoleme_auth:"
	DefaultDialTimeout       = 2 * time.Second
	DefaultReadTimeout       = time.Second
	DefaultWriteTimeout      = time.Second
	DefaultExpiredGrace      = time.Minute
	DefaultReplicaAckTimeout = 500 * time.Millisecond
)

// ReplicaAcksOff is the Options.ReplicaAcks that never waits for replicas.
const ReplicaAcksOff = -1

// Options configures a Store. The zero value connects to DefaultURL with the
// defaults below. The store talks to one server (URL), to the primary a set
// of Redis Sentinels names (MasterName and SentinelAddrs), or to a Redis
// Cluster (ClusterAddrs); only one of the three may be set.
type Options struct {
	// URL locates the server: redis://[[user]:password@]host[:port][/db],
	// rediss://… for TLS, or unix://[[user]:password@]/path/to/socket[?db=N].
	// Everything between "://" and the last "@" is the user info, so the
	// password may be written as is or percent-encoded. Query parameters
	// are those of go-redis's ParseURL (for example ?max_retries=2 or, with
	// rediss, ?skip_verify=true); the fields below take precedence over
	// them. Default: redis://127.0.0.1:6379/0.
	URL string

	// MasterName and SentinelAddrs select Redis Sentinel: the store asks
	// the sentinels (host:port each) where the primary named MasterName is,
	// and follows it through failovers without a restart. Database 0.
	MasterName    string
	SentinelAddrs []string
	// SentinelUsername and SentinelPassword authenticate to the sentinels
	// (Username and Password to the Redis servers).
	SentinelUsername string
	SentinelPassword string

	// ClusterAddrs selects Redis Cluster: some of its nodes (host:port
	// each), from which the store learns the whole cluster and follows its
	// changes. Database 0.
	ClusterAddrs []string

	// Username and Password, when set, replace those in the URL, so that the
	// password need not be written in the URL. With Sentinel or Cluster they
	// authenticate to every Redis server.
	Username string
	Password string

	// KeyPrefix starts every key the store writes (see keys.go for the
	// layout and its hash tags), so that stores with different prefixes
	// share nothing on one server. Instances that share state must use the
	// same prefix. No prefix in use may start with another one ("a:" and
	// "a:c:"), as the keys of one could then be named through the other by
	// a crafted token. Default: "consoleme_auth:".
	KeyPrefix string

	// DialTimeout bounds connecting to the server. Default: 2s.
	DialTimeout time.Duration
	// ReadTimeout bounds waiting for each reply. Default: 1s.
	ReadTimeout time.Duration
	// WriteTimeout bounds sending each command. Default: 1s.
	WriteTimeout time.Duration
	// With these timeouts and no retries (unless the URL asks for
	// max_retries), a call fails with store.ErrUnavailable within about
	// DialTimeout+WriteTimeout+ReadTimeout when Redis is down or slow, plus
	// up to ReadTimeout+1s waiting for a connection when all are busy.

	// PoolSize is the number of connections kept per Store (per node with
	// Cluster). Default: 10 per CPU, as go-redis chooses.
	PoolSize int

	// TLS turns on TLS also for a redis:// or unix:// URL (rediss:// always
	// uses it), and for Sentinel and Cluster. The server name is the host
	// dialled.
	TLS bool
	// InsecureSkipVerify accepts any server certificate. It needs TLS, is
	// meant for tests only, and defaults to false.
	InsecureSkipVerify bool

	// ExpiredGrace is how long after its expiry a challenge is still kept,
	// so that the poller answers "expired" rather than "unknown". It is
	// added to the key's time to live. Default: 1m; a negative value keeps
	// nothing after the expiry.
	ExpiredGrace time.Duration

	// MaxLoginsPerClient bounds the live (unexpired) SAML logins saved with
	// one non-empty LoginState.Client; SaveLogin answers
	// store.ErrClientBusy beyond it. Instances that share state should use
	// the same bound. Default: 0, unbounded.
	MaxLoginsPerClient int

	// ReplicaAcks is how many replicas must have acknowledged that a
	// success is claimed, and then that it is taken, before Poll hands it
	// out (see ack.go), so that a replica promoted by a failover never
	// hands it out again. 0, the
	// default, waits for every replica the primary has connected at that
	// moment: with none connected (a lone server, a cluster without
	// replicas, a primary whose replicas are down) nothing is waited for.
	// A number N waits for N replicas, also when fewer are connected, so
	// that a primary cut off from its replicas hands out nothing.
	// ReplicaAcksOff (-1) never waits.
	ReplicaAcks int
	// ReplicaAckTimeout bounds each of those waits. When it runs out, Poll
	// hands nothing out and fails with store.ErrUnavailable, and the
	// success is left for a later poll. Default: 500ms.
	ReplicaAckTimeout time.Duration
}

// New returns a Store for opts. It does not contact the server, so it
// succeeds while Redis is down; connections are made when needed, and the
// first failures show in the methods' errors (see Ping). It fails only on a
// bad configuration, with an error that never repeats a password.
func New(opts Options) (*Store, error) {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"dial timeout", opts.DialTimeout},
		{"read timeout", opts.ReadTimeout},
		{"write timeout", opts.WriteTimeout},
		{"replica ack timeout", opts.ReplicaAckTimeout},
	} {
		if d.v < 0 {
			return nil, fmt.Errorf("redis store: %s must not be negative, got %s", d.name, d.v)
		}
	}
	switch {
	case opts.PoolSize < 0:
		return nil, fmt.Errorf("redis store: pool size must not be negative, got %d", opts.PoolSize)
	case opts.MaxLoginsPerClient < 0:
		return nil, fmt.Errorf("redis store: max logins per client must not be negative, got %d", opts.MaxLoginsPerClient)
	case opts.ReplicaAcks < ReplicaAcksOff:
		return nil, fmt.Errorf("redis store: replica acks must be -1 (off), 0 (automatic) or a number of replicas, got %d", opts.ReplicaAcks)
	}
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	c, err := connect(opts)
	if err != nil {
		return nil, err
	}
	grace := opts.ExpiredGrace
	switch {
	case grace == 0:
		grace = DefaultExpiredGrace
	case grace < 0:
		grace = 0
	}
	ackTimeout := opts.ReplicaAckTimeout
	if ackTimeout == 0 {
		ackTimeout = DefaultReplicaAckTimeout
	}
	// Creates come in bursts (every CLI login) and need no reply but a
	// number: they share pipelines. A worker per few connections keeps
	// several pipelines in flight.
	workers := max(2, c.poolSize/8)
	return &Store{rdb: c.rdb, pin: c.pin, nodes: c.nodes, keys: newKeys(prefix), grace: grace, perClient: opts.MaxLoginsPerClient,
		acks: opts.ReplicaAcks, ackTimeout: ackTimeout, callTimeout: c.callTimeout,
		creates: newBatcher(c.rdb, createScript, workers, c.callTimeout)}, nil
}

// choose returns the configured duration if set, else the one from the URL
// if set, else the default.
func choose(configured, fromURL, def time.Duration) time.Duration {
	switch {
	case configured > 0:
		return configured
	case fromURL != 0:
		return fromURL
	}
	return def
}

// parseURL parses raw with go-redis, taking the user name and password out
// first: what remains cannot show them in an error, whatever the mistake.
// Everything between "://" and the last "@" is the user info, so the
// password may hold "/", "?", "#" or "@" unescaped.
func parseURL(raw string) (*redis.Options, error) {
	rest, user, pass, hasCreds, err := splitCredentials(raw)
	if err != nil {
		return nil, err
	}
	ro, err := redis.ParseURL(rest)
	if err != nil {
		// url.Error quotes the whole URL, query included; its cause only
		// names the faulty part.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis store: bad redis URL: %w", err)
	}
	if hasCreds {
		ro.Username, ro.Password = user, pass
	}
	return ro, nil
}

// splitCredentials takes the percent-decoded user name and password out of
// raw and returns the URL without them.
func splitCredentials(raw string) (rest, user, pass string, ok bool, err error) {
	scheme, after, found := strings.Cut(raw, "://")
	at := strings.LastIndexByte(after, '@')
	if !found || at < 0 {
		if !found && strings.Contains(raw, "@") {
			return "", "", "", false, errors.New("redis store: bad redis URL: missing scheme (redis://, rediss:// or unix://)")
		}
		return raw, "", "", false, nil
	}
	info := after[:at]
	user, pass, _ = strings.Cut(info, ":")
	var uerr, perr error
	user, uerr = url.PathUnescape(user)
	pass, perr = url.PathUnescape(pass)
	if uerr != nil || perr != nil {
		return "", "", "", false, errors.New("redis store: bad redis URL: malformed percent-encoding in the user name or password")
	}
	return scheme + "://" + after[at+1:], user, pass, true, nil
}
