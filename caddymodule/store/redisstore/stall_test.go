package redisstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/redisstore/redistest"
)

// stallOptions are the two instances' settings in the stalled-replica
// tests: short timeouts, so that a failover and the claims left behind by
// it are over within seconds.
func stallOptions(o Options) Options {
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 250*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
	o.ReplicaAckTimeout = 300 * time.Millisecond
	return o
}

// stalledReplicaRound is one round of the fault sequence: approved
// challenges on master, some of them polled from two instances (a and b)
// while master's replica is frozen (SIGSTOP), then master killed (SIGKILL)
// and the replica thawed, so that it is promoted holding whatever the
// pollers' claims left. Nothing may be handed out while the replica cannot
// acknowledge, nothing twice, and every challenge, polled or not, must be
// handed out once after the failover. others are approved challenges on
// other masters (a cluster), polled throughout. place creates and approves
// a challenge on the master under test and reports whether it landed there.
func stalledReplicaRound(t *testing.T, a, b *Store, master, replica *redistest.Server, others []*store.Challenge,
	place func(c *store.Challenge) bool) {
	t.Helper()
	ctx := t.Context()
	var polled, unpolled []*store.Challenge
	for len(polled) < 3 || len(unpolled) < 3 {
		c := testChallenge(time.Now())
		if !place(c) {
			continue
		}
		if len(polled) < 3 {
			polled = append(polled, c)
		} else {
			unpolled = append(unpolled, c)
		}
	}
	redistest.WaitReplicated(t, master, replica)

	resume := replica.Freeze(t)
	stores := []*Store{a, b}
	all := append(append([]*store.Challenge{}, polled...), others...)
	var turn atomic.Int64
	pollers := redistest.StartPollers(4, 10*time.Millisecond, tokensOf(all), func(tok string) bool {
		out, _, _ := stores[turn.Add(1)%2].Poll(context.Background(), tok, testIP, true, time.Now())
		return out == store.PollSuccess
	})
	defer pollers.Stop()
	// Several claims time out and are given back while the replica is
	// frozen.
	time.Sleep(4 * a.ackTimeout)
	for _, c := range polled {
		if n := pollers.Handed(c.Token); n != 0 {
			t.Errorf("challenge %s handed out %d times while its replica could not acknowledge", c.Token, n)
		}
	}
	master.Kill()
	resume()

	// Every challenge of the killed master comes back on the promoted
	// replica: the polled ones through the pollers, the others through
	// one poll each.
	deadline := time.Now().Add(20 * time.Second)
	for _, c := range polled {
		for pollers.Handed(c.Token) == 0 && time.Now().Before(deadline) {
			time.Sleep(25 * time.Millisecond)
		}
	}
	for _, c := range unpolled {
		for {
			out, _, err := b.Poll(ctx, c.Token, testIP, true, time.Now())
			if out == store.PollSuccess {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("unpolled challenge %s: %v, %v 20s after the kill, want it handed out", c.Token, out, err)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond) // the collected ones polled again
	pollers.Stop()
	lost := 0
	for _, c := range all {
		switch n := pollers.Handed(c.Token); {
		case n > 1:
			t.Errorf("challenge %s handed out %d times, want once", c.Token, n)
		case n == 0:
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d polled challenges lost across the failover, want none", lost, len(all))
	}
}

// TestStalledReplicaSentinel runs the fault sequence with Sentinel, three
// rounds, each on a new primary with one replica: the challenges being
// polled when the primary dies are handed out once by the promoted
// replica, none lost.
func TestStalledReplicaSentinel(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint("round-", round), func(t *testing.T) {
			primary := redistest.StartServer(t)
			replica := redistest.StartReplica(t, primary)
			sent := redistest.StartSentinels(t, primary, 1, 3, downAfter)
			opts := stallOptions(Options{MasterName: redistest.MasterName, SentinelAddrs: sent.Addrs, KeyPrefix: uniquePrefix()})
			a, b := newStore(t, opts), newStore(t, opts)
			stalledReplicaRound(t, a, b, primary, replica, nil, func(c *store.Challenge) bool {
				if err := a.Create(t.Context(), c, c.Created); err != nil {
					t.Fatalf("Create: %v", err)
				}
				approve(t, a, c, c.Created)
				return true
			})
		})
	}
}

// TestStalledReplicaCluster runs the fault sequence on a cluster of three
// masters with a replica each, once per master: the challenges on the
// killed master's slots are handed out once by its promoted replica, none
// lost, and those on the other masters once each as well.
func TestStalledReplicaCluster(t *testing.T) {
	cl := redistest.StartClusterReplicas(t, 3, 1)
	opts := stallOptions(Options{ClusterAddrs: cl.Addrs, KeyPrefix: uniquePrefix()})
	a, b := newStore(t, opts), newStore(t, opts)
	for round, victim := range cl.Masters {
		t.Run(fmt.Sprint("round-", round), func(t *testing.T) {
			owner := cl.Layout(t)
			create := func(c *store.Challenge) {
				if err := a.Create(t.Context(), c, c.Created); err != nil {
					t.Fatalf("Create: %v", err)
				}
				approve(t, a, c, c.Created)
			}
			var others []*store.Challenge
			for len(others) < 2 {
				if c := testChallenge(time.Now()); owner(a.keys.challenge(c.Token)) != victim {
					create(c)
					others = append(others, c)
				}
			}
			stalledReplicaRound(t, a, b, victim, cl.Replicas[victim][0], others, func(c *store.Challenge) bool {
				if owner(a.keys.challenge(c.Token)) != victim {
					return false
				}
				create(c)
				return true
			})
		})
	}
}
