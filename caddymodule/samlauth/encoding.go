package samlauth

import (
	"encoding/base64"
	"strings"
)

// DecodeBase64Loose decodes a SAMLResponse form value: standard base64,
// ignoring the line breaks and spaces some IdPs put into long values.
func DecodeBase64Loose(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '\r', '\n', ' ', '\t':
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.DecodeString(s)
}
