package store_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// maxPendingBytes is the heap a pending challenge may cost with a million
// pending.
const maxPendingBytes = 512

// TestMemoryPendingBytes checks the heap a pending challenge costs when a
// million are stored; -short skips it.
func TestMemoryPendingBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("stores a million challenges")
	}
	per := pendingBytes(t, 1_000_000)
	t.Logf("%.0f bytes per pending challenge with a million pending", per)
	if per >= maxPendingBytes {
		t.Errorf("%.0f bytes per pending challenge, want under %d", per, maxPendingBytes)
	}
}

// BenchmarkMemoryPendingBytes reports the heap a pending challenge costs
// when a million are stored. Run it with -benchtime=1x.
func BenchmarkMemoryPendingBytes(b *testing.B) {
	for b.Loop() {
		b.ReportMetric(pendingBytes(b, 1_000_000), "bytes/pending")
	}
}

// pendingBytes stores n pending challenges, with tokens, users and IPs as
// the handler makes them, and returns the heap they cost each.
func pendingBytes(tb testing.TB, n int) float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	m := store.NewMemory(store.MemoryOptions{MaxPending: 2 * n, ExpiredGrace: grace})
	c := &store.Challenge{Status: store.StatusPending}
	for i := range n {
		var id [16]byte
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		c.Token = uuid4(id)
		c.User = fmt.Sprintf("user%06d@example.com", i)
		c.IP = fmt.Sprintf("%d.%d.%d.%d", 1+rng.IntN(223), rng.IntN(256), rng.IntN(256), 1+rng.IntN(254))
		c.Created = base.Add(time.Duration(i) * 100 * time.Microsecond)
		c.Expires = c.Created.Add(ttl)
		if err := m.Create(tb.Context(), c, c.Created); err != nil {
			tb.Fatal(err)
		}
	}

	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(m)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

// BenchmarkMemoryCreate makes challenges one millisecond apart, so that in
// the steady state creates and drops balance at 180,000 stored.
func BenchmarkMemoryCreate(b *testing.B) {
	m := store.NewMemory(store.MemoryOptions{MaxPending: 1 << 20, ExpiredGrace: grace})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := challenge(uint64(i), base.Add(time.Duration(i)*time.Millisecond))
		if err := m.Create(b.Context(), c, c.Created); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkMemoryPollPending(b *testing.B) {
	const n = 1024
	m := store.NewMemory(store.MemoryOptions{ExpiredGrace: grace})
	tokens := make([]string, n)
	for i := range n {
		c := challenge(uint64(i), base)
		tokens[i] = c.Token
		mustCreate(b, m, c)
	}
	now := base.Add(10 * time.Second)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		outcome, _, err := m.Poll(b.Context(), tokens[i%n], "192.0.2.10", true, now)
		if err != nil || outcome != store.PollPending {
			b.Fatalf("Poll = %v, %v", outcome, err)
		}
		i++
	}
}

// BenchmarkMemoryViewApprovePoll measures what a challenge costs from the
// approval page to its collection.
func BenchmarkMemoryViewApprovePoll(b *testing.B) {
	m := store.NewMemory(store.MemoryOptions{MaxPending: b.N + 1, ExpiredGrace: grace})
	tokens := make([]string, b.N)
	for i := range b.N {
		c := challenge(uint64(i), base)
		tokens[i] = c.Token
		mustCreate(b, m, c)
	}
	ctx := b.Context()
	now := base.Add(10 * time.Second)
	groups := []string{"engineering", "consoleme-admins"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		tok := tokens[i]
		if _, err := m.View(ctx, tok, "nonce", now); err != nil {
			b.Fatal(err)
		}
		if err := m.Approve(ctx, tok, "nonce", store.Approval{Approver: "approver@example.com", Groups: groups, AuthTime: base}, now); err != nil {
			b.Fatal(err)
		}
		if outcome, _, err := m.Poll(ctx, tok, "192.0.2.10", true, now); err != nil || outcome != store.PollSuccess {
			b.Fatalf("Poll = %v, %v", outcome, err)
		}
	}
}

// TestMemoryChallengesNotScanned checks that pending challenges give the
// garbage collector nothing to read: a million of them, from one user and
// one IP as under a load test, leave the scannable heap (what every
// collection cycle walks) as it was. With a pointer in each, every cycle
// walked hundreds of megabytes, and the generator paid for it. -short
// skips it.
func TestMemoryChallengesNotScanned(t *testing.T) {
	if testing.Short() {
		t.Skip("stores a million challenges")
	}
	sample := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}, {Name: "/gc/heap/live:bytes"}}
	var live int64
	scannable := func() int64 {
		runtime.GC()
		metrics.Read(sample)
		live = int64(sample[1].Value.Uint64())
		return int64(sample[0].Value.Uint64())
	}
	rng := rand.New(rand.NewPCG(3, 4))
	before := scannable()
	liveBefore := live
	m := store.NewMemory(store.MemoryOptions{MaxPending: 2_000_000, ExpiredGrace: grace})
	c := &store.Challenge{User: "alice@example.com", IP: "192.0.2.10", Status: store.StatusPending}
	const n = 1_000_000
	for i := range n {
		var id [16]byte
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		c.Token = uuid4(id)
		c.Created = base.Add(time.Duration(i) * time.Microsecond)
		c.Expires = c.Created.Add(ttl)
		if err := m.Create(t.Context(), c, c.Created); err != nil {
			t.Fatal(err)
		}
	}
	grew := scannable() - before
	runtime.KeepAlive(m)
	t.Logf("scannable heap grew by %d bytes for %d pending challenges; the heap by %d bytes a challenge",
		grew, n, (live-liveBefore)/n)
	if grew > 1<<20 {
		t.Errorf("scannable heap grew by %d bytes for %d pending challenges, want under 1 MiB", grew, n)
	}
}
