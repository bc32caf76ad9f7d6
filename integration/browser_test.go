package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// browser is a browser-like HTTP client: it keeps cookies like a browser
// (per host, not per port, exactly as browsers do) but never follows a
// redirect by itself, so tests see and check every hop.
type browser struct {
	t      testing.TB
	client *http.Client
	jar    *cookiejar.Jar
	// Header is added to every request, e.g. X-Forwarded-For to appear to
	// come from another client IP.
	Header http.Header
}

func newBrowser(t testing.TB) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{
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

// page is one response, fully read.
type page struct {
	Method string
	URL    *url.URL // the request URL
	Status int
	Header http.Header
	Body   []byte
	// SetCookies are the cookies this response set.
	SetCookies []*http.Cookie
}

func (p *page) String() string {
	body := string(p.Body)
	if len(body) > 2000 {
		body = body[:2000] + "…"
	}
	return fmt.Sprintf("%s %s -> %d\n%v\n%s", p.Method, p.URL, p.Status, p.Header, body)
}

// Location resolves the Location header against the request URL.
func (p *page) Location() *url.URL {
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
func (p *page) Cookie(name string) *http.Cookie {
	for _, c := range p.SetCookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Text is the page's visible text with whitespace collapsed.
func (p *page) Text() string { return htmlText(p.Body) }

// Forms are the page's forms.
func (p *page) Forms() []htmlForm { return parseForms(p.Body) }

func (b *browser) do(req *http.Request) *page {
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
	return &page{Method: req.Method, URL: req.URL, Status: resp.StatusCode, Header: resp.Header, Body: body, SetCookies: resp.Cookies()}
}

// Get loads a URL as a browser navigation.
func (b *browser) Get(rawURL string) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	return b.do(req)
}

// PostForm submits a form as a browser does, with the Origin of the page
// the form came from.
func (b *browser) PostForm(rawURL, origin string, values url.Values) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(values.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return b.do(req)
}

// Submit submits form, found on p, by clicking the submit control whose id
// is clickID ("" for none), resolving the action against the page's URL.
func (b *browser) Submit(p *page, form htmlForm, clickID string) *page {
	b.t.Helper()
	action, err := p.URL.Parse(form.Action)
	if err != nil {
		b.t.Fatalf("form action %q: %v", form.Action, err)
	}
	return b.PostForm(action.String(), origin(p.URL), form.Values(clickID))
}

// CookieValue returns the value of the cookie the browser would send to
// rawURL under name, or "".
func (b *browser) CookieValue(rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// SetCookie puts a cookie into the jar for rawURL, host-only with Path=/.
func (b *browser) SetCookie(rawURL, name, value string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		b.t.Fatal(err)
	}
	b.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// origin is scheme://host[:port] of u, as a browser sends in Origin.
func origin(u *url.URL) string { return u.Scheme + "://" + u.Host }

// htmlForm is a <form> and its controls.
type htmlForm struct {
	ID       string
	Action   string
	Method   string // as written, lower-cased; "" if absent
	Controls []htmlControl
}

// htmlControl is an <input>, <button>, <select> or <textarea>.
type htmlControl struct {
	Tag   string
	Type  string // lower-cased; "submit" for a <button> without type
	ID    string
	Name  string
	Value string
}

func (c htmlControl) isSubmit() bool {
	return (c.Tag == "input" || c.Tag == "button") && (c.Type == "submit" || c.Type == "image")
}

// Control returns the first control with the given id, or nil.
func (f htmlForm) Control(id string) *htmlControl {
	for i := range f.Controls {
		if f.Controls[i].ID == id {
			return &f.Controls[i]
		}
	}
	return nil
}

// Hidden returns the form's hidden inputs by name.
func (f htmlForm) Hidden() map[string]string {
	m := map[string]string{}
	for _, c := range f.Controls {
		if c.Tag == "input" && c.Type == "hidden" && c.Name != "" {
			m[c.Name] = c.Value
		}
	}
	return m
}

// Values is what a browser submits: every named control except checkboxes,
// radios, files and buttons, plus the clicked submit control if named.
func (f htmlForm) Values(clickID string) url.Values {
	v := url.Values{}
	for _, c := range f.Controls {
		if c.Name == "" {
			continue
		}
		if c.isSubmit() {
			if clickID != "" && c.ID == clickID {
				v.Add(c.Name, c.Value)
			}
			continue
		}
		switch c.Type {
		case "checkbox", "radio", "file", "button", "reset":
			continue
		}
		v.Add(c.Name, c.Value)
	}
	return v
}

// parseForms finds every form in an HTML document. Controls outside any
// form are ignored.
func parseForms(body []byte) []htmlForm {
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return nil
	}
	var forms []htmlForm
	var walk func(n *html.Node, form *htmlForm)
	walk = func(n *html.Node, form *htmlForm) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				f := htmlForm{ID: attr(n, "id"), Action: attr(n, "action"), Method: strings.ToLower(attr(n, "method"))}
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c, &f)
				}
				forms = append(forms, f)
				return
			case "input", "button", "select", "textarea":
				if form != nil {
					c := htmlControl{Tag: n.Data, Type: strings.ToLower(attr(n, "type")), ID: attr(n, "id"), Name: attr(n, "name"), Value: attr(n, "value")}
					if c.Tag == "input" && c.Type == "" {
						c.Type = "text"
					}
					if c.Tag == "button" && c.Type == "" {
						c.Type = "submit"
					}
					if c.Tag == "textarea" {
						c.Value = nodeText(n)
					}
					form.Controls = append(form.Controls, c)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, form)
		}
	}
	walk(doc, nil)
	return forms
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// blockTags separate their text from the text around them; inline
// elements (strong, code, span, a...) do not.
var blockTags = map[string]bool{
	"address": true, "article": true, "aside": true, "blockquote": true, "body": true, "br": true,
	"button": true, "dd": true, "div": true, "dl": true, "dt": true, "footer": true, "form": true,
	"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true, "header": true, "hr": true,
	"li": true, "main": true, "nav": true, "ol": true, "p": true, "pre": true, "section": true,
	"table": true, "td": true, "th": true, "title": true, "tr": true, "ul": true,
}

// nodeText is the text under n, without scripts and styles.
func nodeText(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "script" || n.Data == "style") {
			return
		}
		block := n.Type == html.ElementNode && blockTags[n.Data]
		if block {
			b.WriteByte(' ')
		}
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
		if block {
			b.WriteByte(' ')
		}
	}
	walk(n)
	return b.String()
}

// htmlText is the visible text of an HTML document with runs of whitespace
// collapsed to one space.
func htmlText(body []byte) string {
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(nodeText(doc)), " ")
}
