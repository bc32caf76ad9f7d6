package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// SaveLogin stores l under id until expires, replacing any login saved under
// the same id; the key's time to live is counted from now. When the store
// bounds logins per client, it answers store.ErrClientBusy when l.Client
// already holds MaxLoginsPerClient live logins (the one replaced aside). It
// answers store.ErrFull when Redis is out of memory.
func (s *Store) SaveLogin(ctx context.Context, id string, l *store.LoginState, expires, now time.Time) error {
	if l == nil {
		return errors.New("redis store: save login: nil login state")
	}
	keys := []string{s.keys.login(id)}
	if s.perClient > 0 && l.Client != "" {
		keys = append(keys, s.keys.client(l.Client))
	}
	args := make([]any, 0, 13)
	args = timeArgs(args, now)
	args = timeArgs(args, expires)
	args = append(args, ttlMillis(expires.Sub(now)), s.perClient, id, s.keys.clientLogins(),
		l.Client, l.RequestID, l.ReturnPath)
	args = timeArgs(args, l.Created)
	res, err := saveLoginScript.Run(ctx, s.rdb, keys, args...).Result()
	switch {
	case outOfMemory(err):
		return fmt.Errorf("redis store: save login: %w: redis is out of memory", store.ErrFull)
	case err != nil:
		return unavailable("save login", err)
	}
	switch code(res) {
	case codeRefused:
		return store.ErrClientBusy
	case codeDone:
		return nil
	}
	return unexpected("save login", res)
}

// TakeLogin returns and deletes the login saved under id; it answers
// store.ErrNotFound when there is none or when it expired before now.
func (s *Store) TakeLogin(ctx context.Context, id string, now time.Time) (*store.LoginState, error) {
	res, err := takeLoginScript.Run(ctx, s.rdb, []string{s.keys.login(id)}, s.keys.clientLogins(), id).Result()
	if err != nil {
		return nil, unavailable("take login", err)
	}
	fields, ok := res.([]any)
	if !ok {
		if code(res) == codeNotFound {
			return nil, store.ErrNotFound
		}
		return nil, unexpected("take login", res)
	}
	l, expires, err := decodeLogin(fieldMap(fields))
	if err != nil {
		return nil, err
	}
	if now.After(expires) {
		return nil, store.ErrNotFound
	}
	return l, nil
}

// MarkOnce records key until expires and reports whether it was new, that
// is not recorded with an expiry at or after now. A repeated key keeps the
// later of its two expiries; a key whose expires is already past is
// reported new when it is not recorded, and is not recorded.
func (s *Store) MarkOnce(ctx context.Context, key string, expires, now time.Time) (bool, error) {
	args := make([]any, 0, 5)
	args = timeArgs(args, now)
	args = timeArgs(args, expires)
	args = append(args, ttlMillis(expires.Sub(now)))
	n, err := markScript.Run(ctx, s.rdb, []string{s.keys.mark(key)}, args...).Int64()
	if err != nil {
		return false, unavailable("mark once", err)
	}
	return n == 1, nil
}
