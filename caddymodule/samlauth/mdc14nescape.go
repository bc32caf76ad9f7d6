package samlauth

import (
	"bytes"
	"encoding/xml"
)

// The names and escaping of the canonical form streamC14N writes.

// qualified is prefix:local, or local without a prefix.
func qualified(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// escapeText writes text content as Canonical XML does.
func escapeText(out *bytes.Buffer, s []byte) {
	for _, c := range s {
		switch c {
		case '&':
			out.WriteString("&amp;")
		case '<':
			out.WriteString("&lt;")
		case '>':
			out.WriteString("&gt;")
		case '\r':
			out.WriteString("&#xD;")
		default:
			out.WriteByte(c)
		}
	}
}

// escapeAttr writes an attribute value as Canonical XML does.
func escapeAttr(out *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			out.WriteString("&amp;")
		case '<':
			out.WriteString("&lt;")
		case '"':
			out.WriteString("&quot;")
		case '\t':
			out.WriteString("&#x9;")
		case '\n':
			out.WriteString("&#xA;")
		case '\r':
			out.WriteString("&#xD;")
		default:
			out.WriteByte(c)
		}
	}
}
