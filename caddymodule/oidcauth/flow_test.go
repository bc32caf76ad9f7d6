package oidcauth

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"
)

// shared starts a provider signing with one key, for the tests that do
// not change its keys.
func shared(t *testing.T) *op {
	t.Helper()
	return startOP(t, 0, newTestKey(t, "k1"))
}

// mustRefuse checks that err is a *Refusal with message msg.
func mustRefuse(t *testing.T, err error, msg string) *Refusal {
	t.Helper()
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("got %v (%T), want a refusal", err, err)
	}
	if msg != "" && r.Message != msg {
		t.Fatalf("refusal message %q, want %q (reason: %s)", r.Message, msg, r.Reason)
	}
	t.Logf("refused as expected: %s", r.Reason)
	return r
}

func TestSignIn(t *testing.T) {
	o := shared(t)
	cases := []struct {
		name, user string
		cfg        func(Config) Config
		email      string
		groups     []string
	}{
		{"client_secret_basic, groups from the ID token", "alice", func(c Config) Config { return c },
			"alice@example.com", []string{"admins", "devs"}},
		{"client_secret_post", "alice", func(c Config) Config { c.ClientID = postClient; return c },
			"alice@example.com", []string{"admins", "devs"}},
		{"groups from userinfo", "alice", func(c Config) Config { c.GroupsClaim, c.GroupsFromUserinfo = "ui_groups", true; return c },
			"alice@example.com", []string{"from-userinfo"}},
		{"email from userinfo, one group as a string", "carol", func(c Config) Config { c.EmailClaim = "ui_email"; return c },
			"carol@example.com", []string{"solo"}},
		{"private_key_jwt", "alice", func(c Config) Config {
			c.ClientID, c.ClientSecret, c.PrivateKeyFile = jwtClient, "", o.ClientKey.path
			return c
		}, "alice@example.com", []string{"admins", "devs"}},
		{"no groups claim", "alice", func(c Config) Config { c.GroupsClaim = ""; return c },
			"alice@example.com", []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newLoaded(t, tc.cfg(secretConfig(o)))
			l, cb := login(t, p, tc.user)
			id, err := p.Exchange(context.Background(), testBase, cb, l.Expect(), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if id.Email != tc.email || !slices.Equal(id.Groups, tc.groups) {
				t.Errorf("identity %q %q, want %q %q", id.Email, id.Groups, tc.email, tc.groups)
			}
			if id.Subject != tc.user || id.Issuer != o.Issuer || id.IDToken == "" || time.Until(id.Expiry) <= 0 {
				t.Errorf("identity %+v", id)
			}
		})
	}
}

