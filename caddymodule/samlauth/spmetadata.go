package samlauth

import (
	"encoding/xml"

	"github.com/crewjam/saml"
)

// Metadata returns the SP metadata to serve at <base>/saml/metadata: the
// entity ID, the SP certificate (for signing and encryption), the NameID
// format, the assertion consumer service <base>/saml/acs with the HTTP-POST
// binding only, and the single-logout service <base>/saml/slo with the
// HTTP-Redirect and HTTP-POST bindings. It is indented XML without the XML
// declaration (prepend xml.Header when serving it as a document). It needs
// no IdP metadata.
func (p *Provider) Metadata(base string) ([]byte, error) {
	sp, err := p.library(base)
	if err != nil {
		return nil, err
	}
	md := sp.Metadata()
	// Only the HTTP-POST binding is accepted at the ACS; the library also
	// advertises HTTP-Artifact, which would make IdPs try it.
	for i := range md.SPSSODescriptors {
		var acs []saml.IndexedEndpoint
		for _, e := range md.SPSSODescriptors[i].AssertionConsumerServices {
			if e.Binding == saml.HTTPPostBinding {
				acs = append(acs, e)
			}
		}
		md.SPSSODescriptors[i].AssertionConsumerServices = acs
	}
	return xml.MarshalIndent(md, "", "  ")
}
