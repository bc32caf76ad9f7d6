package consolemeauth

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// outageSettle is how long a store must answer without a failure before an
// outage is reported over: calls that alternate between failing and
// succeeding (one shard of a cluster down, a flapping link) are one outage,
// not a warning and a recovery per call.
const outageSettle = 10 * time.Second

// watchedStore logs a store outage once when it starts and once when it
// ends, instead of once per request. Its clock is the now of the calls.
type watchedStore struct {
	store.Store
	logger *zap.Logger
	down   atomic.Bool
	// While down: when the outage started, when a call last failed, and
	// how many calls failed.
	since, lastFail atomic.Int64
	failed          atomic.Int64
}

func watchStore(s store.Store, logger *zap.Logger) store.Store {
	return &watchedStore{Store: s, logger: logger}
}

// note records the outcome of a store call made at now. The success path
// costs one atomic load while the store is up.
func (w *watchedStore) note(err error, now time.Time) {
	if errors.Is(err, store.ErrUnavailable) {
		w.lastFail.Store(now.UnixNano())
		w.failed.Add(1)
		if w.down.CompareAndSwap(false, true) {
			w.since.Store(now.UnixNano())
			w.logger.Warn("challenge store unavailable; challenge routes answer 503 until it recovers", zap.Error(err))
		}
		return
	}
	if !w.down.Load() || now.UnixNano()-w.lastFail.Load() < int64(outageSettle) {
		return
	}
	if w.down.CompareAndSwap(true, false) {
		w.logger.Info("challenge store recovered",
			zap.Int64("failed_calls", w.failed.Swap(0)),
			zap.Duration("outage", time.Duration(w.lastFail.Load()-w.since.Load())))
	}
}

func (w *watchedStore) Create(ctx context.Context, c *store.Challenge, now time.Time) error {
	err := w.Store.Create(ctx, c, now)
	w.note(err, now)
	return err
}

func (w *watchedStore) Get(ctx context.Context, token string, now time.Time) (*store.Challenge, error) {
	c, err := w.Store.Get(ctx, token, now)
	w.note(err, now)
	return c, err
}

func (w *watchedStore) View(ctx context.Context, token, nonce string, now time.Time) (*store.Challenge, error) {
	c, err := w.Store.View(ctx, token, nonce, now)
	w.note(err, now)
	return c, err
}

func (w *watchedStore) Approve(ctx context.Context, token, nonce string, a store.Approval, now time.Time) error {
	err := w.Store.Approve(ctx, token, nonce, a, now)
	w.note(err, now)
	return err
}

func (w *watchedStore) Cancel(ctx context.Context, token string, now time.Time) error {
	err := w.Store.Cancel(ctx, token, now)
	w.note(err, now)
	return err
}

func (w *watchedStore) Poll(ctx context.Context, token, ip string, checkIP bool, now time.Time) (store.PollOutcome, *store.Challenge, error) {
	o, c, err := w.Store.Poll(ctx, token, ip, checkIP, now)
	w.note(err, now)
	return o, c, err
}

func (w *watchedStore) SaveLogin(ctx context.Context, id string, l *store.LoginState, expires, now time.Time) error {
	err := w.Store.SaveLogin(ctx, id, l, expires, now)
	w.note(err, now)
	return err
}

func (w *watchedStore) TakeLogin(ctx context.Context, id string, now time.Time) (*store.LoginState, error) {
	l, err := w.Store.TakeLogin(ctx, id, now)
	w.note(err, now)
	return l, err
}

func (w *watchedStore) MarkOnce(ctx context.Context, key string, expires, now time.Time) (bool, error) {
	ok, err := w.Store.MarkOnce(ctx, key, expires, now)
	w.note(err, now)
	return ok, err
}

// Interface guards
var _ store.Store = (*watchedStore)(nil)
