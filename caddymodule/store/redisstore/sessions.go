package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// Sessions returns the store.SessionStore of one site in this Store's
// Redis, over the Store's connections (closing the Store ends it too). Its
// keys and its pub/sub channel all start with prefix, which is independent
// of Options.KeyPrefix: sessions and revocations stay where they are when
// the challenges' prefix changes. Every Caddy instance of a site must pass
// the same prefix; an empty one stands for DefaultKeyPrefix+"s:". The
// layout is described in sessions_scripts.go; a prefix that defeats it (its
// first "{" followed at once by "}", see keys.go) gives a store whose every
// method fails with that error, and whose Watch only waits for its context.
//
// Watch subscribes to the site's channel and calls its function with a
// reload event each time the subscription is confirmed: at the start, and
// after every reconnection (what was published in between is lost). It
// sends no periodic reload: the watcher reloads on a timer of its own
// (revocation.Keeper does), which covers a message lost otherwise. While
// Redis cannot be reached it tries again, at most 2 seconds apart, each
// attempt bounded by the Store's timeouts.
func (s *Store) Sessions(prefix string) store.SessionStore {
	if prefix == "" {
		prefix = DefaultKeyPrefix + "s:"
	}
	ss := &sessions{rdb: s, keys: newSessionKeys(prefix), pingEvery: defaultPingEvery}
	if err := checkPrefix(prefix); err != nil {
		ss.err = err
	}
	return ss
}

// Watch timing (see Sessions).
const (
	// defaultPingEvery: after this long without a message the watcher
	// pings, and it gives the connection up when the pong is as late.
	defaultPingEvery = time.Second
	maxRetryWait     = 2 * time.Second
	minRetryWait     = 50 * time.Millisecond
)

// sessions is the SessionStore of one prefix.
type sessions struct {
	rdb       *Store
	keys      sessionKeys
	err       error
	pingEvery time.Duration
}

var _ store.SessionStore = (*sessions)(nil)

// sessionKeys lays out the keys of one site's sessions (see
// sessions_scripts.go): every one starts with group, prefix+"{"+tag+"}"
// with tag the first 16 hex digits of the SHA-256 of prefix, as the login
// keys do (keys.go).
type sessionKeys struct{ group string }

func newSessionKeys(prefix string) sessionKeys {
	sum := sha256.Sum256([]byte(prefix))
	return sessionKeys{group: prefix + "{" + hex.EncodeToString(sum[:8]) + "}"}
}

func (k sessionKeys) session(id string) string { return k.sessionPrefix() + id }
func (k sessionKeys) sessionPrefix() string    { return k.group + "s:" }
func (k sessionKeys) user(user string) string  { return k.userPrefix() + user }
func (k sessionKeys) userPrefix() string       { return k.group + "u:" }
func (k sessionKeys) revocations() string      { return k.group + "r" }
func (k sessionKeys) expiries() string         { return k.group + "rx" }
func (k sessionKeys) channel() string          { return k.group + "ev" }

// RecordSession stores s; see store.SessionStore. It answers
// store.ErrFull when Redis is out of memory.
func (ss *sessions) RecordSession(ctx context.Context, s *store.Session, maxPerUser int, now time.Time) error {
	if ss.err != nil {
		return ss.err
	}
	if err := store.CheckSession(s); err != nil {
		return fmt.Errorf("redis store: record session: %w", err)
	}
	args := make([]any, 0, 14)
	args = timeArgs(args, now)
	args = append(args, s.ID, s.User, s.Method, s.IP)
	args = timeArgs(args, s.Created)
	args = timeArgs(args, s.Expires)
	args = append(args, ttlMillis(s.Expires.Sub(now)), max(maxPerUser, 0),
		ss.keys.sessionPrefix(), ss.keys.userPrefix())
	err := recordScript.Run(ctx, ss.rdb.rdb, []string{ss.keys.session(s.ID), ss.keys.user(s.User)}, args...).Err()
	switch {
	case outOfMemory(err):
		return fmt.Errorf("redis store: record session: %w: redis is out of memory", store.ErrFull)
	case err != nil:
		return unavailable("record session", err)
	}
	return nil
}

