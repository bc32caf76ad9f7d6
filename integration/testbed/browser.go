package testbed

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// Failer is what a Browser reports a failed step to: a *testing.T, or
// anything else with these methods.
type Failer interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Browser is a browser-like HTTP client: it keeps cookies like a browser
// (per host, not per port, exactly as browsers do) but never follows a
// redirect by itself, so tests see and check every hop. A step that fails
// (no answer, a bad URL) is reported to its Failer.
type Browser struct {
	t      Failer
	client *http.Client
	jar    *cookiejar.Jar
	// Header is added to every request, e.g. X-Forwarded-For to appear to
	// come from another client IP.
	Header http.Header
	// FetchMetadata makes Submit send what a current browser sends with a
	// form: Sec-Fetch-Site, and "Origin: null" when the form's page has
	// Referrer-Policy: no-referrer (the Fetch standard's "append a request
	// Origin header"; Chromium does exactly that).
	FetchMetadata bool
}

func NewBrowser(t Failer) *Browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &Browser{
		t:   t,
		jar: jar,
		client: &http.Client{
			Jar: jar,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		Header: http.Header{},
	}
}

// Page is one response, fully read.
type Page struct {
	Method string
	URL    *url.URL // the request URL
	Status int
	Header http.Header
	Body   []byte
	// SetCookies are the cookies this response set.
	SetCookies []*http.Cookie
}

func (p *Page) String() string {
	body := string(p.Body)
	if len(body) > 2000 {
		body = body[:2000] + "…"
	}
	return fmt.Sprintf("%s %s -> %d\n%v\n%s", p.Method, p.URL, p.Status, p.Header, body)
}

// Location resolves the Location header against the request URL.
func (p *Page) Location() *url.URL {
	loc := p.Header.Get("Location")
	if loc == "" {
		return nil
	}
	u, err := p.URL.Parse(loc)
	if err != nil {
		return nil
	}
	return u
}

// Cookie returns the cookie called name that this response set, or nil.
func (p *Page) Cookie(name string) *http.Cookie {
	for _, c := range p.SetCookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Text is the Page's visible text with whitespace collapsed.
func (p *Page) Text() string { return HTMLText(p.Body) }

// Forms are the Page's forms.
func (p *Page) Forms() []HTMLForm { return ParseForms(p.Body) }

func (b *Browser) do(req *http.Request) *Page {
	b.t.Helper()
	for k, vs := range b.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("reading %s %s: %v", req.Method, req.URL, err)
	}
	return &Page{Method: req.Method, URL: req.URL, Status: resp.StatusCode, Header: resp.Header, Body: body, SetCookies: resp.Cookies()}
}

// Get loads a URL as a browser navigation.
func (b *Browser) Get(rawURL string) *Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatalf("%v", err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	return b.do(req)
}

// PostForm submits a form as a browser does, with the Origin of the page
// the form came from.
func (b *Browser) PostForm(rawURL, origin string, values url.Values) *Page {
	b.t.Helper()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	return b.post(rawURL, h, values)
}

func (b *Browser) post(rawURL string, header http.Header, values url.Values) *Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(values.Encode()))
	if err != nil {
		b.t.Fatalf("%v", err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	return b.do(req)
}

// Submit submits form, found on p, by clicking the submit control whose id
// is clickID ("" for none), resolving the action against the page's URL.
func (b *Browser) Submit(p *Page, form HTMLForm, clickID string) *Page {
	b.t.Helper()
	action, err := p.URL.Parse(form.Action)
	if err != nil {
		b.t.Fatalf("form action %q: %v", form.Action, err)
	}
	if !b.FetchMetadata {
		return b.PostForm(action.String(), Origin(p.URL), form.Values(clickID))
	}
	h := http.Header{}
	h.Set("Origin", Origin(p.URL))
	if referrerPolicy(p.Header) == "no-referrer" {
		h.Set("Origin", "null")
	}
	h.Set("Sec-Fetch-Site", FetchSite(p.URL, action))
	return b.post(action.String(), h, form.Values(clickID))
}

// Follow follows p's redirects as a browser navigation does and returns
// the page it ends on (p itself when p is no redirect). Each hop is a GET:
// 301, 302 and 303 turn a POST into one; a 307 or 308 after a POST, which
// a browser would post again, is reported as a failed step, and so are
// more than 10 hops. A redirect without a Location is an answer, as for
// net/http's client.
func (b *Browser) Follow(p *Page) *Page {
	b.t.Helper()
	for hops := 0; ; hops++ {
		switch p.Status {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther:
		case http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			if p.Method != http.MethodGet && p.Method != http.MethodHead {
				b.t.Fatalf("%s %s: a %d asks to repeat the %s, which Follow does not do", p.Method, p.URL, p.Status, p.Method)
				return p
			}
		default:
			return p
		}
		loc := p.Location()
		if loc == nil {
			return p
		}
		if hops == 10 {
			b.t.Fatalf("%s %s: more than 10 redirects", p.Method, p.URL)
			return p
		}
		p = b.Get(loc.String())
	}
}

// referrerPolicy is the policy a Referrer-Policy header sets: the last
// token a browser knows, as the header may list fallbacks.
func referrerPolicy(h http.Header) string {
	policy := ""
	for _, v := range h.Values("Referrer-Policy") {
		for _, tok := range strings.Split(v, ",") {
			switch tok = strings.ToLower(strings.TrimSpace(tok)); tok {
			case "no-referrer", "no-referrer-when-downgrade", "same-origin", "origin",
				"strict-origin", "origin-when-cross-origin", "strict-origin-when-cross-origin", "unsafe-url":
				policy = tok
			}
		}
	}
	return policy
}

// FetchSite is the Sec-Fetch-Site a browser sends with a request from a
// page at from to to: same-origin, same-site (same scheme and registrable
// domain, or the same IP address or single-label host such as localhost,
// on another port), or cross-site.
func FetchSite(from, to *url.URL) string {
	if Origin(from) == Origin(to) {
		return "same-origin"
	}
	if from.Scheme == to.Scheme && site(from.Hostname()) == site(to.Hostname()) {
		return "same-site"
	}
	return "cross-site"
}

// site is host's registrable domain, or host itself when it has none.
func site(host string) string {
	host = strings.ToLower(host)
	if net.ParseIP(host) != nil {
		return host
	}
	if s, err := publicsuffix.EffectiveTLDPlusOne(host); err == nil {
		return s
	}
	return host
}

// CookieValue returns the value of the cookie the Browser would send to
// rawURL under name, or "".
func (b *Browser) CookieValue(rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		b.t.Fatalf("%v", err)
	}
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// SetCookie puts a cookie into the jar for rawURL, host-only with Path=/.
func (b *Browser) SetCookie(rawURL, name, value string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		b.t.Fatalf("%v", err)
	}
	b.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// Origin is scheme://host[:port] of u, as a browser sends in Origin.
func Origin(u *url.URL) string { return u.Scheme + "://" + u.Host }
