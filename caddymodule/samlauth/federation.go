package samlauth

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/crewjam/saml"
)

// nsMetadata is the namespace of SAML metadata.
const nsMetadata = "urn:oasis:names:tc:SAML:2.0:metadata"

// maxMetadataSize bounds the IdP metadata read from a URL or a file.
// Research and education federations publish aggregates of tens of
// megabytes; they are read as a stream, so memory holds one entity at a
// time, not the aggregate.
const maxMetadataSize = 256 << 20

// errMetadataTooLarge is the error of metadata beyond maxMetadataSize.
var errMetadataTooLarge = errors.New("metadata larger than 256 MiB")

// parseIDPMetadata parses metadata that describes one IdP: an
// EntityDescriptor, or an EntitiesDescriptor holding exactly one IdP.
func parseIDPMetadata(data []byte) (*saml.EntityDescriptor, error) {
	return decodeIDPMetadata(bytes.NewReader(data), "")
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
// decoded. The metadata's own signature and validUntil are not checked.
func decodeIDPMetadata(r io.Reader, entityID string) (*saml.EntityDescriptor, error) {
	d := xml.NewDecoder(&limitReader{r: r, n: maxMetadataSize})
	var found *saml.EntityDescriptor
	var idps []string
	entities := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parsing IdP metadata: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch {
		case se.Name.Space == nsMetadata && se.Name.Local == "EntitiesDescriptor":
			continue // look inside
		case se.Name.Space == nsMetadata && se.Name.Local == "EntityDescriptor":
		default:
			if err := d.Skip(); err != nil {
				return nil, fmt.Errorf("parsing IdP metadata: %w", err)
			}
			continue
		}
		entities++
		if entityID != "" && attrValue(se, "entityID") != entityID {
			if err := d.Skip(); err != nil {
				return nil, fmt.Errorf("parsing IdP metadata: %w", err)
			}
			continue
		}
		var ed saml.EntityDescriptor
		if err := d.DecodeElement(&ed, &se); err != nil {
			return nil, fmt.Errorf("parsing IdP metadata: %w", err)
		}
		if entityID != "" {
			if len(ed.IDPSSODescriptors) == 0 {
				return nil, fmt.Errorf("idp_entity_id: %q is in the metadata but is not an identity provider (no IDPSSODescriptor)", entityID)
			}
			return checkIDP(&ed)
		}
		if len(ed.IDPSSODescriptors) == 0 {
			continue
		}
		idps = append(idps, ed.EntityID)
		if found != nil {
			// A second IdP: the operator must choose. Stop reading here.
			return nil, fmt.Errorf("idp_entity_id: required: the metadata describes several identity providers (%s, ...); set idp_entity_id to the entityID of yours", strings.Join(idps, ", "))
		}
		found = &ed
	}
	switch {
	case entities == 0:
		return nil, errors.New("parsing IdP metadata: no EntityDescriptor (want SAML 2.0 metadata: an EntityDescriptor or EntitiesDescriptor)")
	case entityID != "":
		return nil, fmt.Errorf("idp_entity_id: no entity %q in the metadata (%d entities)", entityID, entities)
	case found == nil:
		return nil, errors.New("parsing IdP metadata: no IDPSSODescriptor")
	}
	return checkIDP(found)
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
