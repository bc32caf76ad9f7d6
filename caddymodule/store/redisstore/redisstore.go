// Package redisstore is a store.Store kept in Redis (or Valkey), so that
// several Caddy instances behind one load balancer share their challenges:
// a challenge made on one instance can be viewed on a second and collected
// on a third.
//
// Each challenge is one hash key that Redis expires by itself once the
// challenge and its grace are over, so nothing is left to sweep. Every state
// change is one Lua script, run atomically by the server in one round trip:
// in particular Poll reads, decides and deletes in one step, so a success is
// handed out exactly once however many pollers race on however many
// instances. The scripts compare times passed in by the caller, never the
// server's clock, so the Redis store answers exactly as the memory store
// does. Redis 4.0 or later is needed.
//
// Any failure to reach or use Redis comes back as an error wrapping
// store.ErrUnavailable, after at most about the configured timeouts.
package redisstore

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
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

// maxTTL bounds the lifetime given to a key, far beyond any sensible
// challenge, so that absurd times cannot make Redis refuse the expiry.
const maxTTL = 100 * 365 * 24 * time.Hour

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

	// KeyPrefix starts every key the store writes: challenges are
	// KeyPrefix+"c:"+token, SAML logins KeyPrefix+"l:"+id and replay marks
	// KeyPrefix+"o:"+key. Instances that share state must use the same
	// prefix. Default: "consoleme_auth:".
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
}

// Store is a store.Store in Redis. It is safe for concurrent use, and any
// number of Stores (in one or several processes) may share one server and
// key prefix.
type Store struct {
	rdb     *redis.Client
	prefix  string
	grace   time.Duration
	creates *batcher

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

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
	return &Store{rdb: rdb, prefix: prefix, grace: grace,
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

// Ping checks that the server answers, with an error wrapping
// store.ErrUnavailable when it does not.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Close closes the connections; later calls fail with store.ErrUnavailable.
// Closing twice is harmless.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.creates.close()
		if err := s.rdb.Close(); err != nil {
			s.closeErr = fmt.Errorf("redis store: close: %w", err)
		}
	})
	return s.closeErr
}

// Create stores c as a new challenge whose key lives until c.Expires plus
// the grace, counted from c.Created. It answers store.ErrExists when the
// token is taken, and store.ErrFull when Redis is out of memory.
func (s *Store) Create(ctx context.Context, c *store.Challenge) error {
	if c == nil {
		return errors.New("redis store: create: nil challenge")
	}
	cm, cn := splitTime(c.Created)
	em, en := splitTime(c.Expires)
	args := make([]any, 0, 23)
	args = append(args, ttlMillis(c.Expires.Add(s.grace).Sub(c.Created)),
		"u", c.User, "ip", c.IP, "s", string(c.Status),
		"c", cm, "cn", cn, "e", em, "en", en)
	if c.Viewed {
		args = append(args, "v", "1")
	}
	if c.Nonce != "" {
		args = append(args, "n", c.Nonce)
	}
	if c.Approver != "" {
		args = append(args, "a", c.Approver)
	}
	if len(c.Groups) > 0 {
		g, err := json.Marshal(c.Groups)
		if err != nil {
			return fmt.Errorf("redis store: create: encoding groups: %w", err)
		}
		args = append(args, "g", string(g))
	}
	n, err := s.creates.run(ctx, s.challengeKey(c.Token), args)
	switch {
	case err != nil && redis.HasErrorPrefix(err, "OOM"):
		return fmt.Errorf("redis store: create: %w: redis is out of memory", store.ErrFull)
	case err != nil:
		return unavailable("create", err)
	case n == 0:
		return store.ErrExists
	}
	return nil
}

// Get returns the challenge stored under token, or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, token string) (*store.Challenge, error) {
	m, err := s.rdb.HGetAll(ctx, s.challengeKey(token)).Result()
	if err != nil {
		return nil, unavailable("get", err)
	}
	if len(m) == 0 {
		return nil, store.ErrNotFound
	}
	var d decoder
	for k, v := range m {
		d.set(k, v)
	}
	return d.challenge(token)
}

