package testbed

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"golang.org/x/net/html"
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
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(values.Encode()))
	if err != nil {
		b.t.Fatalf("%v", err)
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
func (b *Browser) Submit(p *Page, form HTMLForm, clickID string) *Page {
	b.t.Helper()
	action, err := p.URL.Parse(form.Action)
	if err != nil {
		b.t.Fatalf("form action %q: %v", form.Action, err)
	}
	return b.PostForm(action.String(), Origin(p.URL), form.Values(clickID))
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

// HTMLForm is a <form> and its controls.
type HTMLForm struct {
	ID       string
	Action   string
	Method   string // as written, lower-cased; "" if absent
	Controls []HTMLControl
}

// HTMLControl is an <input>, <button>, <select> or <textarea>.
type HTMLControl struct {
	Tag   string
	Type  string // lower-cased; "submit" for a <button> without type
	ID    string
	Name  string
	Value string
}

func (c HTMLControl) IsSubmit() bool {
	return (c.Tag == "input" || c.Tag == "button") && (c.Type == "submit" || c.Type == "image")
}

// Control returns the first control with the given id, or nil.
func (f HTMLForm) Control(id string) *HTMLControl {
	for i := range f.Controls {
		if f.Controls[i].ID == id {
			return &f.Controls[i]
		}
	}
	return nil
}

// Hidden returns the form's hidden inputs by name.
func (f HTMLForm) Hidden() map[string]string {
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
func (f HTMLForm) Values(clickID string) url.Values {
	v := url.Values{}
	for _, c := range f.Controls {
		if c.Name == "" {
			continue
		}
		if c.IsSubmit() {
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

// ParseForms finds every form in an HTML document. Controls outside any
// form are ignored.
func ParseForms(body []byte) []HTMLForm {
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return nil
	}
	var forms []HTMLForm
	var walk func(n *html.Node, form *HTMLForm)
	walk = func(n *html.Node, form *HTMLForm) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				f := HTMLForm{ID: attr(n, "id"), Action: attr(n, "action"), Method: strings.ToLower(attr(n, "method"))}
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c, &f)
				}
				forms = append(forms, f)
				return
			case "input", "button", "select", "textarea":
				if form != nil {
					c := HTMLControl{Tag: n.Data, Type: strings.ToLower(attr(n, "type")), ID: attr(n, "id"), Name: attr(n, "name"), Value: attr(n, "value")}
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

// HTMLText is the visible text of an HTML document with runs of whitespace
// collapsed to one space.
func HTMLText(body []byte) string {
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(nodeText(doc)), " ")
}
