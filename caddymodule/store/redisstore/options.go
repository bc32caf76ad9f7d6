package redisstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of Options.
const (
	DefaultURL          = "redis://127.0.0.1:6379/0"
	DefaultKeyPrefix    = "consoleme_auth:"
	DefaultDialTimeout  = 2 * time.Second
	DefaultReadTimeout  = time.Second
	DefaultWriteTimeout = time.Second
	DefaultExpiredGrace = time.Minute
)

// Options configures a Store. The zero value connects to DefaultURL with the
// defaults below.
type Options struct {
	// URL locates the server: redis://[[user]:password@]host[:port][/db],
	// rediss://… for TLS, or unix://[[user]:password@]/path/to/socket[?db=N].
	// Everything between "://" and the last "@" is the user info, so the
	// password may be written as is or percent-encoded. Query parameters
	// are those of go-redis's ParseURL (for example ?max_retries=2 or, with
	// rediss, ?skip_verify=true); the fields below take precedence over
	// them. Default: redis://127.0.0.1:6379/0.
	URL string

	// Username and Password, when set, replace those in the URL, so that the
	// password need not be written in the URL.
	Username string
	Password string

	// KeyPrefix starts every key the store writes (see keys.go for the
	// layout), so that stores with different prefixes share nothing on one
	// server. Instances that share state must use the same prefix. No
	// prefix in use may start with another one ("a:" and "a:c:"), as the
	// keys of one could then be named through the other by a crafted token.
	// Default: "consoleme_auth:".
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

	// PoolSize is the number of connections kept per Store. Default: 10 per
	// CPU, as go-redis chooses.
	PoolSize int

	// TLS turns on TLS also for a redis:// or unix:// URL (rediss:// always
	// uses it). The server name is the URL's host.
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
}

// Store is a store.Store in Redis. It is safe for concurrent use, and any
// number of Stores (in one or several processes) may share one server and

// New returns a Store for opts. It does not contact the server, so it
// succeeds while Redis is down; connections are made when needed, and the
// first failures show in the methods' errors (see Ping). It fails only on a
// bad configuration, with an error that never repeats the password.
func New(opts Options) (*Store, error) {
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

	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"dial timeout", opts.DialTimeout},
		{"read timeout", opts.ReadTimeout},
		{"write timeout", opts.WriteTimeout},
	} {
		if d.v < 0 {
			return nil, fmt.Errorf("redis store: %s must not be negative, got %s", d.name, d.v)
		}
	}
	ro.DialTimeout = choose(opts.DialTimeout, ro.DialTimeout, DefaultDialTimeout)
	ro.ReadTimeout = choose(opts.ReadTimeout, ro.ReadTimeout, DefaultReadTimeout)
	ro.WriteTimeout = choose(opts.WriteTimeout, ro.WriteTimeout, DefaultWriteTimeout)
	switch {
	case opts.PoolSize < 0:
		return nil, fmt.Errorf("redis store: pool size must not be negative, got %d", opts.PoolSize)
	case opts.PoolSize > 0:
		ro.PoolSize = opts.PoolSize
	}
	if opts.MaxLoginsPerClient < 0 {
		return nil, fmt.Errorf("redis store: max logins per client must not be negative, got %d", opts.MaxLoginsPerClient)
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

	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	grace := opts.ExpiredGrace
	switch {
	case grace == 0:
		grace = DefaultExpiredGrace
	case grace < 0:
		grace = 0
	}
	rdb := redis.NewClient(ro)
	// Creates come in bursts (every CLI login) and need no reply but a
	// number: they share pipelines. A worker per few connections keeps
	// several pipelines in flight.
	workers := max(2, rdb.Options().PoolSize/8)
	timeout := ro.DialTimeout + ro.WriteTimeout + ro.ReadTimeout
	return &Store{rdb: rdb, keys: keys{prefix}, grace: grace, perClient: opts.MaxLoginsPerClient,
		creates: newBatcher(rdb, createScript, workers, timeout)}, nil
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
