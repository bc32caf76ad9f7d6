package redisstore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/redisstore/redistest"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/storetest"
)

// TestConformanceCluster runs the suite against a real three-master Redis
// Cluster: every script's keys meet in one slot, or Redis would refuse it.
// A site's challenges spread over the masters; its logins share one slot.
// Last, a master is frozen (without replicas, nothing fails over).
func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	storetest.Run(t, storetest.Config{MaxLoginsPerClient: 3}, func(t *testing.T) store.Store {
		return mustNew(t, Options{ClusterAddrs: cl.Addrs, KeyPrefix: uniquePrefix(), MaxLoginsPerClient: 3})
	})

	s := newStore(t, Options{ClusterAddrs: cl.Addrs, KeyPrefix: uniquePrefix(), MaxLoginsPerClient: 3})
	now := time.Now()
	for range 30 {
		if err := s.Create(t.Context(), testChallenge(now), now); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	for i, id := range []string{"a", "b", "c", "d", "e", "f"} {
		l := &store.LoginState{RequestID: id, Created: now, Client: []string{"192.0.2.1", "192.0.2.2"}[i%2]}
		if err := s.SaveLogin(t.Context(), id, l, now.Add(time.Minute), now); err != nil {
			t.Fatalf("SaveLogin: %v", err)
		}
	}
	var holding, withLogins int
	for _, n := range cl.Nodes {
		rc := n.Client(t)
		if k, _ := rc.Keys(t.Context(), s.keys.challenge("*")).Result(); len(k) > 0 {
			holding++
		}
		if k, _ := rc.Keys(t.Context(), s.keys.group+"*").Result(); len(k) > 0 {
			withLogins++
			if len(k) != 8 {
				t.Errorf("node %s holds %d login keys, want all 8 (6 logins, 2 clients): %v", n.Addr, len(k), k)
			}
		}
	}
	if holding < 2 || withLogins != 1 {
		t.Errorf("challenges on %d masters (want them spread), logins on %d (want one)", holding, withLogins)
	}

	// Whatever the prefix holds, a login and its client's set meet in one
	// slot; prefixes without a tag of their own get slots of their own.
	rc := cl.Nodes[0].Client(t)
	slot := func(key string) int64 {
		n, err := rc.ClusterKeySlot(t.Context(), key).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT: %v", err)
		}
		return n
	}
	slots := map[int64]string{}
	for _, prefix := range []string{"consoleme_auth:0123456789abcdef:", "consoleme_auth:fedcba9876543210:",
		"a:", "app:{eu}:", "odd{x:", "}{:", "a}{"} {
		k := newKeys(prefix)
		if a, b := slot(k.login("id-1")), slot(k.client("192.0.2.1")); a != b {
			t.Errorf("prefix %q: login in slot %d, its client's set in %d", prefix, a, b)
		}
		if prefix == "app:{eu}:" {
			if a, b := slot(k.login("id-1")), slot(k.challenge("t")); a != b {
				t.Errorf("prefix %q: its own hash tag is not used (%d, %d)", prefix, a, b)
			}
			continue
		}
		if other, ok := slots[slot(k.login("x"))]; ok {
			t.Errorf("prefixes %q and %q share the logins' slot", prefix, other)
		}
		slots[slot(k.login("x"))] = prefix
	}

	t.Run("hung-master", func(t *testing.T) { clusterHungMaster(t, cl) })
}

// TestConformanceSentinel runs the suite through Sentinel against a primary
// with a replica, so that every success goes through the replica's
// acknowledgement.
func TestConformanceSentinel(t *testing.T) {
	primary := redistest.StartServer(t)
	redistest.StartReplica(t, primary)
	sent := redistest.StartSentinels(t, primary, 1, 3, time.Second)
	storetest.Run(t, storetest.Config{MaxLoginsPerClient: 20}, func(t *testing.T) store.Store {
		return mustNew(t, Options{MasterName: redistest.MasterName, SentinelAddrs: sent.Addrs,
			KeyPrefix: uniquePrefix(), MaxLoginsPerClient: 20})
	})
	stats, err := primary.Client(t).Info(t.Context(), "commandstats").Result()
	if err != nil || !strings.Contains(stats, "cmdstat_wait:calls=") {
		t.Errorf("no WAIT ran on the primary (%v): the successes were not acknowledged", err)
	}
}