// ListSessions returns the user's live sessions, newest first.
func (ss *sessions) ListSessions(ctx context.Context, user string, now time.Time) ([]store.Session, error) {
	if ss.err != nil {
		return nil, ss.err
	}
	ms, ns := splitTime(now)
	res, err := listScript.Run(ctx, ss.rdb.rdb, []string{ss.keys.user(user)}, ms, ns, ss.keys.sessionPrefix()).Slice()
	if err != nil {
		return nil, unavailable("list sessions", err)
	}
	out := make([]store.Session, 0, len(res))
	for _, r := range res {
		fields, ok := r.([]any)
		if !ok || len(fields) == 0 {
			return nil, unexpected("list sessions", r)
		}
		id, _ := fields[0].(string)
		f := fieldMap(fields[1:])
		rd := fieldReader{f: f}
		out = append(out, store.Session{ID: id, User: f["u"], Method: f["m"], IP: f["ip"],
			Created: rd.time("c", "cn"), Expires: rd.time("e", "en")})
		if rd.err != nil {
			return nil, fmt.Errorf("redis store: %w: corrupt session: %w", store.ErrUnavailable, rd.err)
		}
	}
	return out, nil
}

// Revoke stores rv, drops the sessions it ends and publishes it, in one
// script; see store.SessionStore.
func (ss *sessions) Revoke(ctx context.Context, rv store.Revocation, now time.Time) error {
	if ss.err != nil {
		return ss.err
	}
	if err := rv.Validate(); err != nil {
		return fmt.Errorf("redis store: revoke: %w", err)
	}
	args := make([]any, 0, 13)
	args = timeArgs(args, now)
	args = append(args, rv.Kind, rv.Subject)
	args = timeArgs(args, rv.At)
	args = timeArgs(args, rv.Expires)
	args = append(args, int64(maxTTL/time.Millisecond), ss.keys.sessionPrefix(), ss.keys.userPrefix(), ss.keys.channel(),
		rv.Except)
	err := revokeScript.Run(ctx, ss.rdb.rdb, []string{ss.keys.revocations(), ss.keys.expiries()}, args...).Err()
	switch {
	case outOfMemory(err):
		return fmt.Errorf("redis store: revoke: %w: redis is out of memory", store.ErrFull)
	case err != nil:
		return unavailable("revoke", err)
	}
	return nil
}

// Unblock removes the user's block and publishes that; see
// store.SessionStore.
func (ss *sessions) Unblock(ctx context.Context, user string, _ time.Time) error {
	if ss.err != nil {
		return ss.err
	}
	if user == "" {
		return errors.New("redis store: unblock: no user")
	}
	b := store.Revocation{Kind: store.RevokeBlock, Subject: user}
	err := unblockScript.Run(ctx, ss.rdb.rdb, []string{ss.keys.revocations(), ss.keys.expiries()},
		b.Key(), ss.keys.channel(), user).Err()
	if err != nil {
		return unavailable("unblock", err)
	}
	return nil
}

// Revocations returns the records unexpired at now.
func (ss *sessions) Revocations(ctx context.Context, now time.Time) ([]store.Revocation, error) {
	if ss.err != nil {
		return nil, ss.err
	}
	all, err := ss.rdb.rdb.HGetAll(ctx, ss.keys.revocations()).Result()
	if err != nil {
		return nil, unavailable("revocations", err)
	}
	out := make([]store.Revocation, 0, len(all))
	for field, value := range all {
		rv, err := decodeRevocation(field, value)
		if err != nil {
			return nil, err
		}
		if rv.Expires.After(now) {
			out = append(out, rv)
		}
	}
	return out, nil
}

// decodeRevocation decodes one field of the revocations hash.
func decodeRevocation(field, value string) (store.Revocation, error) {
	kind, subject, ok := strings.Cut(field, ":")
	parts := strings.SplitN(value, ",", 5)
	var n [4]int64
	for i := 0; ok && i < 4; i++ {
		var err error
		ok = len(parts) == 5
		if ok {
			n[i], err = strconv.ParseInt(parts[i], 10, 64)
			ok = err == nil
		}
	}
	if !ok {
		return store.Revocation{}, fmt.Errorf("redis store: %w: corrupt revocation record", store.ErrUnavailable)
	}
	return store.Revocation{Kind: kind, Subject: subject, At: joinTime(n[0], n[1]), Expires: joinTime(n[2], n[3]),
		Except: parts[4]}, nil
}
