package samlauth

import (
	"fmt"
	"strings"

	"github.com/beevik/etree"
)

// The namespaces of the SAML messages and their parts.
const (
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
	nsXMLEnc    = "http://www.w3.org/2001/04/xmlenc#"
	nsXMLEnc11  = "http://www.w3.org/2009/xmlenc11#"
	nsXSI       = "http://www.w3.org/2001/XMLSchema-instance"
	nsXS        = "http://www.w3.org/2001/XMLSchema"
	nsXML       = "http://www.w3.org/XML/1998/namespace"
)

// wellKnownPrefixes are the prefixes normalizeNamespaces gives the usual
// namespaces, so that QName values such as xsi:type="xs:string" keep
// reading as they did.
var wellKnownPrefixes = map[string]string{
	nsProtocol: "samlp", nsAssertion: "saml", nsDSig: "ds", nsXMLEnc: "xenc",
	nsXMLEnc11: "xenc11", nsXSI: "xsi", nsXS: "xs",
	"http://www.w3.org/2001/10/xml-exc-c14n#": "ec",
}

// childNS returns the first child element of el with the local name local
// in the namespace ns, whatever its prefix, or nil.
func childNS(el *etree.Element, ns, local string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == ns {
			return c
		}
	}
	return nil
}

// isNS reports whether el has the local name local in the namespace ns.
func isNS(el *etree.Element, ns, local string) bool {
	return el != nil && el.Tag == local && el.NamespaceURI() == ns
}

// inScopeNamespaces returns the namespace declarations in scope at el,
// prefix to URI ("" for the default namespace).
func inScopeNamespaces(el *etree.Element) map[string]string {
	var chain []*etree.Element
	for e := el; e != nil; e = e.Parent() {
		chain = append(chain, e)
	}
	ns := map[string]string{}
	for i := len(chain) - 1; i >= 0; i-- {
		for _, a := range chain[i].Attr {
			switch {
			case a.Space == "xmlns":
				ns[a.Key] = a.Value
			case a.Space == "" && a.Key == "xmlns":
				ns[""] = a.Value
			}
		}
	}
	return ns
}

// normalizeNamespaces returns a copy of root in which each namespace has
// one prefix, declared on the root, and no other element declares any.
//
// A valid document may bind a prefix to different namespaces in different
// places (Namespaces in XML, section 6.1): an IdP may use ns0 for the
// protocol on Response and for XML Encryption inside it. crewjam/saml
// re-serialises elements with every prefix of the document declared on one
// element, the last binding winning, and then reads the wrong namespace.
// The copy keeps every element's and attribute's namespace, local name,
// value and text, and rewrites the prefix of xsi:type values; only the
// prefixes change, so signatures must be checked on the original. Each
// element of root that is a key of substitute is replaced by its value (a
// decrypted assertion), read in its own namespace context.
func normalizeNamespaces(root *etree.Element, substitute map[*etree.Element]*etree.Element) (*etree.Element, error) {
	n := &normalizer{prefixOf: map[string]string{}, taken: map[string]bool{}, substitute: substitute}
	out, err := n.element(root, map[string]string{})
	if err != nil {
		return nil, err
	}
	decls := make([]etree.Attr, 0, len(n.order))
	for _, uri := range n.order {
		decls = append(decls, etree.Attr{Space: "xmlns", Key: n.prefixOf[uri], Value: uri})
	}
	out.Attr = append(decls, out.Attr...)
	return out, nil
}

// checkPrefixes reports an error when a prefix used in el (element or
// attribute) is declared neither in el nor around it.
func checkPrefixes(el *etree.Element) error {
	n := &normalizer{prefixOf: map[string]string{}, taken: map[string]bool{}}
	_, err := n.element(el, inScopeNamespaces(el.Parent()))
	return err
}

// normalizer assigns one prefix per namespace URI.
type normalizer struct {
	prefixOf map[string]string // URI → prefix
	taken    map[string]bool   // prefixes in use
	order    []string          // URIs in order of first use

	substitute map[*etree.Element]*etree.Element
}

// prefix returns the prefix of uri, choosing one on first use.
func (n *normalizer) prefix(uri string) string {
	if p, ok := n.prefixOf[uri]; ok {
		return p
	}
	p := wellKnownPrefixes[uri]
	for i := len(n.order); p == "" || n.taken[p]; i++ {
		p = fmt.Sprintf("ns%d", i)
	}
	n.prefixOf[uri], n.taken[p] = p, true
	n.order = append(n.order, uri)
	return p
}

// element copies el, whose parent's namespaces in scope are outer.
func (n *normalizer) element(el *etree.Element, outer map[string]string) (*etree.Element, error) {
	scope, copied := outer, false
	for _, a := range el.Attr {
		if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			if !copied {
				copied = true
				scope = make(map[string]string, len(outer)+2)
				for k, v := range outer {
					scope[k] = v
				}
			}
			if a.Space == "xmlns" {
				scope[a.Key] = a.Value
			} else {
				scope[""] = a.Value
			}
		}
	}
	out := etree.NewElement(el.Tag)
	uri, ok := scope[el.Space]
	if !ok && el.Space != "" {
		return nil, fmt.Errorf("undeclared namespace prefix %q on %s", el.Space, el.Tag)
	}
	if uri != "" {
		out.Space = n.prefix(uri)
	}
	for _, a := range el.Attr {
		if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			continue
		}
		na := etree.Attr{Key: a.Key, Value: a.Value}
		switch a.Space {
		case "":
		case "xml":
			na.Space = "xml"
		default:
			auri, ok := scope[a.Space]
			if !ok || auri == "" {
				return nil, fmt.Errorf("undeclared namespace prefix %q on attribute %s", a.Space, a.Key)
			}
			na.Space = n.prefix(auri)
			if auri == nsXSI && a.Key == "type" {
				na.Value = n.qname(a.Value, scope)
			}
		}
		out.Attr = append(out.Attr, na)
	}
	for _, tok := range el.Child {
		switch t := tok.(type) {
		case *etree.Element:
			src, sc := t, scope
			if r, ok := n.substitute[t]; ok {
				src, sc = r, inScopeNamespaces(r.Parent())
			}
			c, err := n.element(src, sc)
			if err != nil {
				return nil, err
			}
			out.AddChild(c)
		case *etree.CharData:
			if t.IsCData() {
				out.AddChild(etree.NewCData(t.Data))
			} else {
				out.AddChild(etree.NewText(t.Data))
			}
		case *etree.Comment:
			out.AddChild(etree.NewComment(t.Data))
		}
	}
	return out, nil
}

// qname rewrites the prefix of a QName value (p:local) to the normalized
// prefix of its namespace; a value it cannot resolve stays as it is.
func (n *normalizer) qname(v string, scope map[string]string) string {
	p, local, found := strings.Cut(v, ":")
	if !found {
		p, local = "", v
	}
	uri, ok := scope[p]
	if !ok || uri == "" || uri == nsXML {
		return v
	}
	return n.prefix(uri) + ":" + local
}
