package revocation

import (
	"context"
	"sync"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// DefaultReloadEvery is how often a Keeper reloads every revocation even
// when no event says so: it bounds how long a missed event goes unseen.
const DefaultReloadEvery = 30 * time.Second

// Keeper keeps a List current from a SessionStore: every event the store
// sends is applied at once, and the whole set is reloaded when the store
// asks (after each (re)subscription), every ReloadEvery, and after a
// failed reload (every few seconds until one succeeds). During a store
// outage the List keeps what it knows.
type Keeper struct {
	Store store.SessionStore
	List  *List
	// ReloadEvery defaults to DefaultReloadEvery.
	ReloadEvery time.Duration
	// OnError, when set, is told of each failed reload.
	OnError func(error)
	// OnReload, when set, is told of each successful reload.
	OnReload func(n int)

	reload chan struct{}
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// Start keeps the list current in the background until Stop: the first
// load starts at once; nothing here waits for the store, so that a store
// that cannot be reached does not hold up a start (the list is shared by
// a site's instances in a process, so a reload of the config keeps it).
func (k *Keeper) Start() {
	if k.ReloadEvery <= 0 {
		k.ReloadEvery = DefaultReloadEvery
	}
	k.reload = make(chan struct{}, 1)
	bg, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	k.ask()
	k.done.Add(2)
	go func() {
		defer k.done.Done()
		k.Store.Watch(bg, func(e store.RevocationEvent) {
			switch {
			case e.Reload():
				k.ask()
			case e.Revoked != nil:
				k.List.Apply(*e.Revoked)
			default:
				k.List.Unblock(e.Unblocked)
			}
		})
	}()
	go func() {
		defer k.done.Done()
		k.loop(bg)
	}()
}

// ask schedules a reload.
func (k *Keeper) ask() {
	select {
	case k.reload <- struct{}{}:
	default:
	}
}

func (k *Keeper) loop(ctx context.Context) {
	tick := time.NewTicker(k.ReloadEvery)
	defer tick.Stop()
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-k.reload:
		case <-retry:
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok := k.load(lctx)
		cancel()
		retry = nil
		if !ok && ctx.Err() == nil {
			retry = time.After(2 * time.Second)
		}
	}
}

// load reloads every revocation; it reports success.
func (k *Keeper) load(ctx context.Context) bool {
	started := time.Now()
	all, err := k.Store.Revocations(ctx, started)
	if err != nil {
		if k.OnError != nil {
			k.OnError(err)
		}
		return false
	}
	k.List.Reload(all, started)
	if k.OnReload != nil {
		k.OnReload(len(all))
	}
	return true
}

// Stop ends the background work and waits for it.
func (k *Keeper) Stop() {
	if k.cancel != nil {
		k.cancel()
		k.done.Wait()
	}
}
