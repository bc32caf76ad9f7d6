// Package samltest is test support for the SAML service provider in
// samlauth and for the Caddy handler around it. It is for tests only:
// nothing outside _test.go files may import it. It plays the identity
// provider of a login, with real keys and real signatures, so that a test
// exercises the same verification code a production login does.
//
// # Parties
//
// The constants name the parties of every test: the service provider under
// [SPBaseURL] (entity ID [SPEntityID], assertion consumer service
// [ACSURL]), the identity provider it trusts ([IdPEntityID], single
// sign-on at [IdPSSOURL], single logout at [IdPSLOURL]) and strangers whose
// names must be refused ([OtherSPEntityID], [OtherACSURL],
// [OtherIdPEntityID]). [Victim] is the user who logs in and [Attacker] the
// one an attack would like logged in instead.
//
// # Keys and metadata
//
// [NewKeyPair] makes an RSA key and a self-signed certificate and writes
// both as PEM files, ready for the sp_cert and sp_key settings. [NewIdP]
// makes an [IdP] with its own key pair; [IdP.MetadataFile] writes the IdP
// metadata an SP is configured with. [Descriptor], [LogoutDescriptor] and
// [Metadata] build metadata for any set of certificates, such as the old
// and new ones of a key rotation.
//
// # Answering a login
//
// [IdP.Response] is the correct answer to an AuthnRequest: a [Response]
// with one assertion for the user, signed by the IdP. Its fields say what
// is signed, by whom, whether the assertion is encrypted to the SP's
// certificate ([Encrypt]) and what is changed after signing; each test
// changes one of them and posts [Response.XML]. [Accepted] lists the
// variants of a correct response an SP must accept. [Assertion] makes a
// lone assertion, [ForgedAssertion] the one an attacker would like to
// slip in, and [IdP.Sign] and [IdP.SignPrefixed] sign any element the way
// an IdP does.
//
// # Reading and editing messages
//
// [DecodeRedirect] reads the AuthnRequest (or LogoutRequest) an SP sent
// the browser to the IdP with. [Child] and [AttrValue] find the parts of a
// signed document an attack edits; [XMLBytes] serializes an element and
// [NewID] makes a fresh XML ID. [ExpectUser] checks that an accepted
// response logged in the user it was made for.
//
// The functions that can fail take the test's [testing.TB] and fail the
// test on an error, so none returns one.
package samltest

// The parties of a test login.
const (
	// SPBaseURL is the external base URL of the service provider.
	SPBaseURL = "https://consoleme.example.com"
	// SPEntityID is the SP's entity ID, the Audience of its assertions.
	SPEntityID = SPBaseURL + "/saml/metadata"
	// ACSURL is the SP's assertion consumer service, the Destination of
	// its responses and the Recipient of their assertions.
	ACSURL = SPBaseURL + "/saml/acs"

	// IdPEntityID is the entity ID of the IdP the SP trusts, the Issuer
	// of its responses and assertions.
	IdPEntityID = "https://idp.example.com/metadata"
	// IdPSSOURL is the IdP's HTTP-Redirect single sign-on endpoint.
	IdPSSOURL = "https://idp.example.com/sso"
	// IdPSLOURL is the IdP's HTTP-Redirect single logout endpoint, in the
	// metadata of [LogoutDescriptor] only.
	IdPSLOURL = "https://idp.example.com/slo"

	// OtherSPEntityID and OtherACSURL name another SP of the same IdP,
	// whose responses must not be accepted here.
	OtherSPEntityID = "https://other-sp.example.com/saml/metadata"
	OtherACSURL     = "https://other-sp.example.com/saml/acs"
	// OtherIdPEntityID names an IdP the SP does not trust.
	OtherIdPEntityID = "https://evil-idp.example.com/metadata"
)
