package oidcauth

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"
)

func TestNotLoaded(t *testing.T) {
	p, err := New(Config{Issuer: "http://127.0.0.1:9", ClientID: "c", ClientSecret: "s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Loaded() {
		t.Fatal("loaded before Run")
	}
	if _, err := p.AuthCodeURL(testBase); !errors.Is(err, ErrNotLoaded) {
		t.Errorf("AuthCodeURL: %v, want ErrNotLoaded", err)
	}
	exp := LoginState{State: "s", Nonce: "n", PKCEVerifier: "v"}
	if _, err := p.Exchange(context.Background(), testBase, Callback{Code: "c", State: "s"}, exp, time.Now()); !errors.Is(err, ErrNotLoaded) {
		t.Errorf("Exchange: %v, want ErrNotLoaded", err)
	}
	if _, ok := p.LogoutURL(postLogout, ""); ok {
		t.Error("LogoutURL offered before discovery")
	}
}

// freePort returns a loopback port nothing listens on, for now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestRunRetriesUntilTheProviderAnswers starts the relying party before
// the provider: Run retries with backoff and loads as soon as it answers.
func TestRunRetriesUntilTheProviderAnswers(t *testing.T) {
	needNode(t)
	port := freePort(t)
	p, err := New(Config{Issuer: "http://127.0.0.1:" + itoa(port), ClientID: secretClient, ClientSecret: clientSecret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.RetryFirst, p.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(300 * time.Millisecond)
	if p.Loaded() {
		t.Fatal("loaded while no provider listens")
	}
	startOP(t, port, newTestKey(t, "k1"))
	waitLoaded(t, p)
}

// TestRunKeepsTheLastGoodCopy stops the provider: logins still start from
// the last discovery document, and an exchange that cannot reach the
// provider is an error, not a refusal.
func TestRunKeepsTheLastGoodCopy(t *testing.T) {
	o := startOP(t, 0, newTestKey(t, "k1"))
	cfg := secretConfig(o)
	cfg.DiscoveryRefresh = 50 * time.Millisecond
	p := newLoaded(t, cfg)
	o.Stop()
	time.Sleep(400 * time.Millisecond)
	if !p.Loaded() {
		t.Fatal("the last good copy was dropped")
	}
	l, err := p.AuthCodeURL(testBase)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Exchange(context.Background(), testBase, Callback{Code: "c", State: l.State, Issuer: o.Issuer}, l.Expect(), time.Now())
	var r *Refusal
	if err == nil || errors.As(err, &r) {
		t.Fatalf("Exchange with the provider down: %v, want a plain error", err)
	}
}

// TestIssuerMismatchNeverLoads configures the issuer with a trailing
// slash the provider does not use: the discovery document is refused.
func TestIssuerMismatchNeverLoads(t *testing.T) {
	o := startOP(t, 0, newTestKey(t, "k1"))
	p, err := New(Config{Issuer: o.Issuer + "/", ClientID: secretClient, ClientSecret: clientSecret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.RetryFirst, p.RetryMax = 20*time.Millisecond, 50*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	p.Run(ctx)
	if p.Loaded() {
		t.Fatal("loaded a discovery document naming another issuer")
	}
}

// TestLogout follows LogoutURL at the provider, which ends its session and
// sends the browser to the registered post-logout URL.
func TestLogout(t *testing.T) {
	o := startOP(t, 0, newTestKey(t, "k1"))
	p := newLoaded(t, secretConfig(o))
	l, cb := login(t, p, "alice")
	id, err := p.Exchange(context.Background(), testBase, cb, l.Expect(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, hint := range []string{id.IDToken, ""} {
		u, ok := p.LogoutURL(postLogout, hint)
		if !ok {
			t.Fatal("no LogoutURL though the provider has an end_session_endpoint")
		}
		parsed, _ := url.Parse(u)
		if q := parsed.Query(); q.Get("client_id") != secretClient || q.Get("post_logout_redirect_uri") != postLogout || q.Get("id_token_hint") != hint {
			t.Errorf("LogoutURL query %v", q)
		}
		if back := browser(t, u, ""); back.Error != "" {
			t.Errorf("provider's logout answered error %q", back.Error)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
