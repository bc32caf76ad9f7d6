package integration

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/redisstore/redistest"
)

// TestRedisHAClusterResharding: two Caddy instances on a three-master Redis
// Cluster. The slots of live challenges move to another master (marked
// migrating and importing, their keys MIGRATEd, handed over two seconds
// later) while twelve pollers on the two instances poll them, and one is
// approved in the browser meanwhile. The instances follow MOVED and ASK:
// at most one poll per poller answers 503, the approved challenges are
// collected once each, the pending ones are still pending on their new
// master, and the outage warning is not logged for every call.
func TestRedisHAClusterResharding(t *testing.T) {
	rc := redistest.StartCluster(t, 3)
	c := newClusterWith(t, 2, "redis", append([]string{"cluster"}, rc.Addrs...))
	b := c.loggedInBrowser(t, userAlice)
	early := c.generate(t, userAlice.Email, nil) // approved before the move
	c.approveOn(t, b, 0, early)
	during := c.generate(t, userAlice.Email, nil) // approved while its slot moves
	pending := []challenge{c.generate(t, userAlice.Email, nil), c.generate(t, userAlice.Email, nil)}

	// Each challenge's slot moves from its master to the next one.
	type move struct {
		slot     int
		from, to *redistest.Server
	}
	var moves []move
	moveOf := map[string]move{}
	for _, ch := range append([]challenge{early, during}, pending...) {
		found := false
		for i, m := range rc.Masters {
			keys, err := m.Client(t).Keys(t.Context(), "*c:"+ch.Token).Result()
			if err != nil || len(keys) != 1 {
				continue
			}
			found = true
			mv := move{redistest.KeySlot(keys[0]), m, rc.Masters[(i+1)%len(rc.Masters)]}
			moveOf[ch.Token] = mv
			if !slices.Contains(moves, mv) {
				moves = append(moves, mv)
			}
		}
		if !found {
			t.Fatalf("challenge %s is on no master", ch.Token)
		}
	}

	// Twelve pollers, six per instance, each poll 150 ms after its last
	// (within the per-client poller limit); a 503 is counted per poller.
	var mu sync.Mutex
	polled := []challenge{during, pending[0], pending[1]}
	statuses := map[string]map[string]int{} // token: status: count
	failed := make([]int, 12)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range failed {
		wg.Go(func() {
			for n := i; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(150 * time.Millisecond):
				}
				mu.Lock()
				ch := polled[n%len(polled)]
				mu.Unlock()
				status := "error"
				r, err := http.Get(c.on(i%2, ch.PollingURL))
				if err == nil {
					var m map[string]any
					if r.StatusCode == http.StatusServiceUnavailable {
						status = "503"
						r.Body.Close()
					} else if decodeJSON(r, &m) == nil {
						status, _ = m["status"].(string)
					}
				}
				mu.Lock()
				if status == "503" {
					failed[i]++
				}
				if statuses[ch.Token] == nil {
					statuses[ch.Token] = map[string]int{}
				}
				statuses[ch.Token][status]++
				mu.Unlock()
			}
		})
	}
	stopPollers := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopPollers()
	mark := len(c.Caddy.Output())

	time.Sleep(300 * time.Millisecond)
	for _, mv := range moves {
		redistest.BeginMove(t, mv.slot, mv.from, mv.to)
	}
	time.Sleep(300 * time.Millisecond)
	for _, mv := range moves {
		redistest.MigrateKeys(t, mv.slot, mv.from, mv.to)
	}
	// Every call for these challenges is now redirected with ASK.
	mu.Lock()
	polled = append(polled, early)
	mu.Unlock()
	c.approveOn(t, b, 1, during)
	time.Sleep(2 * time.Second)
	for _, mv := range moves {
		var others []*redistest.Server
		for _, m := range rc.Masters {
			if m != mv.from && m != mv.to {
				others = append(others, m)
			}
		}
		redistest.EndMove(t, mv.slot, mv.from, mv.to, others...)
	}
	// Then MOVED, until the instances have learnt the new layout.
	collected := func(ch challenge) int {
		mu.Lock()
		defer mu.Unlock()
		return statuses[ch.Token]["success"]
	}
	redistest.Eventually(t, 10*time.Second, "the approved challenges collected", func() bool {
		return collected(early) > 0 && collected(during) > 0
	})
	time.Sleep(time.Second) // the collected ones polled again
	stopPollers()

	for i, n := range failed {
		if n > 1 {
			t.Errorf("poller %d: %d polls answered 503, want at most one", i, n)
		}
	}
	for _, ch := range []challenge{early, during} {
		if n := collected(ch); n != 1 {
			t.Errorf("challenge %s handed out %d times, want once (%v)", ch.Token, n, statuses[ch.Token])
		}
	}
	for _, ch := range pending {
		for i := range c.Instances {
			c.expectPoll(t, c.on(i, ch.PollingURL), nil, "pending")
		}
		if statuses[ch.Token]["success"] != 0 {
			t.Errorf("pending challenge %s: %v", ch.Token, statuses[ch.Token])
		}
	}
	for _, ch := range pending {
		mv := moveOf[ch.Token]
		keys, err := mv.to.Client(t).ClusterGetKeysInSlot(context.Background(), mv.slot, 10).Result()
		if err != nil || !slices.ContainsFunc(keys, func(k string) bool { return strings.HasSuffix(k, "c:"+ch.Token) }) {
			t.Errorf("pending challenge %s is not on its new master %s (%v, %v)", ch.Token, mv.to.Addr, keys, err)
		}
	}
	if n := strings.Count(c.Caddy.Output()[mark:], "challenge store unavailable"); n > 1 {
		t.Errorf("the outage warning was logged %d times while the slots moved, want at most once", n)
	}
	t.Logf("polls by challenge: %v", statuses)
}

// approveOn opens the approval page of ch on instance i and approves it,
// as the browser does behind the balancer (its origin is the balancer's).
func (c *cluster) approveOn(t *testing.T, b *browser, i int, ch challenge) {
	t.Helper()
	p, f := c.openApproval(t, b, c.on(i, ch.ChallengeURL), userAlice.Email, "127.0.0.1")
	action, _ := p.URL.Parse(f.Action)
	if res := b.PostForm(action.String(), c.LB, f.Values("approve")); res.Status != http.StatusOK ||
		!strings.Contains(res.Text(), approvedText) {
		t.Fatalf("approving on instance %d: %s", i, res)
	}
}
