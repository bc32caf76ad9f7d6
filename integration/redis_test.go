package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// redisServer is the test bed's redis-server with test helpers.
type redisServer struct{ *testbed.Redis }

// startRedis starts a real redis-server on a free loopback port; it is
// stopped when the test ends. Without the binary the test is skipped, but
// under CI a missing Redis is a failure.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	r, err := testbed.StartRedis(t.TempDir())
	if errors.Is(err, testbed.ErrNoRedis) {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed (apt-get install redis-server); CI must run the Redis tests")
		}
		t.Skip("redis-server is not installed; skipping the Redis tests (apt-get install redis-server)")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return &redisServer{r}
}

// start starts the stopped server again on its port.
func (s *redisServer) start(t testing.TB) {
	t.Helper()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
}

// stop kills the server.
func (s *redisServer) stop() { s.Stop() }

// cluster is several Caddy instances sharing one Redis behind a Caddy load
// balancer, with the real ConsoleMe (behind the recording proxy) and one IdP.
type cluster struct {
	*env
	Redis     *redisServer
	Instances []string // base URLs of the instances, reached directly
	LB        string   // the load balancer: the public_url of every instance
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	caddyBinary(t)
	rs := startRedis(t)
	c := newClusterWith(t, n, "redis "+rs.URL)
	c.Redis = rs
	return c
}

// newClusterWith is newCluster with the given store directive (a Redis
// Sentinel or Cluster deployment, say).
func newClusterWith(t *testing.T, n int, store string, storeBlock ...[]string) *cluster {
	t.Helper()
	caddyBinary(t)
	cm := sharedRealConsoleMe(t)
	secret := cm.Secret()
	idp := startIdP(t, userAlice, userDave)
	// Every instance shares the SP key pair, the secret and the Redis URL.
	certPath, keyPath := sharedKeyPair(t, "module-sp").writeFiles(t, t.TempDir())
	lbPort := freePort(t)
	lb := fmt.Sprintf("http://127.0.0.1:%d", lbPort)
	cfg := moduleConfig{
		Module: testbed.Module{JWTSecret: secret, PublicURL: lb, Store: store, StoreBlock: storeBlock},
		SAML: testbed.SAML{IdPMetadataURL: idp.MetadataURL, SPCert: certPath, SPKey: keyPath,
			EmailAttribute: samlAttrMail, GroupsAttribute: samlAttrAffiliation},
	}
	c := &cluster{LB: lb}
	var first *caddyProc
	var upstreams []string
	for i := 0; i < n; i++ {
		port := freePort(t)
		p := startCaddy(t, siteCaddyfile(port, cfg, cm.Addr()))
		waitIdPMetadata(t, p)
		if first == nil {
			first = p
		}
		c.Instances = append(c.Instances, fmt.Sprintf("http://127.0.0.1:%d", port))
		upstreams = append(upstreams, fmt.Sprintf("127.0.0.1:%d", port))
	}
	// The balancer spreads requests round-robin; the instances trust it
	// (127.0.0.1) for X-Forwarded-For, so they all see the real client IP.
	startCaddy(t, testbed.Caddyfile{Global: testGlobal(lbPort), Sites: []testbed.Site{{
		Address: testbed.SiteAddress(lbPort), Upstreams: upstreams, LBPolicy: "round_robin",
	}}})
	idp.registerSPFromURL(t, "consoleme", lb+"/saml/metadata")
	c.env = &env{Secret: secret, Base: lb, Config: cfg, Real: cm, IdP: idp, Caddy: first}
	return c
}

// on rewrites a URL the module handed out (based on the balancer) to reach
// instance i directly.
func (c *cluster) on(i int, u string) string {
	return strings.Replace(u, c.LB, c.Instances[i], 1)
}

// TestRedisChallengeAcrossInstances: a challenge made on instance A is
// logged in for on B (the SAML login started on B completes on whichever
// instance the balancer gives the IdP's POST), approved on B, and collected
// on C, exactly once.
func TestRedisChallengeAcrossInstances(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	ch := c.generate(t, userAlice.Email, nil)
	c.expectPoll(t, c.on(2, ch.PollingURL), nil, "pending")

	b := newBrowser(t)
	hops := samlLogin(t, b, c.IdP, userAlice, c.on(1, ch.ChallengeURL))
	if !isRedirect(hops.ACS.Status) || hops.ACS.Cookie(c.cookieName()) == nil {
		t.Fatalf("ACS behind the balancer: want a redirect with the session cookie, got\n%s", hops.ACS)
	}
	if loc := hops.ACS.Location(); loc == nil || loc.Path != "/challenge_validator/"+ch.Token {
		t.Fatalf("ACS redirects to %v", loc)
	}

	p, f := c.openApproval(t, b, c.on(1, ch.ChallengeURL), userAlice.Email, "127.0.0.1")
	// The browser believes it is on the public origin (the balancer).
	action, _ := p.URL.Parse(f.Action)
	res := b.PostForm(action.String(), c.LB, f.Values("approve"))
	if res.Status != http.StatusOK || !strings.Contains(res.Text(), approvedText) {
		t.Fatalf("approving on B: %s", res)
	}
	s := c.pollSuccess(t, c.on(2, ch.PollingURL), nil, userAlice)
	// ConsoleMe accepts the token from C, through the balancer.
	expectConsoleMeIdentity(t, plainSend, c.LB, c.Real, cookieHeader(c.cookieName(), s.EncodedJWT), userAlice)
	for i := range c.Instances {
		c.expectPoll(t, c.on(i, ch.PollingURL), nil, "unknown")
	}
}

