package redistest

import (
	"context"
	"fmt"
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

// Cluster is a Redis Cluster of masters only.
type Cluster struct {
	Addrs []string
	Nodes []*Server
}

// StartCluster starts masters cluster nodes, joins them with redis-cli
// --cluster create, and waits until every node reports the cluster ok.
func StartCluster(tb testing.TB, masters int) *Cluster {
	tb.Helper()
	cli := Binary(tb, "redis-cli")
	c := &Cluster{}
	for range masters {
		n := startNode(tb)
		c.Nodes = append(c.Nodes, n)
		c.Addrs = append(c.Addrs, n.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range c.Nodes {
		rc := n.Client(tb)
		Eventually(tb, 20*time.Second, "cluster ok on "+n.Addr, func() bool {
			info, _ := rc.ClusterInfo(ctx).Result()
			return strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(masters))
		})
	}
	return c
}
