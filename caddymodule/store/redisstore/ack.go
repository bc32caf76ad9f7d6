package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// A success must be handed out once, also across a failover, and should
// not be lost to one. Redis replicates asynchronously: a poll that deleted
// a success on the primary and answered at once could leave the success on
// a replica, and the replica, once promoted, would hand it out again. So,
// when replicas are to acknowledge (Options.ReplicaAcks), Poll takes a
// success in steps, all on one connection to the primary that holds the
// challenge:
//
//  1. pollScript claims it: the status becomes "claimed" with a random
//     claim id and the time of the claim, and the challenge is returned;
//     for a while (staleClaim) every other poll answers "unknown", as for
//     a collected challenge;
//  2. WAIT until the replicas to wait for have acknowledged the claim, at
//     most ReplicaAckTimeout. Not acknowledged in time (or the connection
//     failed): Poll hands nothing out, fails with store.ErrUnavailable and
//     releaseScript gives the success back for a later poll;
//  3. takeScript marks the claim "taken" (unless it was taken over
//     meanwhile, see below), and a second WAIT waits for the replicas to
//     acknowledge that. Acknowledged: Poll hands it out. Not
//     acknowledged: Poll hands nothing out, fails with
//     store.ErrUnavailable, and releaseScript gives the success back.
//
// A success is handed out only after the replicas waited for hold it as
// taken, which every script treats as missing, so a replica that
// acknowledged never hands it out again when promoted. A claim left on a
// server, on the primary or on a promoted replica (its give-back never came:
// the primary died between the claim and the give-back, or its Caddy
// stopped), therefore was not handed out, provided the replica promoted is
// one that was waited for: had it been handed out, that replica would hold
// it as taken. Once older than staleClaim, the time a poll needs for its
// claim and taking, such a claim is taken over by the next poll as a
// success. Its own poll can then no longer take it (takeScript checks the
// claim id), also if it is only late; so no success is handed out twice,
// and a replica frozen while its primary crashes loses no claimed success.
// The first WAIT is what keeps a success from being taken while a replica
// cannot acknowledge.
//
// The automatic mode waits for every replica connected to the primary at
// the claim. Not guaranteed by it: a replica disconnected at the claim (a
// primary cut off from its replicas by a partition, a replica restarting)
// and promoted later without having caught up may still hold the success;
// setting ReplicaAcks to the number of replicas closes that gap, at the
// price of no success being handed out while any replica is down. Still
// lost, never handed out twice: a success whose taking reached a replica
// but whose acknowledgement or give-back did not get back before a
// failover (the replica stalled after acknowledging the claim and before
// acknowledging its taking, a window of one round trip), or whose Caddy
// stopped between the taking and the give-back. WAIT is not a consensus: a
// replica acknowledges having received the writes, which survive the
// replica's restart only with its persistence.
//
// The cost on the poll that collects a success: four round trips (claim,
// WAIT, take, WAIT) where one does without acknowledgements, and the
// replication delay twice. A taken challenge is not deleted after the
// answer: it expires soon (takeScript), which saves a round trip.
func (s *Store) pollAcked(ctx context.Context, token, key string, args []any, now time.Time) (store.PollOutcome, *store.Challenge, error) {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	conn, err := s.pin(ctx, key)
	if err != nil {
		return store.PollUnknown, nil, unavailable("poll", err)
	}
	p := &pinned{conn: conn, nodes: s.nodes}
	defer p.close()
	keys := []string{key}
	res, err := p.run(ctx, pollScript, keys, append(args, s.acks, id, s.staleClaim())...).Result()
	if err != nil {
		s.relearn(ctx, err)
		return store.PollUnknown, nil, unavailable("poll", err)
	}
	out, c, need, err := pollOutcome(token, res)
	if err != nil || need == 0 {
		return out, c, err
	}
	// The claim is settled even when the poller has gone.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*(s.ackTimeout+s.callTimeout))
	defer cancel()
	giveBack := func(what string) error {
		ttl := ttlMillis(c.Expires.Add(s.grace).Sub(now))
		if rerr := p.run(sctx, releaseScript, keys, id, ttl).Err(); rerr != nil {
			what += "; giving it back: " + rerr.Error()
		} else {
			what += "; the success is kept for a later poll"
		}
		return fmt.Errorf("redis store: poll: %w: %s", store.ErrUnavailable, what)
	}
	acked, werr := p.conn.Wait(sctx, need, s.ackTimeout).Result()
	switch {
	case werr != nil:
		return store.PollUnknown, nil, giveBack("waiting for the replicas: " + werr.Error())
	case acked < int64(need):
		return store.PollUnknown, nil, giveBack(fmt.Sprintf("%d of %d replicas acknowledged the claim within %s", acked, need, s.ackTimeout))
	}
	taken, acked, err := s.take(sctx, p, key, id, need)
	switch {
	case err != nil:
		return store.PollUnknown, nil, giveBack("taking the claimed success: " + err.Error())
	case !taken:
		// Taken over by a later poll, which hands it out (or gives it back).
		return store.PollUnknown, nil, nil
	case acked < int64(need):
		return store.PollUnknown, nil, giveBack(fmt.Sprintf("%d of %d replicas acknowledged the taking within %s", acked, need, s.ackTimeout))
	}
	return store.PollSuccess, c, nil
}

// take runs takeScript for the claim id on p, then WAITs for need
// replicas to acknowledge it. It reports whether the claim was still this
// poll's, and how many replicas acknowledged. (The WAIT is not pipelined
// with the script: a pipeline's replies are read within ReadTimeout, which
// ReplicaAckTimeout may exceed.)
func (s *Store) take(ctx context.Context, p *pinned, key, id string, need int) (bool, int64, error) {
	hold := (s.ackTimeout + 2*s.callTimeout + time.Second).Milliseconds()
	n, err := p.run(ctx, takeScript, []string{key}, id, hold).Int64()
	if err != nil || n == 0 {
		return false, 0, err
	}
	acked, err := p.conn.Wait(ctx, need, s.ackTimeout).Result()
	return true, acked, err
}

// staleClaim is how old a claim must be before a later poll takes it over:
// by then, its own poll has taken it or given it up (see pollAcked).
func (s *Store) staleClaim() int64 {
	return (s.ackTimeout + s.callTimeout).Milliseconds()
}

// relearn has a cluster client learn the cluster's layout again when a
// pinned connection got no answer or was told that the key moved (see
// layoutHook, which sees only the calls made through the client itself).
func (s *Store) relearn(ctx context.Context, err error) {
	cc, _ := s.rdb.(*redis.ClusterClient)
	relearn(ctx, cc, err)
}
