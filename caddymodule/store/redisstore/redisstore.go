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
// does; the keys' times to live only collect what nobody asks for any more.
// Redis 5.0 or later (or Valkey) is needed: the poll script reads INFO
// before it writes, which needs scripts to replicate their effects.
//
// Any failure to reach or use Redis comes back as an error wrapping
// store.ErrUnavailable, after at most about the configured timeouts.
//
// The package is split by concern: options.go configures and connects,
// keys.go lays out the keys, challenge.go and login.go are the store's
// methods, scripts.go and login_scripts.go their Lua scripts, encoding.go
// the conversion of fields and times, batch.go the pipelining of creates,
// connect.go the kinds of deployment (one server, Sentinel, Cluster),
// redirect.go a cluster's redirections, and ack.go the replicas'
// acknowledgement of a claimed success.
package redisstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// Store is a store.Store in Redis. It is safe for concurrent use, and any
// number of Stores (in one or several processes) may share one server and
// key prefix.
type Store struct {
	rdb        redis.UniversalClient
	pin        func(ctx context.Context, key string) (*redis.Conn, error)
	nodes      *nodes // a cluster's, to follow redirections; nil otherwise
	keys       keys
	grace      time.Duration
	perClient  int
	acks       int // Options.ReplicaAcks
	ackTimeout time.Duration
	// callTimeout bounds one call: dial, write and read.
	callTimeout time.Duration
	creates     *batcher

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

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

// Status codes the scripts answer with.
const (
	codeNotFound = iota
	codeExpired
	codeRefused // Poll: other IP; View: already viewed; Approve: bad nonce; SaveLogin: client busy
	codeDone    // Poll: pending; Approve, Cancel, SaveLogin: done
	codeAlreadyApproved
)

// code reads a script's status code.
func code(res any) int64 {
	if n, ok := res.(int64); ok {
		return n
	}
	return -1
}

// unavailable wraps a failure to use Redis in op.
func unavailable(op string, err error) error {
	return fmt.Errorf("redis store: %s: %w: %w", op, store.ErrUnavailable, err)
}

// unexpected reports a script reply that none of the store's scripts gives.
func unexpected(op string, res any) error {
	return fmt.Errorf("redis store: %s: %w: unexpected reply %T", op, store.ErrUnavailable, res)
}

// outOfMemory reports whether err is Redis refusing a write for lack of
// memory.
func outOfMemory(err error) bool { return err != nil && redis.HasErrorPrefix(err, "OOM") }
