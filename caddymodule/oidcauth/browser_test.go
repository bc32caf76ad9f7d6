package oidcauth

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"golang.org/x/net/html"
)

// browser signs a user in at the test provider the way a person would:
// it follows the redirects from the authorization URL, fills in the
// provider's login form (any password) and confirms its consent form,
// and stops at the redirect to testBase/oidc/callback, whose query it
// returns.
func browser(t *testing.T, authURL, login string) Callback {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	var callback *url.URL
	client := &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), testBase+"/") {
				callback = req.URL
				return http.ErrUseLastResponse
			}
			if len(via) > 10 {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	resp, err := client.Get(authURL)
	for step := 0; ; step++ {
		if err != nil {
			t.Fatalf("browser: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if callback != nil {
			return CallbackFromQuery(callback.Query())
		}
		if step == 5 {
			t.Fatalf("browser: no callback after %d forms; last page %s:\n%s", step, resp.Request.URL, body)
		}
		action, fields := firstForm(t, string(body))
		if action == "" {
			t.Fatalf("browser: no form at %s (%s):\n%s", resp.Request.URL, resp.Status, body)
		}
		if _, ok := fields["login"]; ok {
			fields.Set("login", login)
			fields.Set("password", "any")
		}
		target, err := resp.Request.URL.Parse(action)
		if err != nil {
			t.Fatal(err)
		}
		resp, err = client.PostForm(target.String(), fields)
	}
}

// firstForm returns the action of the first form of a page and its input
// fields with their values.
func firstForm(t *testing.T, page string) (string, url.Values) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var action string
	fields := url.Values{}
	var walk func(n *html.Node, inForm bool)
	found := false
	walk = func(n *html.Node, inForm bool) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				if found {
					return
				}
				found, inForm = true, true
				action = attr(n, "action")
			case "input":
				if inForm && attr(n, "name") != "" {
					fields.Set(attr(n, "name"), attr(n, "value"))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inForm)
		}
	}
	walk(doc, false)
	return action, fields
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// newLoaded makes a Provider for cfg (issuer and client filled in by the
// caller), runs it until the test ends and waits until it is loaded.
func newLoaded(t *testing.T, cfg Config, prepare ...func(*Provider)) *Provider {
	t.Helper()
	p, err := New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	p.RetryFirst, p.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	for _, f := range prepare {
		f(p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitLoaded(t, p)
	return p
}

func waitLoaded(t *testing.T, p *Provider) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !p.Loaded() {
		if time.Now().After(deadline) {
			t.Fatal("the provider's discovery document was not loaded within 15 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// secretConfig is the Config of secretClient at o.
func secretConfig(o *op) Config {
	return Config{Issuer: o.Issuer, ClientID: secretClient, ClientSecret: clientSecret, GroupsClaim: "groups"}
}

// login starts a login at p and signs user in at the provider, returning
// the login and the callback.
func login(t *testing.T, p *Provider, user string) (*Login, Callback) {
	t.Helper()
	l, err := p.AuthCodeURL(testBase)
	if err != nil {
		t.Fatal(err)
	}
	return l, browser(t, l.URL, user)
}
