package consolemeauth

import (
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth"
)

// SAMLConfig makes the handler a SAML 2.0 service provider that logs
// browsers in at the challenge validator (SP-initiated, HTTP-Redirect or
// HTTP-POST binding to the IdP, HTTP-POST back to /saml/acs).
type SAMLConfig struct {
	// IDPMetadataURL is where the IdP publishes its metadata. It is fetched
	// in the background (start-up and `caddy validate` never wait for it)
	// and refreshed every IDPMetadataRefresh; a failed refresh keeps the last
	// good copy. One of IDPMetadataURL and IDPMetadataFile is required.
	IDPMetadataURL string `json:"idp_metadata_url,omitempty"`

	// IDPMetadataFile is a file holding the IdP metadata, read at provision.
	IDPMetadataFile string `json:"idp_metadata_file,omitempty"`

	// IDPMetadataSigningCerts makes the IdP metadata (URL or file) trusted
	// only when its root element carries an enveloped XML signature made by
	// the key of one of these certificates, with SHA-256 or stronger, as
	// research and education federations sign their aggregates. Each entry
	// is a PEM file or PEM text (placeholders such as {env.X} are
	// expanded); every certificate in it counts, so list the old and the new
	// one during a key rollover. The certificates are pinned keys: their
	// dates and chains are not checked. A refreshed copy that fails the
	// check is refused (the last good copy stays, and a warning says why);
	// metadata whose validUntil is past is refused with or without this
	// setting. Signed metadata is held in memory while it is checked, about
	// twice its size at the peak. Default: none (the metadata is trusted as
	// its transport is).
	IDPMetadataSigningCerts []string `json:"idp_metadata_signing_cert,omitempty"`

	// IDPMetadataRefresh is how often IDPMetadataURL is fetched again, so an
	// IdP certificate rotation needs no reload. Default: 24h.
	IDPMetadataRefresh caddy.Duration `json:"idp_metadata_refresh,omitempty"`

	// SPCert is the PEM file of the SP certificate published in the SP
	// metadata. Required.
	SPCert string `json:"sp_cert,omitempty"`

	// SPKey is the PEM file of the SP private key (RSA or ECDSA; PKCS#1,
	// PKCS#8 or SEC 1). It must match SPCert. Required. Never logged.
	SPKey string `json:"sp_key,omitempty"`

	// EntityID is the SP's entity ID. Default: <base>/saml/metadata, where
	// <base> is public_url or the request's scheme and host.
	EntityID string `json:"entity_id,omitempty"`

	// EmailAttribute is the assertion attribute (Name or FriendlyName) that
	// holds the user's email. Default: the assertion's NameID.
	EmailAttribute string `json:"email_attribute,omitempty"`

	// GroupsAttribute is the multi-valued attribute (Name or FriendlyName)
	// that holds the user's groups. Default: none (no groups).
	GroupsAttribute string `json:"groups_attribute,omitempty"`

	// NameIDFormat is the NameID format asked of the IdP: unspecified
	// (default: the IdP chooses), email, persistent or transient.
	NameIDFormat string `json:"name_id_format,omitempty"`

	// ClockSkew is how far the IdP's clock may be off from this host's when
	// checking an assertion's validity window. Setting it also lets an
	// assertion, and a LogoutResponse, be up to 90 s + ClockSkew old (90 s
	// when unset). Each site has its own; at most 1h. Default: 3m.
	ClockSkew caddy.Duration `json:"clock_skew,omitempty"`

	// IDPEntityID is the entityID of the IdP to sign in at when the IdP
	// metadata (file or URL) is an aggregate listing several entities, as
	// research and education federations publish; required when it lists
	// more than one IdP. Default: the metadata's only IdP.
	IDPEntityID string `json:"idp_entity_id,omitempty"`

	// SignAuthnRequests signs every AuthnRequest with sp_key, for IdPs that
	// require signed requests without saying WantAuthnRequestsSigned="true"
	// in their metadata (requests are signed whenever the metadata says
	// so). The SP metadata then says AuthnRequestsSigned="true".
	SignAuthnRequests bool `json:"sign_authn_requests,omitempty"`

	// AllowRSA15 accepts encrypted assertions whose key is transported with
	// RSA PKCS#1 v1.5 (xmlenc#rsa-1_5), refused by default because it
	// invites padding-oracle attacks; set it only for an IdP that cannot
	// use RSA-OAEP.
	AllowRSA15 bool `json:"allow_rsa1_5,omitempty"`

	// DataCiphers are the data encryption algorithms an encrypted
	// assertion may use: some of aes128-gcm, aes192-gcm, aes256-gcm,
	// aes128-cbc, aes192-cbc, aes256-cbc and tripledes-cbc; any other is
	// refused, whatever the (unsigned) EncryptedData names, and the SP
	// metadata advertises exactly these, first preferred. Give one mode:
	// accepting GCM and CBC for one key lets an attacker present a GCM
	// ciphertext as CBC and decrypt it through CBC's padding and parsing
	// oracles. Pin GCM when the IdP can send it (Shibboleth picks it from
	// the SP metadata). Default: aes128-cbc aes192-cbc aes256-cbc, what
	// SimpleSAMLphp, pysaml2, ADFS and Entra ID send by default.
	DataCiphers []string `json:"data_ciphers,omitempty"`
}