// View marks an unexpired challenge that was never viewed as viewed with
// nonce and returns it; see store.Store.
func (s *Store) View(ctx context.Context, token, nonce string, now time.Time) (*store.Challenge, error) {
	args := s.clock(now, 5)
	args = append(args, nonce)
	res, err := viewScript.Run(ctx, s.rdb, []string{s.challengeKey(token)}, args...).Result()
	if err != nil {
		return nil, unavailable("view", err)
	}
	if fields, ok := res.([]any); ok {
		return decodeFields(token, fields)
	}
	switch code(res) {
	case codeNotFound:
		return nil, store.ErrNotFound
	case codeExpired:
		return nil, store.ErrExpired
	case codeRefused:
		return nil, store.ErrAlreadyViewed
	}
	return nil, unexpected("view", res)
}

// Approve marks a viewed, unexpired challenge as a success for approver with
// groups when nonce is the one View recorded; see store.Store.
func (s *Store) Approve(ctx context.Context, token, nonce, approver string, groups []string, now time.Time) error {
	g := ""
	if len(groups) > 0 {
		b, err := json.Marshal(groups)
		if err != nil {
			return fmt.Errorf("redis store: approve: encoding groups: %w", err)
		}
		g = string(b)
	}
	args := s.clock(now, 7)
	args = append(args, nonce, approver, g)
	res, err := approveScript.Run(ctx, s.rdb, []string{s.challengeKey(token)}, args...).Result()
	if err != nil {
		return unavailable("approve", err)
	}
	switch code(res) {
	case codeNotFound:
		return store.ErrNotFound
	case codeExpired:
		return store.ErrExpired
	case codeRefused:
		return store.ErrBadNonce
	case codeDone:
		return nil
	}
	return unexpected("approve", res)
}

// Poll is the poller's atomic step; see store.Store. Only PollSuccess comes
// with a challenge, the one it has just deleted.
func (s *Store) Poll(ctx context.Context, token, ip string, checkIP bool, now time.Time) (store.PollOutcome, *store.Challenge, error) {
	check := "0"
	if checkIP {
		check = "1"
	}
	args := s.clock(now, 6)
	args = append(args, ip, check)
	res, err := pollScript.Run(ctx, s.rdb, []string{s.challengeKey(token)}, args...).Result()
	if err != nil {
		return store.PollUnknown, nil, unavailable("poll", err)
	}
	if fields, ok := res.([]any); ok {
		c, err := decodeFields(token, fields)
		if err != nil {
			return store.PollUnknown, nil, err
		}
		return store.PollSuccess, c, nil
	}
	switch code(res) {
	case codeNotFound:
		return store.PollUnknown, nil, nil
	case codeExpired:
		return store.PollExpired, nil, nil
	case codeRefused:
		return store.PollUnauthorized, nil, nil
	case codeDone:
		return store.PollPending, nil, nil
	}
	return store.PollUnknown, nil, unexpected("poll", res)
}

// loginRecord is the JSON stored for a SAML login.
type loginRecord struct {
	RequestID  string    `json:"r"`
	ReturnPath string    `json:"p"`
	Created    time.Time `json:"c"`
	Expires    time.Time `json:"e"`
}

// SaveLogin stores l under id until expires, replacing any login saved under
// the same id. The key's time to live is counted from l.Created, or from the
// wall clock when that is zero.
func (s *Store) SaveLogin(ctx context.Context, id string, l *store.LoginState, expires time.Time) error {
	if l == nil {
		return errors.New("redis store: save login: nil login state")
	}
	b, err := json.Marshal(loginRecord{l.RequestID, l.ReturnPath, l.Created, expires})
	if err != nil {
		return fmt.Errorf("redis store: save login: %w", err)
	}
	from := l.Created
	if from.IsZero() {
		from = time.Now()
	}
	ttl := time.Duration(ttlMillis(expires.Sub(from))) * time.Millisecond
	if err := s.rdb.Set(ctx, s.prefix+"l:"+id, b, ttl).Err(); err != nil {
		return unavailable("save login", err)
	}
	return nil
}

// TakeLogin returns and deletes the login saved under id; it answers
// store.ErrNotFound when there is none or when it expired before now.
func (s *Store) TakeLogin(ctx context.Context, id string, now time.Time) (*store.LoginState, error) {
	v, err := takeScript.Run(ctx, s.rdb, []string{s.prefix + "l:" + id}).Text()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, store.ErrNotFound
	case err != nil:
		return nil, unavailable("take login", err)
	}
	var r loginRecord
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return nil, fmt.Errorf("redis store: take login: %w: corrupt login state: %w", store.ErrUnavailable, err)
	}
	if now.After(r.Expires) {
		return nil, store.ErrNotFound
	}
	return &store.LoginState{RequestID: r.RequestID, ReturnPath: r.ReturnPath, Created: r.Created}, nil
}

