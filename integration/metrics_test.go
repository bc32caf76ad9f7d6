package integration

import (
	"bufio"
	"fmt"
	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads the admin endpoint's Prometheus metrics into name{labels} → value.
func scrape(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, "consoleme_auth_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// TestMetricsAfterFlowAndReload: the module's metrics appear at Caddy's
// metrics endpoint, count a whole login, and keep counting (from where they
// were, with no registration error) after a config reload.
func TestMetricsAfterFlowAndReload(t *testing.T) {
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	e := newEnv(t, func(c *moduleConfig) { c.AdminAddr = admin })
	login := func() {
		ch := e.generate(t, userAlice.Email, nil)
		e.expectPoll(t, ch.PollingURL, fromOtherIP(), "unauthorized")
		b := newBrowser(t)
		e.login(t, b, userAlice, ch.ChallengeURL)
		p, f := e.openApproval(t, b, ch.ChallengeURL, userAlice.Email, "127.0.0.1")
		e.approve(t, b, p, f)
		e.pollSuccess(t, ch.PollingURL, nil, userAlice)
	}
	login()
	m := scrape(t, admin)
	for name, want := range map[string]float64{
		"consoleme_auth_challenges_created_total":                             1,
		"consoleme_auth_challenges_approved_total":                            1,
		"consoleme_auth_challenges_collected_total":                           1,
		`consoleme_auth_saml_logins_total{result="success"}`:                  1,
		`consoleme_auth_challenges_refused_total{reason="poller ip differs"}`: 1,
	} {
		if got := m[name]; got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if m[`consoleme_auth_request_duration_seconds_count{route="poller"}`] < 2 {
		t.Errorf("poller latency not observed: %v", m)
	}
	before := m["consoleme_auth_challenges_collected_total"]

	// Reload a changed config through the admin API (an unchanged one
	// would not be reprovisioned): no duplicate registration, counts kept.
	changed := e.Caddy.Caddyfile
	site := changed.Sites[0]
	auth := *site.Auth
	auth.MaxPending = 9999
	site.Auth = &auth
	changed.Sites = []testbed.Site{site}
	cfg := changed.String()
	if cfg == e.Caddy.Config {
		t.Fatal("could not change the config")
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+admin+"/load", strings.NewReader(cfg))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reload: %d %s", resp.StatusCode, body)
	}
	if m := scrape(t, admin); m["consoleme_auth_challenges_collected_total"] != before {
		t.Errorf("after reload collected = %v, want %v", m["consoleme_auth_challenges_collected_total"], before)
	}
	// The reloaded module fetches the IdP's metadata again in the
	// background; log in once it has.
	if err := testbed.WaitFor(20*time.Second, 20*time.Millisecond, func() error {
		if n := strings.Count(e.Caddy.Output(), "IdP metadata loaded"); n < 2 {
			return fmt.Errorf("Caddy logged \"IdP metadata loaded\" %d times, want a second time after the reload", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	login()
	if m := scrape(t, admin); m["consoleme_auth_challenges_collected_total"] != before+1 {
		t.Errorf("after reload and a login collected = %v, want %v", m["consoleme_auth_challenges_collected_total"], before+1)
	}
	if !strings.Contains(e.Caddy.Output(), "load complete") {
		t.Errorf("Caddy did not reload:\n%s", e.Caddy.Output())
	}
	if strings.Contains(e.Caddy.Output(), "duplicate metrics collector registration") {
		t.Error("duplicate registration on reload")
	}
}
