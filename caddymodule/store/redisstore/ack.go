package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// A success must be handed out once, also across a failover. Redis
// replicates asynchronously: a poll that deleted a success on the primary
// and answered at once could leave the success on a replica, and the
// replica, once promoted, would hand it out again. So, when replicas are to
// acknowledge (Options.ReplicaAcks), Poll takes a success in three steps,
// all on one connection to the primary that holds the challenge:
//
//  1. pollScript claims it: the status becomes "claimed" with a random
//     claim id, which every script treats as missing (another poll answers
//     "unknown", as for a collected challenge), and returns it;
//  2. WAIT until the replicas to wait for have acknowledged the claim, at
//     most ReplicaAckTimeout;
//  3. acknowledged: finishScript deletes the challenge and Poll hands it
//     out. Not acknowledged in time (or the connection failed): Poll hands
//     nothing out and fails with store.ErrUnavailable, and releaseScript
//     turns the claim back into a success, so that a later poll, after the
//     replicas catch up or after a failover, can take it.
//
// What is guaranteed: a success is handed out only after the replicas
// waited for hold its claim, so a replica that acknowledged never hands it
// out again when promoted, and a success is handed out at most once as long
// as the replica promoted is one that acknowledged. The automatic mode
// waits for every replica connected to the primary at the claim. Not
// guaranteed by it: a replica disconnected at the claim (a primary cut off
// from its replicas by a partition, a replica restarting) and promoted
// later without having caught up may still hold the success; setting
// ReplicaAcks to the number of replicas closes that gap, at the price of no
// success being handed out while any replica is down. A success whose claim
// reached a replica but whose acknowledgement or release did not get back
// before a failover, or whose Caddy stopped in between, is lost (the user
// approves again), never handed out twice. WAIT is not a consensus: a
// replica acknowledges having received the claim, which survives the
// replica's restart only with its persistence.
func (s *Store) pollAcked(ctx context.Context, token, key string, args []any) (store.PollOutcome, *store.Challenge, error) {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	conn, err := s.pin(ctx, key)
	if err != nil {
		return store.PollUnknown, nil, unavailable("poll", err)
	}
	defer conn.Close()
	keys := []string{key}
	res, err := pollScript.Run(ctx, conn, keys, append(args, s.acks, id)...).Result()
	if err != nil {
		s.relearn(ctx, err)
		return store.PollUnknown, nil, unavailable("poll", err)
	}
	out, c, need, err := pollOutcome(token, res)
	if err != nil || need == 0 {
		return out, c, err
	}
	acked, werr := conn.Wait(ctx, need, s.ackTimeout).Result()
	// The claim is settled even when the poller has gone.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.callTimeout)
	defer cancel()
	if werr != nil || acked < int64(need) {
		rerr := releaseScript.Run(sctx, conn, keys, id).Err()
		msg := fmt.Sprintf("%d of %d replicas acknowledged the claim within %s", acked, need, s.ackTimeout)
		switch {
		case werr != nil:
			msg = "waiting for the replicas: " + werr.Error()
		case rerr != nil:
			msg += "; releasing it: " + rerr.Error()
		default:
			msg += "; the success is kept for a later poll"
		}
		return store.PollUnknown, nil, fmt.Errorf("redis store: poll: %w: %s", store.ErrUnavailable, msg)
	}
	// A claimed challenge left behind answers as collected, and expires.
	_ = finishScript.Run(sctx, conn, keys, id).Err()
	return store.PollSuccess, c, nil
}

// relearn has a cluster client learn the cluster's layout again when a
// pinned connection got no answer or was told that the key moved (see
// layoutHook, which sees only the calls made through the client itself).
func (s *Store) relearn(ctx context.Context, err error) {
	cc, _ := s.rdb.(*redis.ClusterClient)
	relearn(ctx, cc, err)
}
