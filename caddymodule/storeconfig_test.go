package consolemeauth

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

func TestStoreRedisCaddyfile(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`consoleme_auth {
		store redis redis://10.0.0.9:6379/2 {
			username cm
			password {env.REDIS_PASSWORD}
			key_prefix cm:
			dial_timeout 500ms
			read_timeout 250ms
			write_timeout 250ms
			pool_size 20
			tls
			insecure_skip_verify
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := StoreConfig{Type: "redis", URL: "redis://10.0.0.9:6379/2", Username: "cm", Password: "{env.REDIS_PASSWORD}",
		KeyPrefix: "cm:", DialTimeout: caddy.Duration(500 * time.Millisecond), ReadTimeout: caddy.Duration(250 * time.Millisecond),
		WriteTimeout: caddy.Duration(250 * time.Millisecond), PoolSize: 20, TLS: true, InsecureSkipVerify: true}
	if !reflect.DeepEqual(*h.Store, want) {
		t.Errorf("got %+v\nwant %+v", *h.Store, want)
	}
	for _, src := range []string{"store redis\n", "store redis redis://x:1\n", "store redis {\nurl redis://x:1\n}\n"} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("consoleme_auth {\n" + src + "}")); err != nil || h.Store.Type != "redis" {
			t.Errorf("%q: %v", src, err)
		}
	}
	for _, tc := range []struct{ src, want string }{
		{"store redis a b\n", "wrong argument count"},
		{"store redis {\nbogus\n}\n", "store redis: unrecognized subdirective 'bogus'"},
		{"store redis {\npool_size -1\n}\n", "pool_size"},
		{"store redis {\ntls yes\n}\n", "wrong argument count"},
		{"store redis {\nsentinel mymaster\n}\n", "master name and at least one sentinel address"},
		{"store redis {\ncluster\n}\n", "cluster: missing value"},
		{"store redis {\nreplica_acks 0\n}\n", "want auto, off or a number"},
		{"store redis {\nreplica_acks some\n}\n", "want auto, off or a number"},
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("consoleme_auth {\n" + tc.src + "}"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.src, err, tc.want)
		}
	}
}

func TestStoreRedisHACaddyfile(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want StoreConfig
	}{
		{`store redis {
			sentinel mymaster 10.0.0.1:26379 10.0.0.2:26379
			sentinel_username sentinel
			sentinel_password {env.SENTINEL_PASSWORD}
			password {env.REDIS_PASSWORD}
			replica_acks 2
			replica_ack_timeout 250ms
		}`, StoreConfig{Type: "redis", Password: "{env.REDIS_PASSWORD}", ReplicaAcks: 2,
			ReplicaAckTimeout: caddy.Duration(250 * time.Millisecond),
			Sentinel: &SentinelConfig{MasterName: "mymaster", Addrs: []string{"10.0.0.1:26379", "10.0.0.2:26379"},
				Username: "sentinel", Password: "{env.SENTINEL_PASSWORD}"}}},
		{`store redis {
			cluster 10.0.0.1:6379 10.0.0.2:6379
			replica_acks off
		}`, StoreConfig{Type: "redis", Cluster: []string{"10.0.0.1:6379", "10.0.0.2:6379"}, ReplicaAcks: -1}},
		{`store redis {
			replica_acks auto
		}`, StoreConfig{Type: "redis"}},
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("consoleme_auth {\n" + tc.src + "\n}")); err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if !reflect.DeepEqual(*h.Store, tc.want) {
			t.Errorf("%s:\ngot  %+v\nwant %+v", tc.src, *h.Store, tc.want)
		}
	}
	for _, tc := range []struct {
		sc   StoreConfig
		want string
	}{
		{StoreConfig{Type: "redis", URL: "redis://x:1", Cluster: []string{"a:1"}}, "exclusive"},
		{StoreConfig{Type: "redis", Sentinel: &SentinelConfig{Addrs: []string{"a:1"}}, Cluster: []string{"a:1"}}, "master_name"},
		{StoreConfig{Type: "redis", Sentinel: &SentinelConfig{MasterName: "m", Addrs: []string{"a:1"}}, Cluster: []string{"a:1"}}, "exclusive"},
		{StoreConfig{Type: "redis", ReplicaAcks: -2}, "replica_acks"},
		{StoreConfig{Type: "memory", Cluster: []string{"a:1"}}, "for the redis store"},
	} {
		if err := tc.sc.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.sc, err, tc.want)
		}
	}
}

// TestRedisStoreStartsWithoutRedis: provisioning never waits for Redis; the
// challenge routes answer 503 JSON while it is unreachable, pass-through is
// untouched, and a malformed URL fails validation without echoing a password.
func TestRedisStoreStartsWithoutRedis(t *testing.T) {
	start := time.Now()
	h := newTestHandler(t, func(h *Handler) {
		h.Store = &StoreConfig{Type: "redis", URL: "redis://127.0.0.1:1/0", DialTimeout: caddy.Duration(200 * time.Millisecond)}
	})
	if d := time.Since(start); d > time.Second {
		t.Errorf("provision took %v", d)
	}
	rec, _ := serve(t, h, request("GET", "/noauth/v1/challenge_generator/alice", "192.0.2.1", nil))
	if rec.Code != 503 || decode(t, rec)["code"] != "store_unavailable" {
		t.Errorf("generator without redis: %d", rec.Code)
	}
	if _, passed := serve(t, h, request("GET", "/api/v2/get_roles", "192.0.2.1", nil)); !passed {
		t.Error("pass-through broken")
	}
	bad := &Handler{JWTSecret: "s", Store: &StoreConfig{Type: "redis", URL: "redis://user:hunter2-secret@[bad"}}
	ctx, cancel := newCtx()
	defer cancel()
	err := bad.Provision(ctx)
	if err == nil || strings.Contains(err.Error(), "hunter2-secret") {
		t.Errorf("bad URL: %v", err)
	}
	_ = bad.Cleanup()
}

// TestStoreOutageLoggedOnce: an outage is logged when it starts and when it
// ends, not for every failing request; calls that alternate between failing
// and succeeding are one outage, over once the store has answered for
// outageSettle without a failure.
func TestStoreOutageLoggedOnce(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	flaky := &flakyStore{Store: store.NewMemory(store.MemoryOptions{MaxPending: 100, ExpiredGrace: time.Minute})}
	s := watchStore(flaky, zap.New(core))
	ctx := context.Background()
	at := time.Unix(1_800_000_000, 0)
	messages := func() (msgs []string) {
		for _, e := range logs.All() {
			msgs = append(msgs, e.Message)
		}
		return msgs
	}

	// Down, then flapping for five seconds: every other call fails.
	flaky.down = true
	for range 5 {
		if _, err := s.Get(ctx, "x", at); !errors.Is(err, store.ErrUnavailable) {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		at = at.Add(50 * time.Millisecond)
		flaky.down = i%2 == 0
		_, _ = s.Get(ctx, "x", at)
	}
	if msgs := messages(); len(msgs) != 1 || !strings.Contains(msgs[0], "unavailable") {
		t.Fatalf("while flapping, logged %q, want one warning", msgs)
	}
	// Up again: not over until it has answered for outageSettle.
	flaky.down = false
	lastFail := at.Add(-50 * time.Millisecond)
	for _, d := range []time.Duration{time.Second, outageSettle - time.Second} {
		_, _ = s.Get(ctx, "x", lastFail.Add(d))
	}
	if msgs := messages(); len(msgs) != 1 {
		t.Fatalf("before the store settled, logged %q", msgs)
	}
	for range 3 {
		_, _ = s.Get(ctx, "x", lastFail.Add(outageSettle))
	}
	msgs := messages()
	if len(msgs) != 2 || !strings.Contains(msgs[1], "recovered") {
		t.Fatalf("logged %q, want a warning and one recovery", msgs)
	}
	if got := logs.All()[1].ContextMap()["failed_calls"]; got != int64(55) {
		t.Errorf("recovery reports %v failed calls, want 55", got)
	}
	// A later outage is reported again.
	flaky.down = true
	_, _ = s.Get(ctx, "x", lastFail.Add(time.Hour))
	if msgs := messages(); len(msgs) != 3 || !strings.Contains(msgs[2], "unavailable") {
		t.Errorf("a second outage logged %q", msgs)
	}
}

type flakyStore struct {
	store.Store
	down bool
}

func (f *flakyStore) Get(ctx context.Context, token string, now time.Time) (*store.Challenge, error) {
	if f.down {
		return nil, errDown
	}
	return f.Store.Get(ctx, token, now)
}
