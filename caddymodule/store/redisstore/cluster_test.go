package redisstore

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/redisstore/redistest"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/storetest"
)

// clusterNodeTimeout is the cluster-node-timeout of redistest's nodes: a
// master unreachable that long is failed, and its replica takes over.
const clusterNodeTimeout = 2 * time.Second

// TestClusterWithReplicas runs on one Redis Cluster of three masters with
// one replica each, started once for its subtests; the failover, which
// changes the cluster, comes last.
func TestClusterWithReplicas(t *testing.T) {
	cl := redistest.StartClusterReplicas(t, 3, 1)
	rc := cl.Nodes[0].Client(t)
	for _, key := range []string{"a", "consoleme_auth:0123456789abcdef:c:x", "p{tag}l:1", "{}x", "x{}{y}"} {
		if want, err := rc.ClusterKeySlot(t.Context(), key).Result(); err != nil || int(want) != redistest.KeySlot(key) {
			t.Fatalf("KeySlot(%q) = %d, CLUSTER KEYSLOT says %d (%v)", key, redistest.KeySlot(key), want, err)
		}
	}
	t.Run("conformance", func(t *testing.T) { clusterConformance(t, cl) })
	t.Run("replica-ack", func(t *testing.T) { clusterReplicaAck(t, cl) })
	t.Run("failover", func(t *testing.T) { clusterFailover(t, cl) })
}

// clusterConformance runs the suite with every success acknowledged by the
// replica of the master holding it.
func clusterConformance(t *testing.T, cl *redistest.Cluster) {
	before := clusterWaits(t, cl)
	storetest.Run(t, storetest.Config{MaxLoginsPerClient: 20}, func(t *testing.T) store.Store {
		return mustNew(t, Options{ClusterAddrs: cl.Addrs, KeyPrefix: uniquePrefix(), MaxLoginsPerClient: 20})
	})
	if after := clusterWaits(t, cl); after <= before {
		t.Errorf("no WAIT ran on the masters (%d before, %d after): the successes were not acknowledged", before, after)
	}
}

// clusterReplicaAck shows that replica_acks auto waits for the replica of
// the master holding the challenge: with that replica frozen the success is
// not handed out (and is kept); once it answers, the success is handed out
// only after the replica holds the claim.
func clusterReplicaAck(t *testing.T, cl *redistest.Cluster) {
	s := newStore(t, Options{ClusterAddrs: cl.Addrs, KeyPrefix: uniquePrefix(), ReplicaAckTimeout: 300 * time.Millisecond})
	ctx := t.Context()
	now := time.Now()
	c := testChallenge(now)
	if err := s.Create(ctx, c, now); err != nil {
		t.Fatalf("Create: %v", err)
	}
	approve(t, s, c, now)
	key := s.keys.challenge(c.Token)
	master := cl.Owner(t, key)
	replica := cl.Replicas[master][0]
	redistest.WaitReplicated(t, master, replica)
	waits := func() int64 { return commandCalls(t, master, "wait") }
	before := waits()

	resume := replica.Freeze(t)
	out, _, err := s.Poll(ctx, c.Token, c.IP, true, now)
	resume()
	if out == store.PollSuccess || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Poll with the slot's replica frozen: %v, %v; want ErrUnavailable", out, err)
	}
	mc := master.Client(t)
	if st, _ := mc.HGet(ctx, key, "s").Result(); st != "success" {
		t.Errorf("the unacknowledged claim left status %q on the master, want success for a later poll", st)
	}

	redistest.WaitReplicated(t, master, replica)
	out, got, err := s.Poll(ctx, c.Token, c.IP, true, now)
	if out != store.PollSuccess || got == nil || err != nil {
		t.Fatalf("Poll with the replica back: %v, %v", out, err)
	}
	// At once, on the replica: the claim (or the deletion that followed
	// it), never the success.
	conn := replica.Client(t).Conn()
	defer conn.Close()
	if err := conn.ReadOnly(ctx).Err(); err != nil {
		t.Fatalf("READONLY on the replica: %v", err)
	}
	if st, err := conn.HGet(ctx, key, "s").Result(); st == "success" {
		t.Errorf("the replica still holds the success handed out (%v)", err)
	}
	if n := waits(); n < before+2 {
		t.Errorf("%d WAITs on the challenge's master, want at least 2 (one per poll)", n-before)
	}
}

