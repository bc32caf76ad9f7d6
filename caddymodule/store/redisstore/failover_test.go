package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store/redisstore/redistest"
)

// downAfter is the sentinels' down-after-milliseconds in the tests.
const downAfter = time.Second

// TestSentinelFailover kills the primary (SIGKILL) while four pollers
// collect 20 approved challenges. The store serves again through the
// promoted replica within the sentinels' down-after plus the failover, the
// challenges that reached the replica survive, and no success is handed out
// twice, although the pollers keep polling the tokens they collected.
func TestSentinelFailover(t *testing.T) {
	primary := redistest.StartServer(t)
	replica := redistest.StartReplica(t, primary)
	sent := redistest.StartSentinels(t, primary, 1, 3, downAfter)
	s := newStore(t, Options{MasterName: redistest.MasterName, SentinelAddrs: sent.Addrs, KeyPrefix: uniquePrefix(),
		DialTimeout: 250 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
	ctx := t.Context()

	now := time.Now()
	cs := make([]*store.Challenge, 20)
	for i := range cs {
		cs[i] = testChallenge(now)
		if err := s.Create(ctx, cs[i], now); err != nil {
			t.Fatalf("Create: %v", err)
		}
		approve(t, s, cs[i], now)
	}
	pc := primary.Client(t)
	if err := pc.Set(ctx, s.keys.prefix+"sync", "1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := pc.Wait(ctx, 1, 5*time.Second).Result(); n != 1 || err != nil {
		t.Fatalf("the replica did not catch up: %d, %v", n, err)
	}

	pollers := startPollers(s, cs)
	defer pollers.Stop()
	time.Sleep(30 * time.Millisecond)
	before := pollers.Collected()
	killed := time.Now()
	primary.Kill()

	// Served again: a new login goes through, from the generator to the
	// poller, on the promoted replica.
	recovered := servedAgain(t, s, killed, nil)
	redistest.Eventually(t, 5*time.Second, "all challenges collected", func() bool {
		return pollers.Collected() == len(cs)
	})
	time.Sleep(200 * time.Millisecond) // the collected tokens polled again
	pollers.Stop()

	t.Logf("%d of %d collected before the kill; served again %s after it (down-after %s)",
		before, len(cs), recovered.Round(time.Millisecond), downAfter)
	if limit := downAfter + 9*time.Second; recovered > limit {
		t.Errorf("served again after %s, want within %s", recovered, limit)
	}
	if addr, err := sent.Primary(ctx); err != nil || addr != replica.Addr {
		t.Errorf("the sentinels' primary is %q (%v), want the replica %s", addr, err, replica.Addr)
	}
	for _, c := range cs {
		if n := pollers.Handed(c.Token); n != 1 {
			t.Errorf("challenge %s handed out %d times, want once", c.Token, n)
		}
	}
}

// servedAgain waits until a new login goes through s after a kill at
// killed, from Create to the Poll that collects it, and says how long after
// the kill that was; mine picks the challenges to try (nil: any). It fails
// the test after 20 s.
func servedAgain(t *testing.T, s *Store, killed time.Time, mine func(*store.Challenge) bool) time.Duration {
	t.Helper()
	ctx := t.Context()
	for {
		c := testChallenge(time.Now())
		if mine != nil && !mine(c) {
			continue
		}
		if err := s.Create(ctx, c, c.Created); err == nil {
			recovered := time.Since(killed)
			approve(t, s, c, c.Created)
			if out, _, err := s.Poll(ctx, c.Token, c.IP, true, c.Created); out != store.PollSuccess {
				t.Errorf("a login after the failover: %v, %v", out, err)
			}
			return recovered
		}
		if time.Since(killed) > 20*time.Second {
			t.Fatalf("no service 20s after the kill")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startPollers has four pollers collect cs from s, each poll 10 ms after
// the last.
func startPollers(s *Store, cs []*store.Challenge) *redistest.Pollers {
	return redistest.StartPollers(4, 10*time.Millisecond, tokensOf(cs), func(tok string) bool {
		out, _, _ := s.Poll(context.Background(), tok, testIP, true, time.Now())
		return out == store.PollSuccess
	})
}

// tokensOf lists the tokens of cs.
func tokensOf(cs []*store.Challenge) []string {
	tokens := make([]string, len(cs))
	for i, c := range cs {
		tokens[i] = c.Token
	}
	return tokens
}

// BenchmarkPollSuccess measures the success path (the poll that collects
// an approved challenge) against a primary with one replica, with and
// without waiting for the replica's acknowledgement. Only Poll is timed.
func BenchmarkPollSuccess(b *testing.B) {
	primary := redistest.StartServer(b)
	redistest.StartReplica(b, primary)
	benchPollSuccess(b, Options{URL: "redis://" + primary.Addr})
}

// benchPollSuccess times Poll collecting an approved challenge through a
// store made with opts, with and without the replica acknowledgement.
func benchPollSuccess(b *testing.B, opts Options) {
	for _, bc := range []struct {
		name string
		acks int
	}{{"replica-ack", 0}, {"no-ack", ReplicaAcksOff}} {
		b.Run(bc.name, func(b *testing.B) {
			o := opts
			o.KeyPrefix, o.ReplicaAcks = uniquePrefix(), bc.acks
			s := newStore(b, o)
			now := time.Now()
			for b.Loop() {
				b.StopTimer()
				c := testChallenge(now)
				if err := s.Create(b.Context(), c, now); err != nil {
					b.Fatal(err)
				}
				approve(b, s, c, now)
				b.StartTimer()
				if out, _, err := s.Poll(b.Context(), c.Token, c.IP, true, now); out != store.PollSuccess {
					b.Fatalf("Poll: %v, %v", out, err)
				}
			}
		})
	}
}
