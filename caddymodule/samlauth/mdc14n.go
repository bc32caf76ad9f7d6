package samlauth

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Streaming canonicalization of signed metadata
//
// A federation aggregate's signature covers the whole document, which can
// be tens of megabytes. goxmldsig canonicalizes an etree tree, and copies
// it first; for such a document that is several hundred megabytes of
// heap. streamC14N instead canonicalizes the root element as it reads the
// document, token by token, into a hash, so that checking the signature
// costs the document's bytes (held once, as read) and little more.
//
// It implements the two canonicalizations metadata signers use, for the
// only node-set an enveloped signature over a whole document gives (every
// node of the root element, without comments, less the Signature
// element): Exclusive XML Canonicalization 1.0 (with an InclusiveNamespaces
// PrefixList) and Canonical XML 1.0 (inclusive). For that node-set
// Canonical XML 1.1 gives the same bytes as 1.0. It also canonicalizes the
// signature's SignedInfo, in the context of the root's namespaces. Tests
// compare its output with libxml2's (through PHP) and goxmldsig's on the
// same documents; goxmldsig sorts attributes by prefix where C14N sorts
// them by namespace URI, so the tests avoid that case with it. Attribute
// values are not whitespace-normalized (encoding/xml cannot tell a literal
// newline from &#10;), so a signer that relies on that normalization is
// refused, never wrongly accepted.
//
// The document must have no DTD (a DTD could change attribute values and
// entities behind the canonical form's back) and no processing
// instructions; comments are left out, as both algorithms without
// comments do. Nor may a start tag repeat an attribute (by name as
// written, or by namespace URI and local name), which encoding/xml lets
// through.

// c14nMode is how streamC14N renders namespace declarations.
type c14nMode struct {
	// inclusive renders every namespace declaration in scope (Canonical
	// XML 1.0); otherwise only those an element or its attributes use
	// (Exclusive C14N), plus those of inclusivePrefixes.
	inclusive bool
	// inclusivePrefixes is the Exclusive C14N PrefixList; "" stands for
	// #default.
	inclusivePrefixes []string
}

// c14nFrame is one open element of the canonicalized document.
type c14nFrame struct {
	qname    string            // prefix:local as written, for the end tag
	declared map[string]string // namespaces declared on it, by prefix
	rendered map[string]string // namespace declarations it output, by prefix
}

// streamC14N writes to w the canonical form of the element of doc that
// starts at byte apexAt (-1: the root element), leaving out the subtree of
// the element that starts at byte skipAt (-1: none; the enveloped
// Signature). The elements around the apex only give it the namespaces
// in scope. It refuses a DTD and processing instructions, and checks that
// end tags match.
func streamC14N(w io.Writer, doc []byte, mode c14nMode, apexAt, skipAt int64) error {
	d := xml.NewDecoder(bytes.NewReader(doc))
	var stack []c14nFrame
	apex := -1 // the apex's index in stack while it is open
	skipping, skipDepth := false, 0
	done := false
	var out bytes.Buffer // output, flushed as it grows
	for {
		off := d.InputOffset()
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if _, ok := tok.(xml.Directive); ok {
			return errors.New("a DTD or other directive")
		}
		if skipping {
			switch t := tok.(type) {
			case xml.StartElement:
				if err := uniqueAttrs(t); err != nil {
					return err
				}
				skipDepth++
			case xml.EndElement:
				skipDepth--
				skipping = skipDepth > 0
			}
			continue
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if done {
				return errors.New("more than one root element")
			}
			if apex >= 0 && off == skipAt {
				if err := uniqueAttrs(t); err != nil {
					return err
				}
				skipping, skipDepth = true, 1
				continue
			}
			isApex := apex < 0 && (off == apexAt || (apexAt < 0 && len(stack) == 0))
			if isApex {
				apex = len(stack)
			}
			var f c14nFrame
			if apex >= 0 {
				f, err = startTag(&out, t, stack, apex, mode)
			} else {
				f, err = outsideTag(t)
			}
			if err != nil {
				return err
			}
			stack = append(stack, f)
		case xml.EndElement:
			if len(stack) == 0 {
				return errors.New("unexpected end tag")
			}
			f := stack[len(stack)-1]
			if qualified(t.Name) != f.qname {
				return fmt.Errorf("end tag </%s> does not match <%s>", qualified(t.Name), f.qname)
			}
			stack = stack[:len(stack)-1]
			if apex >= 0 {
				out.WriteString("</" + f.qname + ">")
				if len(stack) == apex {
					apex = -1
					if apexAt >= 0 {
						_, err := w.Write(out.Bytes())
						return err
					}
				}
			}
			done = len(stack) == 0
		case xml.CharData:
			if apex >= 0 {
				escapeText(&out, t)
			}
		case xml.Comment:
		case xml.ProcInst:
			if t.Target != "xml" || len(stack) > 0 || done {
				return fmt.Errorf("a processing instruction <?%s?>", t.Target)
			}
		}
		if out.Len() >= 32<<10 {
			if _, err := w.Write(out.Bytes()); err != nil {
				return err
			}
			out.Reset()
		}
	}
	if !done || len(stack) > 0 {
		return errors.New("the document ends inside an element")
	}
	if apexAt >= 0 {
		return errors.New("no element at the given offset")
	}
	_, err := w.Write(out.Bytes())
	return err
}

