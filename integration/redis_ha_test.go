package integration

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/redisstore/redistest"
)

// pollStatuses polls pollingURL from n clients at once, spread over the
// instances, and counts the statuses answered.
func (c *cluster) pollStatuses(n int, pollingURL string) map[string]int {
	var mu sync.Mutex
	counts := map[string]int{}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			status := "error"
			if r, err := http.Get(c.on(i%len(c.Instances), pollingURL)); err == nil {
				var m map[string]any
				if decodeJSON(r, &m) == nil {
					status, _ = m["status"].(string)
				}
			}
			mu.Lock()
			counts[status]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return counts
}

// TestRedisHAClusterAcrossInstances: three Caddy instances on a
// three-master Redis Cluster. A challenge made on A is logged in for and
// approved on B, and 50 pollers spread over the three collect it: exactly
// one gets the token.
func TestRedisHAClusterAcrossInstances(t *testing.T) {
	rc := redistest.StartCluster(t, 3)
	c := newClusterWith(t, 3, "redis", append([]string{"cluster"}, rc.Addrs...))
	b := c.loggedInBrowser(t, userAlice)
	for round := range 3 {
		ch := c.generate(t, userAlice.Email, nil)
		c.expectPoll(t, c.on(2, ch.PollingURL), nil, "pending")
		p, f := c.openApproval(t, b, c.on(1, ch.ChallengeURL), userAlice.Email, "127.0.0.1")
		action, _ := p.URL.Parse(f.Action)
		if res := b.PostForm(action.String(), c.LB, f.Values("approve")); res.Status != http.StatusOK ||
			!strings.Contains(res.Text(), approvedText) {
			t.Fatalf("approving on B: %s", res)
		}
		if counts := c.pollStatuses(50, ch.PollingURL); counts["success"] != 1 || counts["unknown"] != 49 {
			t.Errorf("round %d: outcomes %v, want one success and 49 unknown", round, counts)
		}
	}
}

// TestRedisHASentinelFailover: Caddy on a primary with a replica watched by
// three sentinels (down-after 1s). The primary is killed (SIGKILL) while
// pollers collect approved challenges: the challenge routes serve again
// within down-after plus the failover without restarting Caddy, the
// challenges that reached the replica survive, no success is handed out
// twice, and pass-through traffic never fails.
func TestRedisHASentinelFailover(t *testing.T) {
	primary := redistest.StartServer(t)
	replica := redistest.StartReplica(t, primary)
	sent := redistest.StartSentinels(t, primary, 1, 3, time.Second)
	e := newEnv(t, func(m *moduleConfig) {
		m.Store = "redis"
		m.StoreBlock = [][]string{
			append([]string{"sentinel", redistest.MasterName}, sent.Addrs...),
			{"dial_timeout", "250ms"}, {"read_timeout", "500ms"}, {"write_timeout", "500ms"},
		}
		// The test's pollers and probes all come from 127.0.0.1.
		m.GeneratorRateLimit, m.PollerRateLimit = "off", "off"
	})

	// Pass-through is watched throughout.
	var passFailures atomic.Int64
	stopPass := make(chan struct{})
	var passWG sync.WaitGroup
	passWG.Go(func() {
		for {
			select {
			case <-stopPass:
				return
			case <-time.After(20 * time.Millisecond):
			}
			r, err := http.Get(e.Base + "/echo/failover")
			if err != nil || r.StatusCode != http.StatusOK {
				passFailures.Add(1)
			}
			if err == nil {
				r.Body.Close()
			}
		}
	})

	b := e.loggedInBrowser(t, userAlice)
	chs := make([]challenge, 6)
	for i := range chs {
		chs[i] = e.generate(t, userAlice.Email, nil)
		p, f := e.openApproval(t, b, chs[i].ChallengeURL, userAlice.Email, "127.0.0.1")
		e.approve(t, b, p, f)
	}
	pc := primary.Client(t)
	if err := pc.Set(t.Context(), "failover-sync", "1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := pc.Wait(t.Context(), 1, 5*time.Second).Result(); n != 1 || err != nil {
		t.Fatalf("the replica did not catch up: %d, %v", n, err)
	}
	e.pollSuccess(t, chs[0].PollingURL, nil, userAlice)

	// Pollers collect the others, and poll them again, across the kill.
	pollingURL := map[string]string{}
	for _, ch := range chs[1:] {
		pollingURL[ch.Token] = ch.PollingURL
	}
	pollers := redistest.StartPollers(3, 15*time.Millisecond, slices.Collect(maps.Keys(pollingURL)), func(tok string) bool {
		r, err := http.Get(pollingURL[tok])
		if err != nil {
			return false
		}
		var m map[string]any
		return decodeJSON(r, &m) == nil && m["status"] == "success"
	})
	defer pollers.Stop()
	time.Sleep(20 * time.Millisecond)
	before := pollers.Collected()
	killed := time.Now()
	primary.Kill()
	var recovered time.Duration
	for {
		r := call(t, http.MethodGet, e.Base+"/noauth/v1/challenge_generator/alice@example.com", nil, "")
		if r.Status == http.StatusOK {
			recovered = time.Since(killed)
			break
		}
		if time.Since(killed) > 20*time.Second {
			t.Fatalf("the challenge routes do not serve 20s after the kill: %s", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	redistest.Eventually(t, 10*time.Second, "the approved challenges collected", func() bool {
		return pollers.Collected() == len(chs)-1
	})
	time.Sleep(300 * time.Millisecond) // the collected ones polled again
	pollers.Stop()

	// A whole login after the failover.
	ch := e.generate(t, userAlice.Email, nil)
	p, f := e.openApproval(t, b, ch.ChallengeURL, userAlice.Email, "127.0.0.1")
	e.approve(t, b, p, f)
	e.pollSuccess(t, ch.PollingURL, nil, userAlice)
	e.expectPoll(t, chs[0].PollingURL, nil, "unknown")
	close(stopPass)
	passWG.Wait()

	t.Logf("%d of %d approved challenges collected before the kill; served again %s after it",
		before, len(chs)-1, recovered.Round(time.Millisecond))
	if before == len(chs)-1 {
		t.Error("every challenge was collected before the kill: the test did not poll across the failover")
	}
	if limit := 10 * time.Second; recovered > limit {
		t.Errorf("served again after %s, want within %s (down-after 1s plus the failover)", recovered, limit)
	}
	for _, ch := range chs[1:] {
		if n := pollers.Handed(ch.Token); n != 1 {
			t.Errorf("challenge %s handed out %d times, want once", ch.Token, n)
		}
	}
	if n := passFailures.Load(); n != 0 {
		t.Errorf("%d pass-through requests failed during the failover", n)
	}
	if addr, err := sent.Primary(t.Context()); err != nil || addr != replica.Addr {
		t.Errorf("the sentinels' primary is %q (%v), want the replica %s", addr, err, replica.Addr)
	}
	if strings.Contains(e.Caddy.Output(), "failed to dial") {
		t.Error("the Redis client logs every failed call itself")
	}
}
