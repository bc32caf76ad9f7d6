package samlauth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/crewjam/saml"
)

// DefaultMetadataRefresh is how often the IdP metadata URL is fetched again
// when Config.IDPMetadataRefresh is zero.
const DefaultMetadataRefresh = 24 * time.Hour

// Config is what an operator sets up for the SP. Its fields mirror the
// handler's saml block (idp_metadata_url, idp_metadata_file,
// idp_metadata_refresh, idp_entity_id, idp_metadata_signing_cert, sp_cert, sp_key, entity_id,
// email_attribute, groups_attribute, name_id_format, clock_skew,
// sign_authn_requests, allow_rsa1_5, data_ciphers); placeholders must already be
// resolved. The zero value of every optional field means its default.
type Config struct {
	// IDPMetadataURL is where the IdP publishes its metadata. Provider.Run
	// fetches it in the background and again every IDPMetadataRefresh; a
	// failed fetch keeps the last good copy. Exactly one of IDPMetadataURL
	// and IDPMetadataFile is required.
	IDPMetadataURL string

	// IDPMetadataFile is a file holding the IdP metadata, read once by New.
	IDPMetadataFile string

	// IDPEntityID picks the IdP out of metadata that describes several
	// entities (an EntitiesDescriptor, as research and education federations
	// publish): the entityID of the IdP to log in at. It is required when
	// the metadata holds more than one IdP, and when set the metadata must
	// hold an IdP of that entityID, even when it describes just one.
	IDPEntityID string

	// IDPMetadataSigningCerts makes the IdP metadata (URL or file) trusted
	// only when its root element carries an enveloped XML signature, with
	// SHA-256 or stronger, made by the key of one of these certificates, as
	// research and education federations sign their aggregates. Each entry
	// is PEM text or the name of a PEM file, and every certificate in it
	// counts (list the old and the new one during a key rollover). The
	// certificates are pinned keys: their dates and chains are not
	// checked. Signed metadata is held whole in memory while it is checked.
	// Metadata past its validUntil is refused with or without them.
	IDPMetadataSigningCerts []string

	// IDPMetadataRefresh is how often IDPMetadataURL is fetched again, so
	// that an IdP certificate rotation needs no reload. Zero means
	// DefaultMetadataRefresh; it must not be negative.
	IDPMetadataRefresh time.Duration

	// SPCert is the PEM file of the SP certificate, published in the SP
	// metadata. Required.
	SPCert string

	// SPKey is the PEM file of the SP private key (RSA or ECDSA; PKCS#1,
	// PKCS#8 or SEC 1), used to decrypt encrypted assertions. It must match
	// SPCert. Required. Its contents are never logged nor quoted in errors.
	SPKey string

	// EntityID is the SP's entity ID, the audience assertions must name.
	// Empty means <base>/saml/metadata.
	EntityID string

	// EmailAttribute is the assertion attribute (Name or FriendlyName)
	// holding the user's email. Empty means the assertion's NameID.
	EmailAttribute string

	// GroupsAttribute is the multi-valued attribute (Name or FriendlyName)
	// holding the user's groups. Empty means no groups.
	GroupsAttribute string

	// NameIDFormat is the NameID format asked of the IdP: "unspecified" (or
	// empty: the IdP chooses), "email", "persistent" or "transient".
	NameIDFormat string

	// ClockSkew is how far the IdP's clock may be off from this host's when
	// checking an assertion's validity window; it also lets an assertion
	// (and a LogoutResponse) be up to 90 s + ClockSkew old. Zero keeps the
	// library's defaults (3 min and 90 s). It is this Provider's own: other
	// Providers in the process keep theirs (see "Clock tolerances"). It
	// must be between 0 and MaxClockSkew.
	ClockSkew time.Duration

	// SignAuthnRequests makes the SP sign every AuthnRequest with SPKey,
	// for an IdP that requires signed requests without saying so in its
	// metadata. Without it, requests are signed only when the IdP metadata
	// has WantAuthnRequestsSigned="true". The SP metadata says
	// AuthnRequestsSigned="true" whenever requests are signed.
	SignAuthnRequests bool

	// AllowRSA15 accepts encrypted assertions whose key is transported
	// with RSAES-PKCS1-v1_5 (xmlenc#rsa-1_5). It is refused by default: its
	// padding makes a decryption oracle (Bleichenbacher's attack) and XML
	// Encryption 1.1 forbids it; set it only for an IdP that offers nothing
	// else. The key is then decrypted without telling a padding error from a
	// wrong key.
	AllowRSA15 bool

	// DataCiphers are the data encryption algorithms an encrypted
	// assertion may use, by short name: aes128-gcm, aes192-gcm, aes256-gcm,
	// aes128-cbc, aes192-cbc, aes256-cbc, tripledes-cbc. Any other is
	// refused, whatever the unsigned EncryptedData names, and the SP
	// metadata advertises exactly these, in this order of preference.
	// Empty means DefaultDataCiphers (AES-CBC). Give one mode: accepting
	// both GCM and CBC lets a GCM ciphertext be attacked as a CBC one.
	DataCiphers []string
}

// Validate checks the settings that need no file or network access. Each
// message starts with the name of the setting at fault, as the operator
// wrote it (e.g. "sp_cert: required"). New calls it first.
func (c *Config) Validate() error {
	if c.IDPMetadataRefresh < 0 {
		return errors.New("idp_metadata_refresh: must be positive")
	}
	if c.ClockSkew < 0 || c.ClockSkew > MaxClockSkew {
		return fmt.Errorf("clock_skew: must be between 0 and %s", MaxClockSkew)
	}
	if _, err := c.nameIDFormat(); err != nil {
		return err
	}
	if _, err := dataCipherURIs(c.DataCiphers); err != nil {
		return err
	}
	for _, e := range c.IDPMetadataSigningCerts {
		if strings.TrimSpace(e) == "" {
			return errors.New("idp_metadata_signing_cert: empty entry")
		}
	}
	if c.SPCert == "" {
		return errors.New("sp_cert: required")
	}
	if c.SPKey == "" {
		return errors.New("sp_key: required")
	}
	switch {
	case c.IDPMetadataURL != "" && c.IDPMetadataFile != "":
		return errors.New("idp_metadata_url and idp_metadata_file: give only one")
	case c.IDPMetadataURL != "":
		u, err := url.Parse(c.IDPMetadataURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("idp_metadata_url: %q is not an absolute http or https URL", c.IDPMetadataURL)
		}
	case c.IDPMetadataFile == "":
		return errors.New("idp_metadata_url or idp_metadata_file: one is required")
	}
	return nil
}

// nameIDFormat maps the NameIDFormat setting to the SAML URN.
func (c *Config) nameIDFormat() (saml.NameIDFormat, error) {
	switch c.NameIDFormat {
	case "", "unspecified":
		return saml.UnspecifiedNameIDFormat, nil
	case "email":
		return saml.EmailAddressNameIDFormat, nil
	case "persistent":
		return saml.PersistentNameIDFormat, nil
	case "transient":
		return saml.TransientNameIDFormat, nil
	}
	return "", fmt.Errorf("name_id_format: unknown format %q (want unspecified, email, persistent or transient)", c.NameIDFormat)
}

// refresh is IDPMetadataRefresh with its default applied.
func (c *Config) refresh() time.Duration {
	if c.IDPMetadataRefresh == 0 {
		return DefaultMetadataRefresh
	}
	return c.IDPMetadataRefresh
}
