package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name the sentinels StartSentinels starts monitor.
const MasterName = "consoleme"

// Sentinels are redis-sentinel processes watching one primary.
type Sentinels struct {
	Addrs []string
	Procs []*Server
}

// StartSentinels starts n sentinels watching primary with a quorum of
// n/2+1, that consider a server down after downAfter, and waits until each
// knows the others and the primary's replicas.
func StartSentinels(tb testing.TB, primary *Server, replicas, n int, downAfter time.Duration) *Sentinels {
	tb.Helper()
	// redis-server runs as a sentinel with --sentinel, so that only the
	// redis-server package is needed.
	bin := Binary(tb, "redis-server")
	s := &Sentinels{}
	for range n {
		p := start(tb, "redis-sentinel", func(port int, dir string) *exec.Cmd {
			conf := filepath.Join(dir, "sentinel.conf")
			text := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
logfile %s
sentinel monitor %s 127.0.0.1 %d %d
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s 3000
sentinel parallel-syncs %s 1
`, port, dir, filepath.Join(dir, "redis.log"), MasterName, primary.Port, n/2+1,
				MasterName, downAfter.Milliseconds(), MasterName, MasterName)
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				tb.Fatalf("writing sentinel.conf: %v", err)
			}
			return exec.Command(bin, conf, "--sentinel")
		}, false)
		s.Procs = append(s.Procs, p)
		s.Addrs = append(s.Addrs, p.Addr)
	}
	ctx := context.Background()
	for _, p := range s.Procs {
		sc := redis.NewSentinelClient(&redis.Options{Addr: p.Addr})
		tb.Cleanup(func() { _ = sc.Close() })
		Eventually(tb, 20*time.Second, "sentinel "+p.Addr+" sees the others and the replicas", func() bool {
			others, err1 := sc.Sentinels(ctx, MasterName).Result()
			reps, err2 := sc.Replicas(ctx, MasterName).Result()
			return err1 == nil && err2 == nil && len(others) == n-1 && len(reps) == replicas
		})
	}
	return s
}

// Primary is the address of the primary the sentinels agree on now.
func (s *Sentinels) Primary(ctx context.Context) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addrs[0]})
	defer sc.Close()
	a, err := sc.GetMasterAddrByName(ctx, MasterName).Result()
	if err != nil {
		return "", err
	}
	return strings.Join(a, ":"), nil
}

// Cluster is a Redis Cluster on loopback.
type Cluster struct {
	Addrs []string  // every node's address, masters first
	Nodes []*Server // masters first, then replicas
	// Masters are the nodes started as masters, and Replicas[m] the
	// replicas redis-cli gave to Masters[m] (none without replicas).
	// A failover changes the roles, not these lists.
	Masters  []*Server
	Replicas map[*Server][]*Server
}

// StartCluster starts masters cluster nodes, joins them with redis-cli
// --cluster create, and waits until every node reports the cluster ok.
func StartCluster(tb testing.TB, masters int) *Cluster {
	tb.Helper()
	return StartClusterReplicas(tb, masters, 0)
}

// StartClusterReplicas starts masters cluster nodes and replicas replicas
// of each, joins them with redis-cli --cluster create --cluster-replicas,
// and waits until every node reports the cluster ok and knows every other,
// and every replica is in sync with its master.
func StartClusterReplicas(tb testing.TB, masters, replicas int) *Cluster {
	tb.Helper()
	cli := Binary(tb, "redis-cli")
	c := &Cluster{Replicas: map[*Server][]*Server{}}
	total := masters * (1 + replicas)
	for range total {
		n := startNode(tb)
		c.Nodes = append(c.Nodes, n)
		c.Addrs = append(c.Addrs, n.Addr)
	}
	// redis-cli makes the first masters nodes the masters.
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.Masters = c.Nodes[:masters]
	byAddr := map[string]*Server{}
	for _, n := range c.Nodes {
		byAddr[n.Addr] = n
	}
	for _, n := range c.Nodes {
		rc := n.Client(tb)
		Eventually(tb, 20*time.Second, "cluster ok on "+n.Addr, func() bool {
			info, _ := rc.ClusterInfo(ctx).Result()
			return strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(total))
		})
		if n.isMaster(tb) {
			continue
		}
		var master *Server
		Eventually(tb, 20*time.Second, "replica "+n.Addr+" in sync", func() bool {
			info, _ := rc.Info(ctx, "replication").Result()
			master = byAddr[net.JoinHostPort(infoField(info, "master_host"), infoField(info, "master_port"))]
			return master != nil && infoField(info, "master_link_status") == "up"
		})
		c.Replicas[master] = append(c.Replicas[master], n)
	}
	for _, m := range c.Masters {
		if len(c.Replicas[m]) != replicas {
			tb.Fatalf("master %s has %d replicas, want %d", m.Addr, len(c.Replicas[m]), replicas)
		}
	}
	return c
}

// Owner returns the node that serves key's slot now.
func (c *Cluster) Owner(tb testing.TB, key string) *Server {
	tb.Helper()
	return c.Layout(tb)(key)
}

// Layout asks a live node which master serves each slot now, and returns
// the lookup of a key's master in that snapshot, which a later failover
// does not change.
func (c *Cluster) Layout(tb testing.TB) func(key string) *Server {
	tb.Helper()
	byAddr := map[string]*Server{}
	for _, n := range c.Nodes {
		byAddr[n.Addr] = n
	}
	var owner [16384]*Server
	for _, n := range c.Nodes {
		if Ping(n.Addr) != nil {
			continue
		}
		rc := redis.NewClient(&redis.Options{Addr: n.Addr, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
		slots, err := rc.ClusterSlots(context.Background()).Result()
		_ = rc.Close()
		if err != nil {
			continue
		}
		for _, s := range slots {
			if len(s.Nodes) == 0 || byAddr[s.Nodes[0].Addr] == nil || s.Start < 0 || s.End >= len(owner) {
				tb.Fatalf("CLUSTER SLOTS on %s: unexpected range %+v", n.Addr, s)
			}
			for i := s.Start; i <= s.End; i++ {
				owner[i] = byAddr[s.Nodes[0].Addr]
			}
		}
		return func(key string) *Server {
			m := owner[KeySlot(key)]
			if m == nil {
				tb.Fatalf("no master serves the slot of %q", key)
			}
			return m
		}
	}
	tb.Fatal("no live cluster node answers CLUSTER SLOTS")
	return nil
}

// KeySlot is the cluster slot of key, as CLUSTER KEYSLOT computes it:
// CRC16 (XMODEM) of the key, or of its hash tag (what lies between the
// first "{" and the next "}", when not empty), modulo 16384.
func KeySlot(key string) int {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if n := strings.IndexByte(key[open+1:], '}'); n > 0 {
			key = key[open+1 : open+1+n]
		}
	}
	var crc uint16
	for i := range len(key) {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

func (s *Server) isMaster(tb testing.TB) bool {
	tb.Helper()
	info, err := s.Client(tb).Info(context.Background(), "replication").Result()
	if err != nil {
		tb.Fatalf("INFO replication on %s: %v", s.Addr, err)
	}
	return infoField(info, "role") == "master"
}

// WaitReplicated waits until replica has received everything primary had
// written when it was called.
func WaitReplicated(tb testing.TB, primary, replica *Server) {
	tb.Helper()
	ctx := context.Background()
	info, err := primary.Client(tb).Info(ctx, "replication").Result()
	if err != nil {
		tb.Fatalf("INFO replication on %s: %v", primary.Addr, err)
	}
	want, _ := strconv.ParseInt(infoField(info, "master_repl_offset"), 10, 64)
	rc := replica.Client(tb)
	Eventually(tb, 10*time.Second, "replica "+replica.Addr+" caught up", func() bool {
		info, _ := rc.Info(ctx, "replication").Result()
		got, err := strconv.ParseInt(infoField(info, "slave_repl_offset"), 10, 64)
		return err == nil && got >= want
	})
}

// infoField is the value of name in an INFO reply, or "".
func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}