func TestAuthorizationRequest(t *testing.T) {
	o := shared(t)
	p := newLoaded(t, secretConfig(o))
	l, err := p.AuthCodeURL(testBase)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(l.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	want := map[string]string{
		"response_type": "code", "client_id": secretClient, "redirect_uri": testBase + "/oidc/callback",
		"scope": "openid email profile", "state": l.State, "nonce": l.Nonce, "code_challenge_method": "S256",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if q.Get("code_challenge") == "" || len(l.State) < 40 || len(l.Nonce) < 40 || len(l.PKCEVerifier) < 43 {
		t.Errorf("weak or missing login secrets: %+v", l)
	}
	l2, _ := p.AuthCodeURL(testBase)
	if l2.State == l.State || l2.Nonce == l.Nonce || l2.PKCEVerifier == l.PKCEVerifier {
		t.Error("two logins share a secret")
	}
}

func TestRefusedCallbacks(t *testing.T) {
	o := shared(t)
	p := newLoaded(t, secretConfig(o))
	ctx := context.Background()

	t.Run("replayed code", func(t *testing.T) {
		l, cb := login(t, p, "alice")
		if _, err := p.Exchange(ctx, testBase, cb, l.Expect(), time.Now()); err != nil {
			t.Fatal(err)
		}
		_, err := p.Exchange(ctx, testBase, cb, l.Expect(), time.Now())
		mustRefuse(t, err, MessageCodeRejected)
	})
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		l, cb := login(t, p, "alice")
		other, _ := p.AuthCodeURL(testBase)
		exp := l.Expect()
		exp.PKCEVerifier = other.PKCEVerifier
		_, err := p.Exchange(ctx, testBase, cb, exp, time.Now())
		mustRefuse(t, err, MessageCodeRejected)
	})
	t.Run("nonce of another login", func(t *testing.T) {
		l, cb := login(t, p, "alice")
		other, _ := p.AuthCodeURL(testBase)
		exp := l.Expect()
		exp.Nonce = other.Nonce
		_, err := p.Exchange(ctx, testBase, cb, exp, time.Now())
		mustRefuse(t, err, MessageNotAccepted)
	})
	t.Run("state of another login", func(t *testing.T) {
		// The caller looks the LoginState up by the callback's state, so a
		// mismatch means it found another login's: Exchange compares them.
		l, cb := login(t, p, "alice")
		other, _ := p.AuthCodeURL(testBase)
		_, err := p.Exchange(ctx, testBase, cb, other.Expect(), time.Now())
		mustRefuse(t, err, MessageNotStarted)
		// The code was not spent: the right login still completes.
		if _, err := p.Exchange(ctx, testBase, cb, l.Expect(), time.Now()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no login state", func(t *testing.T) {
		_, cb := login(t, p, "alice")
		_, err := p.Exchange(ctx, testBase, cb, LoginState{}, time.Now())
		mustRefuse(t, err, MessageNotStarted)
	})
	t.Run("code of another client", func(t *testing.T) {
		q := newLoaded(t, Config{Issuer: o.Issuer, ClientID: postClient, ClientSecret: clientSecret})
		l, cb := login(t, q, "alice")
		_, err := p.Exchange(ctx, testBase, cb, l.Expect(), time.Now())
		mustRefuse(t, err, MessageCodeRejected)
	})
	t.Run("wrong client secret", func(t *testing.T) {
		cfg := secretConfig(o)
		cfg.ClientSecret = "wrong"
		q := newLoaded(t, cfg)
		l, cb := login(t, q, "alice")
		_, err := q.Exchange(ctx, testBase, cb, l.Expect(), time.Now())
		mustRefuse(t, err, MessageNotAccepted)
	})
	t.Run("email not verified", func(t *testing.T) {
		l, cb := login(t, p, "dave")
		_, err := p.Exchange(ctx, testBase, cb, l.Expect(), time.Now())
		mustRefuse(t, err, MessageEmailNotVerified)
	})
	t.Run("no email", func(t *testing.T) {
		l, cb := login(t, p, "erin")
		_, err := p.Exchange(ctx, testBase, cb, l.Expect(), time.Now())
		mustRefuse(t, err, MessageNoEmail)
	})
	t.Run("provider error", func(t *testing.T) {
		l, _ := p.AuthCodeURL(testBase)
		cb := Callback{State: l.State, Error: "access_denied", ErrorDescription: "user cancelled"}
		_, err := p.Exchange(ctx, testBase, cb, l.Expect(), time.Now())
		mustRefuse(t, err, MessageProviderError)
	})
	t.Run("iss of another provider", func(t *testing.T) {
		l, cb := login(t, p, "alice")
		if cb.Issuer != o.Issuer {
			t.Errorf("callback iss %q, want %q", cb.Issuer, o.Issuer)
		}
		cb.Issuer = "https://evil.example"
		_, err := p.Exchange(ctx, testBase, cb, l.Expect(), time.Now())
		mustRefuse(t, err, MessageNotAccepted)
		cb.Issuer = "" // the provider advertises that it always sends iss
		_, err = p.Exchange(ctx, testBase, cb, l.Expect(), time.Now())
		mustRefuse(t, err, MessageNotAccepted)
	})
}
