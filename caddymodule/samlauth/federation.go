package samlauth

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/crewjam/saml"
)

// nsMetadata is the namespace of SAML metadata.
const nsMetadata = "urn:oasis:names:tc:SAML:2.0:metadata"

// maxMetadataSize bounds the IdP metadata read from a URL or a file.
// Research and education federations publish aggregates of tens of
// megabytes; unsigned, they are read as a stream, so memory holds one
// entity at a time, not the aggregate. Metadata whose signature is
// checked (IDPMetadataSigningCerts) is held whole in memory while it is
// checked and read: its size plus a few megabytes (see mdc14n.go).
const maxMetadataSize = 256 << 20

// errMetadataTooLarge is the error of metadata beyond maxMetadataSize.
var errMetadataTooLarge = errors.New("metadata larger than 256 MiB")

// parseIDPMetadata parses metadata that describes one IdP: an
// EntityDescriptor, or an EntitiesDescriptor holding exactly one IdP.
func parseIDPMetadata(data []byte) (*saml.EntityDescriptor, error) {
	md, _, err := decodeIDPMetadata(bytes.NewReader(data), "")
	return md, err
}

// decodeIDPMetadata reads SAML metadata from r, an EntityDescriptor or an
// EntitiesDescriptor (nested ones included, as federations publish), and
// returns the IdP to log in at:
//
//   - with entityID set, the EntityDescriptor of that entityID, which must
//     be there and have an IDPSSODescriptor (even if it is the only entity);
//   - without, the only EntityDescriptor with an IDPSSODescriptor; metadata
//     with several IdPs is refused with an error asking for idp_entity_id
//     and naming some of them.
//
// The IdP must have a SingleSignOnService of the HTTP-Redirect or HTTP-POST
// binding. Entities other than the one sought are skipped without being
// decoded. It also returns the earliest validUntil on the path from the
// root to the IdP's EntityDescriptor (itself included), zero when none of
// them has one; checking it is the caller's business, as is the signature.
func decodeIDPMetadata(r io.Reader, entityID string) (*saml.EntityDescriptor, time.Time, error) {
	d := xml.NewDecoder(&limitReader{r: r, n: maxMetadataSize})
	var found *saml.EntityDescriptor
	var foundUntil time.Time
	var idps []string
	entities := 0
	// The validUntil of each open EntitiesDescriptor, and the earliest.
	var until []time.Time
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("parsing IdP metadata: %w", err)
		}
		if _, ok := tok.(xml.EndElement); ok && len(until) > 0 {
			until = until[:len(until)-1] // only EntitiesDescriptors stay open
			continue
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch {
		case se.Name.Space == nsMetadata && se.Name.Local == "EntitiesDescriptor":
			vu, err := validUntilAttr(se)
			if err != nil {
				return nil, time.Time{}, err
			}
			if len(until) > 0 {
				vu = earliest(vu, until[len(until)-1])
			}
			until = append(until, vu)
			continue // look inside
		case se.Name.Space == nsMetadata && se.Name.Local == "EntityDescriptor":
		default:
			if err := d.Skip(); err != nil {
				return nil, time.Time{}, fmt.Errorf("parsing IdP metadata: %w", err)
			}
			continue
		}
		entities++
		if entityID != "" && attrValue(se, "entityID") != entityID {
			if err := d.Skip(); err != nil {
				return nil, time.Time{}, fmt.Errorf("parsing IdP metadata: %w", err)
			}
			continue
		}
		var ed saml.EntityDescriptor
		if err := d.DecodeElement(&ed, &se); err != nil {
			return nil, time.Time{}, fmt.Errorf("parsing IdP metadata: %w", err)
		}
		vu := ed.ValidUntil
		if len(until) > 0 {
			vu = earliest(vu, until[len(until)-1])
		}
		if entityID != "" {
			if len(ed.IDPSSODescriptors) == 0 {
				return nil, time.Time{}, fmt.Errorf("idp_entity_id: %q is in the metadata but is not an identity provider (no IDPSSODescriptor)", entityID)
			}
			md, err := checkIDP(&ed)
			return md, vu, err
		}
		if len(ed.IDPSSODescriptors) == 0 {
			continue
		}
		idps = append(idps, ed.EntityID)
		if found != nil {
			// A second IdP: the operator must choose. Stop reading here.
			return nil, time.Time{}, fmt.Errorf("idp_entity_id: required: the metadata describes several identity providers (%s, ...); set idp_entity_id to the entityID of yours", strings.Join(idps, ", "))
		}
		found, foundUntil = &ed, vu
	}
	switch {
	case entities == 0:
		return nil, time.Time{}, errors.New("parsing IdP metadata: no EntityDescriptor (want SAML 2.0 metadata: an EntityDescriptor or EntitiesDescriptor)")
	case entityID != "":
		return nil, time.Time{}, fmt.Errorf("idp_entity_id: no entity %q in the metadata (%d entities)", entityID, entities)
	case found == nil:
		return nil, time.Time{}, errors.New("parsing IdP metadata: no IDPSSODescriptor")
	}
	md, err := checkIDP(found)
	return md, foundUntil, err
}

// validUntilAttr is the validUntil attribute of se, zero when it has none.
func validUntilAttr(se xml.StartElement) (time.Time, error) {
	v := attrValue(se, "validUntil")
	if v == "" {
		return time.Time{}, nil
	}
	var t saml.RelaxedTime
	if err := t.UnmarshalText([]byte(v)); err != nil {
		return time.Time{}, fmt.Errorf("parsing IdP metadata: validUntil %q: %w", v, err)
	}
	return time.Time(t), nil
}

// earliest is the earlier of two times, zero meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// checkIDP checks that ed describes an IdP a browser can log in at: one
// with a SingleSignOnService of the HTTP-Redirect or HTTP-POST binding.
func checkIDP(ed *saml.EntityDescriptor) (*saml.EntityDescriptor, error) {
	sp := saml.ServiceProvider{IDPMetadata: ed}
	if sp.GetSSOBindingLocation(saml.HTTPRedirectBinding) == "" && sp.GetSSOBindingLocation(saml.HTTPPostBinding) == "" {
		return nil, errors.New("parsing IdP metadata: no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding")
	}
	return ed, nil
}

// attrValue is the value of the unqualified attribute name of se.
func attrValue(se xml.StartElement, name string) string {
	for _, a := range se.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// limitReader reads at most n bytes of r, then fails with
// errMetadataTooLarge rather than pretending the input ended.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// One byte more tells a document of exactly n bytes from a longer one.
		var b [1]byte
		if k, _ := l.r.Read(b[:]); k > 0 {
			return 0, errMetadataTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	k, err := l.r.Read(p)
	l.n -= int64(k)
	return k, err
}