// MarkOnce records key until expires (by the wall clock) and reports whether
// it was new. A repeated key keeps the later of its two expiries; a key whose
// expires is already past is reported new when it is not recorded, and is
// not recorded.
func (s *Store) MarkOnce(ctx context.Context, key string, expires time.Time) (bool, error) {
	ms := int64(0)
	if d := time.Until(expires); d > 0 {
		ms = ttlMillis(d)
	}
	n, err := markScript.Run(ctx, s.rdb, []string{s.prefix + "o:" + key}, ms).Int64()
	if err != nil {
		return false, unavailable("mark once", err)
	}
	return n == 1, nil
}

func (s *Store) challengeKey(token string) string { return s.prefix + "c:" + token }

// clock returns the scripts' first arguments: now, and now minus the grace,
// with room for extra more.
func (s *Store) clock(now time.Time, extra int) []any {
	nm, nn := splitTime(now)
	dm, dn := splitTime(now.Add(-s.grace))
	args := make([]any, 4, 4+extra)
	args[0], args[1], args[2], args[3] = nm, nn, dm, dn
	return args
}

// splitTime returns t as Unix milliseconds (rounded down) and the
// nanoseconds below them, which order times exactly when compared in turn.
func splitTime(t time.Time) (ms, ns int64) {
	return t.UnixMilli(), int64(t.Nanosecond() % int(time.Millisecond))
}

// joinTime is the inverse of splitTime.
func joinTime(ms, ns int64) time.Time {
	return time.UnixMilli(ms).Add(time.Duration(ns))
}

// ttlMillis is d in whole milliseconds, rounded up, at least 1 and at most
// maxTTL, as PEXPIRE accepts it.
func ttlMillis(d time.Duration) int64 {
	d = min(max(d, time.Millisecond), maxTTL)
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// code reads a script's status code.
func code(res any) int64 {
	if n, ok := res.(int64); ok {
		return n
	}
	return -1
}

func unavailable(op string, err error) error {
	return fmt.Errorf("redis store: %s: %w: %w", op, store.ErrUnavailable, err)
}

func unexpected(op string, res any) error {
	return fmt.Errorf("redis store: %s: %w: unexpected reply %T", op, store.ErrUnavailable, res)
}

// decodeFields decodes a challenge from a script's flat field/value list.
func decodeFields(token string, fields []any) (*store.Challenge, error) {
	var d decoder
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		d.set(k, v)
	}
	return d.challenge(token)
}

// decoder collects the fields of a challenge hash.
type decoder struct {
	c              store.Challenge
	cm, cn, em, en int64
	groups         string
	err            error
}

func (d *decoder) set(k, v string) {
	switch k {
	case "u":
		d.c.User = v
	case "ip":
		d.c.IP = v
	case "s":
		d.c.Status = store.Status(v)
	case "v":
		d.c.Viewed = v == "1"
	case "n":
		d.c.Nonce = v
	case "a":
		d.c.Approver = v
	case "g":
		d.groups = v
	case "c":
		d.cm = d.int(k, v)
	case "cn":
		d.cn = d.int(k, v)
	case "e":
		d.em = d.int(k, v)
	case "en":
		d.en = d.int(k, v)
	}
}

func (d *decoder) int(k, v string) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil && d.err == nil {
		d.err = fmt.Errorf("field %s: %w", k, err)
	}
	return n
}

func (d *decoder) challenge(token string) (*store.Challenge, error) {
	if d.groups != "" && d.err == nil {
		if err := json.Unmarshal([]byte(d.groups), &d.c.Groups); err != nil {
			d.err = fmt.Errorf("field g: %w", err)
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("redis store: %w: corrupt challenge: %w", store.ErrUnavailable, d.err)
	}
	c := d.c
	c.Token = token
	c.Created = joinTime(d.cm, d.cn)
	c.Expires = joinTime(d.em, d.en)
	return &c, nil
}
