package consolemeauth

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/google/uuid"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

func benchHandler(b *testing.B) *Handler {
	return newTestHandler(b, func(h *Handler) {
		h.MaxPending = 1 << 22
		h.GeneratorRateLimit, h.PollerRateLimit = &RateLimit{}, &RateLimit{}
	})
}

var okNext = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return nil })

// BenchmarkPassThrough is the cost the module adds to every ConsoleMe request.
func BenchmarkPassThrough(b *testing.B) {
	h := benchHandler(b)
	r := request("GET", "/api/v2/get_roles?all=true", "192.0.2.1", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		_ = h.ServeHTTP(w, r, okNext)
	}
}

func BenchmarkGenerator(b *testing.B) {
	h := benchHandler(b)
	r := request("GET", "/noauth/v1/challenge_generator/alice@example.com", "192.0.2.1", nil)
	b.ReportAllocs()
	for b.Loop() {
		_ = h.ServeHTTP(httptest.NewRecorder(), r, okNext)
	}
}

func BenchmarkPollPending(b *testing.B) {
	h := benchHandler(b)
	tok := generate(b, h, "alice@example.com", "192.0.2.1")
	r := request("GET", "/noauth/v1/challenge_poller/"+tok, "192.0.2.1", nil)
	b.ReportAllocs()
	for b.Loop() {
		_ = h.ServeHTTP(httptest.NewRecorder(), r, okNext)
	}
}

// BenchmarkPollSuccess is the success path: atomic claim, JWT mint and
// answer. Each iteration needs a freshly approved challenge, made outside
// the timer directly in the store.
func BenchmarkPollSuccess(b *testing.B) {
	h := benchHandler(b)
	ctx := b.Context()
	groups := []string{"engineering", "consoleme-admins"}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		now := time.Now()
		c := &store.Challenge{Token: uuid.NewString(), User: "alice@example.com", IP: "192.0.2.1", Created: now,
			Expires: now.Add(time.Minute), Status: store.StatusPending}
		if err := h.states.Create(ctx, c, now); err != nil {
			b.Fatal(err)
		}
		if _, err := h.states.View(ctx, c.Token, "n", now); err != nil {
			b.Fatal(err)
		}
		if err := h.states.Approve(ctx, c.Token, "n", store.Approval{Approver: "alice@example.com", Groups: groups, AuthTime: now}, now); err != nil {
			b.Fatal(err)
		}
		r := request("GET", "/noauth/v1/challenge_poller/"+c.Token, "192.0.2.1", nil)
		w := httptest.NewRecorder()
		b.StartTimer()
		_ = h.ServeHTTP(w, r, okNext)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkGeneratorLoaded is the generator with two million challenges
// pending, as under a load test that never fills max_pending: each call's
// store write lands at a random place in a large index.
func BenchmarkGeneratorLoaded(b *testing.B) {
	h := newTestHandler(b, func(h *Handler) {
		h.MaxPending = 1 << 24
		h.GeneratorRateLimit = &RateLimit{}
	})
	now := h.now()
	c := &store.Challenge{User: "alice@example.com", IP: "192.0.2.1", Created: now,
		Expires: now.Add(time.Duration(h.ChallengeTTL)), Status: store.StatusPending}
	for range 2_000_000 {
		c.Token = uuid.NewString()
		if err := h.states.Create(b.Context(), c, now); err != nil {
			b.Fatal(err)
		}
	}
	r := request("GET", "/noauth/v1/challenge_generator/alice@example.com", "192.0.2.1", nil)
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		_ = h.ServeHTTP(w, r, okNext)
	}
}
