package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// Watch calls fn with the site's revocation events until ctx ends; see
// Sessions. fn runs on the calling goroutine, never after Watch returns.
//
// go-redis's PubSub reconnects and subscribes again by itself after a read
// fails (its reader then gets the new "subscribe" confirmation), but a
// plain read from a server that stopped answering (frozen, or cut off
// without a reset) waits forever. So each subscription here is a PubSub of
// its own, read with a timeout: after a quiet second it pings, and it gives
// the connection up when the pong is as late or on any error, and
// subscribes anew. The server's confirmation of each subscription is what
// brings the reload event: from then on nothing published can be missed.
func (ss *sessions) Watch(ctx context.Context, fn func(store.RevocationEvent)) {
	if ss.err != nil {
		<-ctx.Done()
		return
	}
	wait := minRetryWait
	for ctx.Err() == nil {
		if ss.listen(ctx, fn) {
			wait = minRetryWait
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		wait = min(2*wait, maxRetryWait)
		if cc, ok := ss.rdb.rdb.(*redis.ClusterClient); ok && ctx.Err() == nil {
			// The node may have gone: learn where the slots are now.
			cc.ReloadState(ctx)
		}
	}
}

// listen holds one subscription until it fails or ctx ends, and reports
// whether it was confirmed.
func (ss *sessions) listen(ctx context.Context, fn func(store.RevocationEvent)) (confirmed bool) {
	ps := ss.rdb.rdb.Subscribe(ctx, ss.keys.channel())
	// Closing the PubSub ends a read in progress at once.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer func() {
		stop()
		_ = ps.Close()
	}()
	reload := func() { fn(store.RevocationEvent{}) }
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, ss.pingEvery)
		if ctx.Err() != nil {
			return confirmed
		}
		if err != nil {
			var ne net.Error
			if pinged || !errors.As(err, &ne) || !ne.Timeout() {
				return confirmed
			}
			// Quiet: is anyone there?
			if ps.Ping(ctx) != nil {
				return confirmed
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == ss.keys.channel() {
				confirmed = true
				reload()
			}
		case *redis.Message:
			if e, ok := decodeEvent(m.Payload); ok {
				fn(e)
			} else {
				// Not ours to read (another version?): reload rather
				// than miss something.
				reload()
			}
		}
	}
}

// wireEvent is an event as the scripts publish it (see sessions_scripts.go).
type wireEvent struct {
	Kind      string `json:"kind"`
	Subject   string `json:"subject"`
	At        string `json:"at"`
	AtNs      string `json:"at_ns"`
	Expires   string `json:"expires"`
	ExpiresNs string `json:"expires_ns"`
	Except    string `json:"except"`
	Unblocked string `json:"unblocked"`
}

// decodeEvent reads a published event; ok is false for anything else.
func decodeEvent(payload string) (e store.RevocationEvent, ok bool) {
	var w wireEvent
	if json.Unmarshal([]byte(payload), &w) != nil {
		return e, false
	}
	if w.Unblocked != "" {
		return store.RevocationEvent{Unblocked: w.Unblocked}, w.Kind == ""
	}
	var n [4]int64
	for i, s := range []string{w.At, w.AtNs, w.Expires, w.ExpiresNs} {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return e, false
		}
		n[i] = v
	}
	rv := &store.Revocation{Kind: w.Kind, Subject: w.Subject, At: joinTime(n[0], n[1]), Expires: joinTime(n[2], n[3]),
		Except: w.Except}
	if rv.Validate() != nil {
		return e, false
	}
	return store.RevocationEvent{Revoked: rv}, true
}