// TestReplicaAckKeepsSuccessOnce cuts a replica off the primary (as a
// partition would) and promotes it by hand. Waiting for its acknowledgement
// keeps the primary from handing out a success the replica still holds, so
// the success is handed out once, by the promoted replica; without the
// wait, the same steps hand it out twice. A success whose claim the replica
// acknowledged is gone on the replica too.
func TestReplicaAckKeepsSuccessOnce(t *testing.T) {
	for _, acks := range []int{1, ReplicaAcksOff} {
		primary := redistest.StartServer(t)
		replica := redistest.StartReplica(t, primary)
		prefix := uniquePrefix()
		onPrimary := newStore(t, Options{URL: "redis://" + primary.Addr, KeyPrefix: prefix,
			ReplicaAcks: acks, ReplicaAckTimeout: 2 * time.Second})
		ctx := t.Context()
		now := time.Now()
		collected, kept := testChallenge(now), testChallenge(now)
		for _, c := range []*store.Challenge{collected, kept} {
			if err := onPrimary.Create(ctx, c, now); err != nil {
				t.Fatalf("Create: %v", err)
			}
			approve(t, onPrimary, c, now)
		}
		if acks == 1 {
			// Acknowledged: the replica drops it too.
			if out, _, err := onPrimary.Poll(ctx, collected.Token, collected.IP, true, now); out != store.PollSuccess || err != nil {
				t.Fatalf("Poll with the replica connected: %v, %v", out, err)
			}
		}
		// The replica has everything so far: a write acknowledged by it
		// comes after them in the replication stream.
		pc := primary.Client(t)
		if err := pc.Set(ctx, prefix+"sync", "1", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if n, err := pc.Wait(ctx, 1, 5*time.Second).Result(); n != 1 || err != nil {
			t.Fatalf("WAIT: %d, %v", n, err)
		}
		rc := replica.Client(t)
		if err := rc.ReplicaOf(ctx, "NO", "ONE").Err(); err != nil {
			t.Fatalf("promoting the replica: %v", err)
		}
		onReplica := newStore(t, Options{URL: "redis://" + replica.Addr, KeyPrefix: prefix})
		if acks == 1 {
			if out, _, err := onReplica.Poll(ctx, collected.Token, collected.IP, true, now); out != store.PollUnknown || err != nil {
				t.Errorf("the promoted replica answers %v, %v for a success collected with its acknowledgement", out, err)
			}
		}

		successes := 0
		for range 2 {
			out, c, err := onPrimary.Poll(ctx, kept.Token, kept.IP, true, now)
			switch {
			case out == store.PollSuccess && c != nil:
				successes++
			case acks == 1 && !errors.Is(err, store.ErrUnavailable):
				t.Errorf("Poll on the cut-off primary: %v, %v; want ErrUnavailable", out, err)
			}
		}
		if acks == 1 {
			if s, _ := pc.HGet(ctx, onPrimary.keys.challenge(kept.Token), "s").Result(); s != "success" {
				t.Errorf("the unacknowledged claim left status %q on the primary, want success for a later poll", s)
			}
		}
		if out, _, err := onReplica.Poll(ctx, kept.Token, kept.IP, true, now); out == store.PollSuccess {
			successes++
		} else if err != nil {
			t.Fatalf("Poll on the promoted replica: %v", err)
		}
		switch {
		case acks == 1 && successes != 1:
			t.Errorf("with the acknowledgement the success was handed out %d times, want once", successes)
		case acks == ReplicaAcksOff && successes != 2:
			t.Errorf("without the acknowledgement the success was handed out %d times; the test no longer shows the double", successes)
		}
	}
}
