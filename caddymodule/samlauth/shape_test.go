package samlauth

import (
	"strings"
	"testing"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// TestResponseAudiences: SAML lets one AudienceRestriction list several
// audiences, any of which may be ours; every restriction must name us.
func TestResponseAudiences(t *testing.T) {
	const us = samltest.SPEntityID
	doc := func(restrictions string) []byte {
		return []byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">` +
			`<saml:Assertion><saml:Conditions>` + restrictions + `</saml:Conditions></saml:Assertion></samlp:Response>`)
	}
	for _, tc := range []struct {
		restrictions string
		ok           bool
	}{
		{`<saml:AudienceRestriction><saml:Audience>` + us + `</saml:Audience></saml:AudienceRestriction>`, true},
		{`<saml:AudienceRestriction><saml:Audience>` + us + `</saml:Audience><saml:Audience>urn:alias</saml:Audience></saml:AudienceRestriction>`, true},
		{`<saml:AudienceRestriction><saml:Audience>urn:alias</saml:Audience><saml:Audience> ` + us + ` </saml:Audience></saml:AudienceRestriction>`, true},
		{`<saml:AudienceRestriction><saml:Audience>urn:other</saml:Audience></saml:AudienceRestriction>`, false},
		{`<saml:AudienceRestriction><saml:Audience>` + us + `</saml:Audience></saml:AudienceRestriction>` +
			`<saml:AudienceRestriction><saml:Audience>urn:other</saml:Audience></saml:AudienceRestriction>`, false},
		{`<saml:Audience>` + us + `</saml:Audience>`, false},
		{``, false},
	} {
		shape, err := checkResponseShape(doc(tc.restrictions))
		if err != nil {
			t.Fatal(err)
		}
		if got := namesAudience(shape.restrictions, us); got != tc.ok {
			t.Errorf("%s: %v, want %v", tc.restrictions, got, tc.ok)
		}
	}
}

// TestResponseShape: the pre-check refuses what no honest IdP sends.
func TestResponseShape(t *testing.T) {
	const open = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">`
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"one assertion", open + `<saml:Assertion/></samlp:Response>`, ""},
		{"one encrypted assertion", open + `<saml:EncryptedAssertion/></samlp:Response>`, ""},
		{"no assertion", open + `</samlp:Response>`, "0 assertions"},
		{"two assertions", open + `<saml:Assertion/><saml:EncryptedAssertion/></samlp:Response>`, "2 assertions"},
		{"DOCTYPE", `<!DOCTYPE x>` + open + `<saml:Assertion/></samlp:Response>`, "DOCTYPE"},
		{"another root", `<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>`, "not a Response"},
		{"too deep", open + strings.Repeat("<a>", maxResponseDepth) + strings.Repeat("</a>", maxResponseDepth) + `</samlp:Response>`, "too deeply"},
		{"syntax error", open + `<saml:Assertion x=/></samlp:Response>`, "invalid xml"},
		// The tokenizer does not match end tags to start tags; the library's
		// own well-formedness check refuses an unclosed response later.
		{"unclosed", open + `<saml:Assertion>`, ""},
		{"empty", ``, "empty"},
	} {
		shape, err := checkResponseShape([]byte(tc.doc))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		case tc.want == "" && shape.encrypted != strings.Contains(tc.doc, "Encrypted"):
			t.Errorf("%s: encrypted %v", tc.name, shape.encrypted)
		}
	}
}

// TestRefusal: a Refusal's error text is its reason for the log.
func TestRefusal(t *testing.T) {
	r := refuse("replayed assertion", MessageReplayed)
	var err error = r
	if err.Error() != "replayed assertion" || r.Message != MessageReplayed {
		t.Errorf("%q, %q", err.Error(), r.Message)
	}
}