// clusterFailover kills (SIGKILL) the master holding some challenges while
// four pollers collect them. The store serves that master's slots again
// through its promoted replica within the cluster's node timeout plus the
// failover, without a new client; the challenges that reached the replica
// survive, those on the other masters are untouched, and no success is
// handed out twice, although the pollers keep polling the tokens they
// collected.
func clusterFailover(t *testing.T, cl *redistest.Cluster) {
	s := newStore(t, Options{ClusterAddrs: cl.Addrs, KeyPrefix: uniquePrefix(),
		DialTimeout: 250 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
	ctx := t.Context()
	owner := cl.Layout(t)
	victim := cl.Masters[0]
	heir := cl.Replicas[victim][0]

	// Eight challenges on the victim, four of them polled only after the
	// kill (so they must survive it), and eight on the other masters.
	now := time.Now()
	var early, late, others []*store.Challenge
	for len(early)+len(late) < 8 || len(others) < 8 {
		c := testChallenge(now)
		switch {
		case owner(s.keys.challenge(c.Token)) != victim:
			if len(others) == 8 {
				continue
			}
			others = append(others, c)
		case len(early) < 4:
			early = append(early, c)
		case len(late) < 4:
			late = append(late, c)
		default:
			continue
		}
		if err := s.Create(ctx, c, now); err != nil {
			t.Fatalf("Create: %v", err)
		}
		approve(t, s, c, now)
	}
	for _, m := range cl.Masters {
		redistest.WaitReplicated(t, m, cl.Replicas[m][0])
	}

	polled := append(append([]*store.Challenge{}, early...), others...)
	pollers := startPollers(s, polled)
	defer pollers.Stop()
	time.Sleep(30 * time.Millisecond)
	before := pollers.Collected()
	killed := time.Now()
	victim.Kill()
	polled = append(polled, late...)
	pollers.Add(tokensOf(late)...)

	// Served again: a new login on the victim's slots goes through, from
	// the generator to the poller, on the promoted replica.
	recovered := servedAgain(t, s, killed, func(c *store.Challenge) bool {
		return owner(s.keys.challenge(c.Token)) == victim
	})

	// A success whose taking reached the replica but whose acknowledgement
	// did not get back before the kill is lost, not handed out: it is
	// "taken" on the promoted replica. (One only claimed is taken over by
	// a later poll.)
	hc := heir.Client(t)
	lost := func(c *store.Challenge) bool {
		st, _ := hc.HGet(ctx, s.keys.challenge(c.Token), "s").Result()
		return st == "taken"
	}
	redistest.Eventually(t, 10*time.Second, "all challenges collected", func() bool {
		for _, c := range polled {
			if pollers.Handed(c.Token) == 0 && !lost(c) {
				return false
			}
		}
		return true
	})
	time.Sleep(200 * time.Millisecond) // the collected tokens polled again
	pollers.Stop()

	t.Logf("%d of %d collected before the kill; served again %s after it (node timeout %s)",
		before, len(polled), recovered.Round(time.Millisecond), clusterNodeTimeout)
	if limit := clusterNodeTimeout + 9*time.Second; recovered > limit {
		t.Errorf("served again after %s, want within %s", recovered, limit)
	}
	redistest.Eventually(t, 5*time.Second, "the cluster names the replica the new master of the failed one's slots", func() bool {
		return cl.Owner(t, s.keys.challenge(late[0].Token)) == heir
	})
	for _, c := range polled {
		n := pollers.Handed(c.Token)
		switch {
		case n > 1:
			t.Errorf("challenge %s handed out %d times, want once", c.Token, n)
		case n == 0 && (owner(s.keys.challenge(c.Token)) != victim || containsChallenge(late, c)):
			t.Errorf("challenge %s (on %s) was never handed out", c.Token, owner(s.keys.challenge(c.Token)).Addr)
		case n == 0:
			t.Logf("challenge %s: being taken when its master was killed, lost (the user logs in again)", c.Token)
		}
	}
}

// clusterHungMaster freezes (SIGSTOP) the master holding a challenge: a
// call for it fails with ErrUnavailable after one attempt, as with one
// server, rather than being sent again (go-redis's cluster client retries
// a timed-out command up to three times by default, which multiplied the
// time a request waited and ran the script again once the master resumed).
func clusterHungMaster(t *testing.T, cl *redistest.Cluster) {
	s := newStore(t, Options{ClusterAddrs: cl.Addrs, KeyPrefix: uniquePrefix(),
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	var mu sync.Mutex
	tries := 0
	now := time.Now()
	c := testChallenge(now)
	key := s.keys.challenge(c.Token)
	// Every attempt, as the node clients see it (they are made on the
	// first call, after this).
	s.rdb.(*redis.ClusterClient).OnNewNode(func(n *redis.Client) {
		n.AddHook(processHook(func(cmd redis.Cmder) {
			if slices.Contains(cmd.Args(), any(key)) {
				mu.Lock()
				tries++
				mu.Unlock()
			}
		}))
	})
	if err := s.Create(t.Context(), c, now); err != nil {
		t.Fatalf("Create: %v", err)
	}
	resume := cl.Owner(t, key).Freeze(t)
	mu.Lock()
	tries = 0
	mu.Unlock()
	_, err := s.Get(t.Context(), c.Token, now)
	resume()
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get on a hung master: %v, want ErrUnavailable", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if tries != 1 {
		t.Errorf("Get on a hung master was sent %d times, want once", tries)
	}
}

// processHook calls seen with every command a client processes.
type processHook func(redis.Cmder)

func (h processHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h processHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h(cmd); return next(ctx, cmd) }
}
func (h processHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func containsChallenge(cs []*store.Challenge, c *store.Challenge) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

// clusterWaits is the number of WAIT commands the masters have run.
func clusterWaits(t *testing.T, cl *redistest.Cluster) int64 {
	var n int64
	for _, m := range cl.Masters {
		n += commandCalls(t, m, "wait")
	}
	return n
}

// commandCalls is how many times srv has run the command name.
func commandCalls(t *testing.T, srv *redistest.Server, name string) int64 {
	t.Helper()
	stats, err := srv.Client(t).Info(t.Context(), "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO commandstats on %s: %v", srv.Addr, err)
	}
	_, rest, ok := strings.Cut(stats, "cmdstat_"+name+":calls=")
	if !ok {
		return 0
	}
	n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
	return n
}

// BenchmarkPollSuccessCluster is BenchmarkPollSuccess on a cluster of three
// masters with a replica each: the wait is for the replica of the master
// holding the challenge.
func BenchmarkPollSuccessCluster(b *testing.B) {
	cl := redistest.StartClusterReplicas(b, 3, 1)
	benchPollSuccess(b, Options{ClusterAddrs: cl.Addrs})
}