// uniqueAttrs refuses a start tag that repeats an attribute name as
// written (<r a="" a="">, or a namespace declaration twice), which no
// well-formed document has (XML 1.0, section 3.1) and encoding/xml does
// not check. Two prefixes bound to one namespace URI naming the same
// attribute are caught where the URIs are known (startTag).
func uniqueAttrs(t xml.StartElement) error {
	for i, a := range t.Attr {
		for _, b := range t.Attr[:i] {
			if a.Name == b.Name {
				return fmt.Errorf("attribute %s repeated in <%s>", qualified(a.Name), qualified(t.Name))
			}
		}
	}
	return nil
}

// outsideTag is the frame of an element around the apex: its namespace
// declarations, nothing rendered.
func outsideTag(t xml.StartElement) (c14nFrame, error) {
	f := c14nFrame{qname: qualified(t.Name)}
	if err := uniqueAttrs(t); err != nil {
		return f, err
	}
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			if err := checkNamespace(a); err != nil {
				return f, err
			}
			if f.declared == nil {
				f.declared = map[string]string{}
			}
			if a.Name.Space == "xmlns" {
				f.declared[a.Name.Local] = a.Value
			} else {
				f.declared[""] = a.Value
			}
		}
	}
	return f, nil
}

// startTag writes the canonical start tag of t, whose open ancestors are
// stack, the apex at stack[apex] (len(stack) when t is the apex), and
// returns its frame.
func startTag(out *bytes.Buffer, t xml.StartElement, stack []c14nFrame, apex int, mode c14nMode) (c14nFrame, error) {
	f := c14nFrame{qname: qualified(t.Name)}
	if err := uniqueAttrs(t); err != nil {
		return f, err
	}
	var attrs []xml.Attr
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
			if err := checkNamespace(a); err != nil {
				return f, err
			}
		}
		switch {
		case a.Name.Space == "xmlns":
			if f.declared == nil {
				f.declared = map[string]string{}
			}
			f.declared[a.Name.Local] = a.Value
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			if f.declared == nil {
				f.declared = map[string]string{}
			}
			f.declared[""] = a.Value
		default:
			attrs = append(attrs, a)
		}
	}
	inScope := func(prefix string) (string, bool) {
		if v, ok := f.declared[prefix]; ok {
			return v, true
		}
		for i := len(stack) - 1; i >= 0; i-- {
			if v, ok := stack[i].declared[prefix]; ok {
				return v, true
			}
		}
		return "", prefix == ""
	}
	renderedAbove := func(prefix string) (string, bool) {
		for i := len(stack) - 1; i >= apex; i-- {
			if v, ok := stack[i].rendered[prefix]; ok {
				return v, true
			}
		}
		return "", false
	}

	if _, ok := inScope(t.Name.Space); !ok && t.Name.Space != "xml" {
		return f, fmt.Errorf("prefix %q is not declared", t.Name.Space)
	}

	// The namespace declarations to consider, by prefix.
	var consider []string
	if mode.inclusive {
		// The apex renders every namespace in scope. Below it every element
		// is output, so an inherited namespace was rendered where it was
		// declared: only an element's own declarations can differ from
		// what its output ancestors rendered.
		for p := range f.declared {
			consider = append(consider, p)
		}
		if apex == len(stack) {
			for _, fr := range stack {
				for p := range fr.declared {
					consider = append(consider, p)
				}
			}
		}
	} else {
		consider = append(consider, t.Name.Space)
		for _, a := range attrs {
			if a.Name.Space != "" {
				consider = append(consider, a.Name.Space)
			}
		}
		consider = append(consider, mode.inclusivePrefixes...)
	}
	slices.Sort(consider)
	consider = slices.Compact(consider)

	out.WriteString("<" + f.qname)
	for _, p := range consider {
		if p == "xml" {
			continue
		}
		v, bound := inScope(p)
		if !bound {
			if !mode.inclusive && !slices.Contains(mode.inclusivePrefixes, p) {
				return f, fmt.Errorf("prefix %q is not declared", p)
			}
			continue // a PrefixList prefix not in scope here
		}
		r, was := renderedAbove(p)
		if (was && r == v) || (!was && p == "" && v == "") {
			continue
		}
		if f.rendered == nil {
			f.rendered = map[string]string{}
		}
		f.rendered[p] = v
		if p == "" {
			out.WriteString(` xmlns="`)
		} else {
			out.WriteString(" xmlns:" + p + `="`)
		}
		escapeAttr(out, v)
		out.WriteByte('"')
	}

	// Attributes, sorted by namespace URI, then local name.
	type keyed struct {
		uri string
		a   xml.Attr
	}
	ks := make([]keyed, 0, len(attrs))
	for _, a := range attrs {
		uri := ""
		switch a.Name.Space {
		case "":
		case "xml":
			uri = nsXML
		default:
			v, ok := inScope(a.Name.Space)
			if !ok {
				return f, fmt.Errorf("prefix %q is not declared", a.Name.Space)
			}
			uri = v
		}
		ks = append(ks, keyed{uri, a})
	}
	slices.SortFunc(ks, func(x, y keyed) int {
		if c := strings.Compare(x.uri, y.uri); c != 0 {
			return c
		}
		return strings.Compare(x.a.Name.Local, y.a.Name.Local)
	})
	for i := 1; i < len(ks); i++ {
		if ks[i].uri == ks[i-1].uri && ks[i].a.Name.Local == ks[i-1].a.Name.Local {
			return f, fmt.Errorf("attribute {%s}%s repeated in <%s>", ks[i].uri, ks[i].a.Name.Local, f.qname)
		}
	}
	for _, k := range ks {
		out.WriteString(" " + qualified(k.a.Name) + `="`)
		escapeAttr(out, k.a.Value)
		out.WriteByte('"')
	}
	out.WriteByte('>')
	return f, nil
}