// settings is the Caddy-free configuration, placeholders expanded; a
// setting whose placeholders expand to nothing is named in the error.
func (c *SAMLConfig) settings(repl *caddy.Replacer) (samlauth.Config, error) {
	cfg := samlauth.Config{
		IDPMetadataRefresh: time.Duration(c.IDPMetadataRefresh),
		EmailAttribute:     c.EmailAttribute,
		GroupsAttribute:    c.GroupsAttribute,
		NameIDFormat:       c.NameIDFormat,
		ClockSkew:          time.Duration(c.ClockSkew),
		IDPEntityID:        c.IDPEntityID,
		SignAuthnRequests:  c.SignAuthnRequests,
		AllowRSA15:         c.AllowRSA15,
		DataCiphers:        c.DataCiphers,
	}
	for _, s := range []struct {
		name string
		from string
		to   *string
	}{
		{"idp_metadata_url", c.IDPMetadataURL, &cfg.IDPMetadataURL},
		{"idp_metadata_file", c.IDPMetadataFile, &cfg.IDPMetadataFile},
		{"sp_cert", c.SPCert, &cfg.SPCert},
		{"sp_key", c.SPKey, &cfg.SPKey},
		{"entity_id", c.EntityID, &cfg.EntityID},
	} {
		v, err := expand(repl, s.name, s.from)
		if err != nil {
			return cfg, err
		}
		*s.to = v
	}
	for _, e := range c.IDPMetadataSigningCerts {
		v, err := expand(repl, "idp_metadata_signing_cert", e)
		if err != nil {
			return cfg, err
		}
		cfg.IDPMetadataSigningCerts = append(cfg.IDPMetadataSigningCerts, v)
	}
	return cfg, nil
}

// validate checks the settings that need no file or network.
func (c *SAMLConfig) validate() error {
	cfg, err := c.settings(caddy.NewReplacer())
	if err != nil {
		return err
	}
	return cfg.Validate()
}

// provision loads the SP key pair and the IdP metadata file, or starts
// the background fetch of the metadata URL for as long as ctx lives.
func (c *SAMLConfig) provision(ctx caddy.Context, repl *caddy.Replacer, logger *zap.Logger) (*samlauth.Provider, error) {
	cfg, err := c.settings(repl)
	if err != nil {
		return nil, err
	}
	sp, err := samlauth.New(cfg, logger)
	if err != nil {
		return nil, err
	}
	// A reload starts from the metadata the previous configuration had.
	if cfg.IDPMetadataURL != "" {
		if prev, ok := providers.Swap(cfg.IDPMetadataURL, sp); ok {
			sp.Seed(prev.(*samlauth.Provider))
		}
	}
	go sp.Run(ctx)
	return sp, nil
}

// providers holds the latest provider of each IdP metadata URL, so that a
// configuration reload can start from the metadata it had already loaded.
var providers sync.Map
