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

// Limits of a SAML response's shape, checked before the SAML library
// parses it: real responses are a few levels deep and a few hundred
// elements long.
const (
	maxResponseDepth    = 48
	maxResponseElements = 20000
)

// responseShape is what checkResponseShape learnt of a response.
type responseShape struct {
	encrypted    bool       // the assertion is encrypted: its audiences are inside
	restrictions [][]string // the audiences of each AudienceRestriction
}

// checkResponseShape refuses what no honest IdP sends and what attacks
// need: a DTD (entity tricks), absurd nesting or size (parser time grows
// with depth), more EncryptedKeys than maxEncryptedKeys (each costs an RSA
// decryption), a root that is not a Response, and anything but exactly one
// assertion (signature wrapping places a forged assertion beside the signed
// one). It is one linear pass of the standard XML tokenizer, which also
// collects the audiences of a plaintext assertion: crewjam/saml keeps only
// the last Audience of each AudienceRestriction, though SAML allows several
// (any one of which may name us).
func checkResponseShape(raw []byte) (*responseShape, error) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	shape := &responseShape{}
	depth, elements, assertions, keys := 0, 0, 0, 0
	inRestriction, inAudience := false, false
	var audience strings.Builder
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("invalid xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, errors.New("the response has a DOCTYPE or other directive")
		case xml.StartElement:
			depth++
			elements++
			if depth > maxResponseDepth || elements > maxResponseElements {
				return nil, errors.New("the response is nested too deeply or has too many elements")
			}
			switch t.Name.Local {
			case "Assertion":
				assertions++
			case "EncryptedAssertion":
				assertions++
				shape.encrypted = true
			case "EncryptedKey":
				// Each costs an RSA private-key operation (see decryptData).
				if keys++; keys > maxEncryptedKeys {
					return nil, fmt.Errorf("the response carries more EncryptedKeys than %d", maxEncryptedKeys)
				}
			case "AudienceRestriction":
				inRestriction = true
				shape.restrictions = append(shape.restrictions, nil)
			case "Audience":
				inAudience = inRestriction
				audience.Reset()
			}
			if depth == 1 && t.Name.Local != "Response" {
				return nil, fmt.Errorf("the root element is %s, not a Response", t.Name.Local)
			}
		case xml.CharData:
			if inAudience {
				audience.Write(t)
			}
		case xml.EndElement:
			depth--
			switch t.Name.Local {
			case "AudienceRestriction":
				inRestriction = false
			case "Audience":
				if inAudience {
					last := len(shape.restrictions) - 1
					shape.restrictions[last] = append(shape.restrictions[last], strings.TrimSpace(audience.String()))
					inAudience = false
				}
			}
		}
	}
	if elements == 0 {
		return nil, errors.New("the response is empty")
	}
	if assertions != 1 {
		return nil, fmt.Errorf("the response has %d assertions, want exactly one", assertions)
	}
	return shape, nil
}

// namesAudience reports whether every AudienceRestriction (there must be at
// least one) names audience among its Audience elements.
func namesAudience(restrictions [][]string, audience string) bool {
	if len(restrictions) == 0 {
		return false
	}
	for _, r := range restrictions {
		if !slices.Contains(r, audience) {
			return false
		}
	}
	return true
}
