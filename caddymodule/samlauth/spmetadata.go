package samlauth

import (
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// LiveMetadataValidity is how long the metadata served at <base>/saml/metadata
// says it is valid (validUntil): IdPs that fetch it by URL fetch it again
// well before then.
const LiveMetadataValidity = 48 * time.Hour

// advertisedTransports are the key transport algorithms the SP metadata
// lists after the data ciphers of Config.DataCiphers: IdPs that read the
// list (Shibboleth) pick the first they support of each kind.
var advertisedTransports = []string{algRSAOAEP, algRSAOAEPMGF1P}

// Metadata returns the SP metadata to serve at <base>/saml/metadata: the
// entity ID, the SP certificate for encryption (with the data ciphers of
// Config.DataCiphers and the key transports the SP decrypts) and for
// signing, AuthnRequestsSigned (true when Config.SignAuthnRequests is set
// or the loaded IdP metadata wants signed requests), the NameID format,
// the assertion consumer service <base>/saml/acs with the HTTP-POST binding
// only, and the single-logout service <base>/saml/slo with the
// HTTP-Redirect and HTTP-POST bindings. It is valid for
// LiveMetadataValidity. It is indented XML without the XML declaration
// (prepend xml.Header when serving it as a document).
//
// It needs no IdP metadata, and it says the same before the IdP metadata
// loads as after (but for AuthnRequestsSigned, which follows the IdP's
// WantAuthnRequestsSigned): an IdP administrator imports it once, whenever
// they happen to fetch it, and an IdP that wants signed requests must find
// the signing key in it even if it was fetched before this SP had loaded
// the IdP's metadata.
func (p *Provider) Metadata(base string) ([]byte, error) {
	return p.metadata(base, LiveMetadataValidity)
}

// SPMetadata returns the SP metadata of cfg for a file an IdP administrator
// imports once (the metadata subcommand): as Provider.Metadata, but
// without validUntil when validFor is zero (valid until replaced, which
// IdPs that honour validUntil need of a file nobody refreshes), or valid
// for validFor. Only cfg's SP settings are used (SPCert, SPKey, EntityID,
// NameIDFormat, SignAuthnRequests); no IdP setting is needed.
func SPMetadata(cfg Config, base string, validFor time.Duration) ([]byte, error) {
	if validFor < 0 {
		return nil, errors.New("metadata validity: must not be negative")
	}
	p := &Provider{cfg: cfg}
	var err error
	if p.format, err = cfg.nameIDFormat(); err != nil {
		return nil, err
	}
	if p.ciphers, err = dataCipherURIs(cfg.DataCiphers); err != nil {
		return nil, err
	}
	if err := p.loadKeys(); err != nil {
		return nil, err
	}
	return p.metadata(base, validFor)
}

// metadata builds the SP metadata valid for validFor (zero: no validUntil).
func (p *Provider) metadata(base string, validFor time.Duration) ([]byte, error) {
	sp, err := p.library(base)
	if err != nil {
		return nil, err
	}
	// The library publishes the signing key only when it signs; the SP
	// always publishes it (see Metadata).
	sp.SignatureMethod = p.signatureMethod()
	signed := p.signsRequests(p.current())
	if validFor > 0 {
		sp.MetadataValidDuration = validFor
	}
	md := sp.Metadata()
	for i := range md.SPSSODescriptors {
		d := &md.SPSSODescriptors[i]
		// Only the HTTP-POST binding is accepted at the ACS; the library
		// also advertises HTTP-Artifact, which would make IdPs try it.
		var acs []saml.IndexedEndpoint
		for _, e := range d.AssertionConsumerServices {
			if e.Binding == saml.HTTPPostBinding {
				acs = append(acs, e)
			}
		}
		d.AssertionConsumerServices = acs
		d.AuthnRequestsSigned = &signed
		for j := range d.KeyDescriptors {
			if d.KeyDescriptors[j].Use == "encryption" {
				d.KeyDescriptors[j].EncryptionMethods = nil
				for _, a := range slices.Concat(p.ciphers, advertisedTransports) {
					d.KeyDescriptors[j].EncryptionMethods = append(d.KeyDescriptors[j].EncryptionMethods, saml.EncryptionMethod{Algorithm: a})
				}
			}
		}
		if validFor == 0 {
			d.ValidUntil = nil
		}
	}
	b, err := xml.MarshalIndent(md, "", "  ")
	if err != nil || validFor > 0 {
		return b, err
	}
	// The library always writes the EntityDescriptor's validUntil.
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, fmt.Errorf("SP metadata: %w", err)
	}
	doc.Root().RemoveAttr("validUntil")
	return doc.WriteToBytes()
}
