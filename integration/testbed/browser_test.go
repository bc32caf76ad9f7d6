package testbed

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestBrowserFollowAndSubmit walks a form on a page with Referrer-Policy:
// no-referrer through a 303 and a 302, as the demo's approval does: Submit
// with FetchMetadata sends Origin: null and Sec-Fetch-Site, Field changes
// what is sent, and Follow ends on the last page with GETs.
func TestBrowserFollowAndSubmit(t *testing.T) {
	type seen struct{ method, path, origin, site, form string }
	requests := make(chan seen, 20)
	mux := http.NewServeMux()
	mux.HandleFunc("/form", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Referrer-Policy", "origin, no-referrer")
		fmt.Fprint(w, `<form method="post" action="post"><input name="user" value="alice"><input type="password" name="password">`+
			`<button type="submit" id="go" name="decision" value="approve">Go</button></form>`)
	})
	mux.HandleFunc("/post", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		requests <- seen{r.Method, r.URL.Path, r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site"), r.PostForm.Encode()}
		http.Redirect(w, r, "/hop", http.StatusSeeOther)
	})
	mux.HandleFunc("/hop", func(w http.ResponseWriter, r *http.Request) {
		requests <- seen{method: r.Method, path: r.URL.Path}
		http.Redirect(w, r, "/end", http.StatusFound)
	})
	mux.HandleFunc("/end", func(w http.ResponseWriter, r *http.Request) {
		requests <- seen{method: r.Method, path: r.URL.Path}
		fmt.Fprint(w, "<p>the end</p>")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, fetchMetadata := range []bool{false, true} {
		b := NewBrowser(t)
		b.FetchMetadata = fetchMetadata
		p := b.Get(srv.URL + "/form")
		forms := p.Forms()
		if len(forms) != 1 || forms[0].Field("password") == nil || forms[0].Field("nope") != nil {
			t.Fatalf("forms %+v: want one with a password field", forms)
		}
		if got := forms[0].Field("user").Value; got != "alice" {
			t.Errorf("Field(user).Value = %q, want alice", got)
		}
		forms[0].Field("password").Value = "s3cret"
		first := b.Submit(p, forms[0], "go")
		if first.Status != http.StatusSeeOther {
			t.Fatalf("Submit followed the redirect: %s", first)
		}
		end := b.Follow(first)
		if end.Status != http.StatusOK || end.URL.Path != "/end" || end.Method != http.MethodGet || end.Text() != "the end" {
			t.Errorf("Follow ended on %s, want GET /end", end)
		}
		want := seen{http.MethodPost, "/post", srv.URL, "", "decision=approve&password=s3cret&user=alice"}
		if fetchMetadata {
			want.origin, want.site = "null", "same-origin"
		}
		for _, w := range []seen{want, {method: http.MethodGet, path: "/hop"}, {method: http.MethodGet, path: "/end"}} {
			if got := <-requests; got != w {
				t.Errorf("FetchMetadata %v: the server saw %+v, want %+v", fetchMetadata, got, w)
			}
		}
		if again := b.Follow(end); again != end {
			t.Errorf("Follow of a page that is no redirect returned another page: %s", again)
		}
	}
}

// TestBrowserFollowRefuses checks that Follow reports a redirect loop and a
// 307 after a POST instead of looping or turning the POST into a GET.
func TestBrowserFollowRefuses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		default:
			http.Redirect(w, r, "/loop", http.StatusTemporaryRedirect)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name string
		page func(b *Browser) *Page
		want string
	}{
		{"loop", func(b *Browser) *Page { return b.Get(srv.URL + "/loop") }, "more than 10 redirects"},
		{"307 after a POST", func(b *Browser) *Page { return b.PostForm(srv.URL+"/post", "", url.Values{}) }, "repeat the POST"},
	} {
		f := &recorder{}
		b := NewBrowser(f)
		b.Follow(tc.page(b))
		if !strings.Contains(f.failure, tc.want) {
			t.Errorf("%s: Follow reported %q, want %q", tc.name, f.failure, tc.want)
		}
	}
}

// recorder is a Failer that keeps the first failure instead of ending the
// test.
type recorder struct{ failure string }

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	if r.failure == "" {
		r.failure = fmt.Sprintf(format, args...)
	}
}

func TestFetchSite(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{"http://127.0.0.1:8480/a", "http://127.0.0.1:8480/b", "same-origin"},
		{"http://localhost:8481/sso", "http://localhost:8480/saml/acs", "same-site"},
		{"https://idp.example.com/sso", "https://app.example.com/acs", "same-site"},
		{"http://localhost:8481/sso", "http://127.0.0.1:8480/saml/acs", "cross-site"},
		{"http://example.com/", "https://example.com/", "cross-site"},
		{"https://a.github.io/", "https://b.github.io/", "cross-site"},
	} {
		from, _ := url.Parse(tc.from)
		to, _ := url.Parse(tc.to)
		if got := FetchSite(from, to); got != tc.want {
			t.Errorf("FetchSite(%s, %s) = %s, want %s", tc.from, tc.to, got, tc.want)
		}
	}
}
