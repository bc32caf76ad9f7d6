package samlauth

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
)

// checkNamespace refuses a namespace declaration libxml2 refuses: an
// empty one for a prefix (XML Namespaces 1.0 has no undeclaring of a
// prefix), and a namespace name that is not an absolute URI (Canonical XML
// fails on relative ones). Only xmlns="" may be empty.
func checkNamespace(a xml.Attr) error {
	switch {
	case a.Name.Space == "xmlns" && a.Value == "":
		return fmt.Errorf("empty namespace declared for prefix %q", a.Name.Local)
	case a.Value != "" && !absoluteURI(a.Value):
		return errors.New("namespace name is not an absolute URI")
	}
	return nil
}

// absoluteURI reports whether s is an RFC 3986 URI with a scheme, of URI
// characters only (a percent sign before two hex digits).
func absoluteURI(s string) bool {
	colon := strings.IndexByte(s, ':')
	if colon < 1 || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < colon; i++ {
		if c := s[i]; !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	for i := colon + 1; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlpha(c) || isDigit(c) || strings.IndexByte("-._~:/?#[]@!$&'()*+,;=", c) >= 0:
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			i += 2
		default:
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