// TestRedisConcurrentPollersAcrossInstances: 50 pollers spread over three
// instances poll an approved challenge at once; exactly one gets the token.
func TestRedisConcurrentPollersAcrossInstances(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	b := c.loggedInBrowser(t, userAlice)
	for round := 0; round < 2; round++ {
		ch := c.generate(t, userAlice.Email, nil)
		p, f := c.openApproval(t, b, ch.ChallengeURL, userAlice.Email, "127.0.0.1")
		c.approve(t, b, p, f)

		var wg sync.WaitGroup
		var mu sync.Mutex
		counts := map[string]int{}
		start := make(chan struct{})
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				r, err := http.Get(c.on(i%3, ch.PollingURL))
				status := "error"
				if err == nil {
					var m map[string]any
					if decodeJSON(r, &m) == nil {
						status, _ = m["status"].(string)
					}
				}
				mu.Lock()
				counts[status]++
				mu.Unlock()
			}(i)
		}
		close(start)
		wg.Wait()
		if counts["success"] != 1 || counts["unknown"] != 49 {
			t.Errorf("round %d: outcomes %v, want one success and 49 unknown", round, counts)
		}
	}
}

// TestRedisOutageAndRecovery: with Redis stopped the challenge routes answer
// 503 JSON promptly, ConsoleMe traffic is untouched, and service comes back
// by itself when Redis returns.
func TestRedisOutageAndRecovery(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	a := c.Instances[0]
	c.generate(t, userAlice.Email, nil)
	b := c.loggedInBrowser(t, userAlice)
	session := b.CookieValue(c.Base, c.cookieName())

	c.Redis.stop()
	for _, path := range []string{"/noauth/v1/challenge_generator/alice@example.com",
		"/noauth/v1/challenge_poller/" + uuid.NewString()} {
		start := time.Now()
		r := call(t, http.MethodGet, a+path, nil, "")
		took := time.Since(start)
		if r.Status != http.StatusServiceUnavailable || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s with Redis down: %s", path, r)
		}
		if m := r.object(t); m["code"] != "store_unavailable" {
			t.Errorf("%s: body %v", path, m)
		}
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", path)
		}
		if took > 10*time.Second {
			t.Errorf("%s took %v with Redis down: the timeouts do not bound it", path, took)
		}
	}
	// Pass-through does not touch the store: ConsoleMe still answers,
	// and still accepts a session made before the outage.
	if r := call(t, http.MethodGet, a+"/healthcheck", nil, ""); r.Status != http.StatusOK {
		t.Errorf("pass-through during the outage: %s", r)
	}
	expectConsoleMeIdentity(t, plainSend, a, c.Real, cookieHeader(c.cookieName(), session), userAlice)

	c.Redis.start(t)
	if err := testbed.WaitFor(15*time.Second, 200*time.Millisecond, func() error {
		if r := call(t, http.MethodGet, a+"/noauth/v1/challenge_generator/alice@example.com", nil, ""); r.Status != http.StatusOK {
			return fmt.Errorf("the generator answers %s", r)
		}
		return nil
	}); err != nil {
		t.Fatalf("no recovery after Redis came back: %v", err)
	}
	ch := c.generate(t, userAlice.Email, nil)
	c.expectPoll(t, c.on(0, ch.PollingURL), nil, "pending")
	out := c.Caddy.Output()
	if n := strings.Count(out, `"msg":"challenge store unavailable`); n != 1 {
		t.Errorf("the outage was logged %d times, want once:\n%s", n, out)
	}
	if strings.Contains(out, "failed to dial") {
		t.Error("the Redis client logs every failed call itself")
	}
	// The recovery is logged once the store has answered for ten seconds
	// without a failure (flapping is one outage), at the next call.
	if err := testbed.WaitFor(25*time.Second, time.Second, func() error {
		call(t, http.MethodGet, a+"/noauth/v1/challenge_generator/alice@example.com", nil, "")
		if !strings.Contains(c.Caddy.Output(), "challenge store recovered") {
			return errors.New("the recovery was not logged")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// decodeJSON decodes a response body and closes it.
func decodeJSON(r *http.Response, v any) error {
	defer r.Body.Close()
	return json.NewDecoder(r.Body).Decode(v)
}
