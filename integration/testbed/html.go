package testbed

import (
	"bytes"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

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

// Field returns the first control called name, or nil. Setting its Value
// is typing into it: Values and Submit send what it holds.
func (f HTMLForm) Field(name string) *HTMLControl {
	for i := range f.Controls {
		if f.Controls[i].Name == name {
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
