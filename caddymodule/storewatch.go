package consolemeauth

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// watchedStore logs a store outage once when it starts and once when it
// ends, instead of once per request.
type watchedStore struct {
	store.Store
	logger *zap.Logger
	down   atomic.Bool
}

func watchStore(s store.Store, logger *zap.Logger) store.Store {
	return &watchedStore{Store: s, logger: logger}
}

// note records the outcome of a store call.
func (w *watchedStore) note(err error) {
	switch {
	case errors.Is(err, store.ErrUnavailable):
		if w.down.CompareAndSwap(false, true) {
			w.logger.Warn("challenge store unavailable; challenge routes answer 503 until it recovers", zap.Error(err))
		}
	case w.down.Load():
		if w.down.CompareAndSwap(true, false) {
			w.logger.Info("challenge store recovered")
		}
	}
}

func (w *watchedStore) Create(ctx context.Context, c *store.Challenge, now time.Time) error {
	err := w.Store.Create(ctx, c, now)
	w.note(err)
	return err
}

func (w *watchedStore) Get(ctx context.Context, token string, now time.Time) (*store.Challenge, error) {
	c, err := w.Store.Get(ctx, token, now)
	w.note(err)
	return c, err
}

func (w *watchedStore) View(ctx context.Context, token, nonce string, now time.Time) (*store.Challenge, error) {
	c, err := w.Store.View(ctx, token, nonce, now)
	w.note(err)
	return c, err
}

func (w *watchedStore) Approve(ctx context.Context, token, nonce string, a store.Approval, now time.Time) error {
	err := w.Store.Approve(ctx, token, nonce, a, now)
	w.note(err)
	return err
}

func (w *watchedStore) Cancel(ctx context.Context, token string, now time.Time) error {
	err := w.Store.Cancel(ctx, token, now)
	w.note(err)
	return err
}

func (w *watchedStore) Poll(ctx context.Context, token, ip string, checkIP bool, now time.Time) (store.PollOutcome, *store.Challenge, error) {
	o, c, err := w.Store.Poll(ctx, token, ip, checkIP, now)
	w.note(err)
	return o, c, err
}

func (w *watchedStore) SaveLogin(ctx context.Context, id string, l *store.LoginState, expires, now time.Time) error {
	err := w.Store.SaveLogin(ctx, id, l, expires, now)
	w.note(err)
	return err
}

func (w *watchedStore) TakeLogin(ctx context.Context, id string, now time.Time) (*store.LoginState, error) {
	l, err := w.Store.TakeLogin(ctx, id, now)
	w.note(err)
	return l, err
}

func (w *watchedStore) MarkOnce(ctx context.Context, key string, expires, now time.Time) (bool, error) {
	ok, err := w.Store.MarkOnce(ctx, key, expires, now)
	w.note(err)
	return ok, err
}

// Interface guards
var _ store.Store = (*watchedStore)(nil)
