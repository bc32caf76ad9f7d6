package samlauth

import (
	"bytes"
	"strings"
	"testing"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// c14nDocuments are documents whose canonical forms exercise namespaces
// (default ones changing and undeclared, prefixes redeclared to other
// URIs, declarations nobody uses), attribute order across namespaces,
// escaping, comments, CDATA and empty elements.
var c14nDocuments = map[string]string{
	"namespaces": `<?xml version="1.0" encoding="UTF-8"?>
<!-- before -->
<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:unused="urn:x:unused" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" ID="_root" Name="fed" validUntil="2099-01-01T00:00:00Z">
  <md:Extensions xmlns:mdrpi="urn:oasis:names:tc:SAML:metadata:rpi"><mdrpi:PublicationInfo publisher="https://fed.example.org" creationInstant="2024-01-01T00:00:00Z"/></md:Extensions>
  <EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://a.example/idp">
    <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
      <inner xmlns=""><deeper/></inner>
      <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>MIIB
AAAA</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    </IDPSSODescriptor>
  </EntityDescriptor>
  <md:EntityDescriptor entityID="b" xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:x="urn:x:one">
    <x:thing xmlns:x="urn:x:two" x:b="2" a="1" xmlns:z="urn:x:a"><z:y z:c="3" z:a="0"/><w xml:lang="en" b="1"/>t</x:thing>
  </md:EntityDescriptor>
</md:EntitiesDescriptor>
<!-- after -->`,
	"escaping": `<root xmlns="urn:r" a="x &amp; &lt; &gt; &quot; &#9; &#10; &#13; y" b='single "quoted"'>` +
		`text &amp; &lt; &gt; " ' &#13; <![CDATA[<cdata> & ]]]]><![CDATA[>]]><!-- gone --><e/><e></e>` +
		"\r\nline\r\n</root>",
	"no namespace": `<a><b c="1"/></a>`,
}

// TestStreamC14NMatchesGoxmldsig: streamC14N gives the bytes goxmldsig's
// canonicalizers give for the same root element, exclusive (with and
// without an InclusiveNamespaces PrefixList) and inclusive.
func TestStreamC14NMatchesGoxmldsig(t *testing.T) {
	idp := samltest.NewIdP(t, t.TempDir(), "idp")
	docs := map[string]string{"federation aggregate": string(federationAggregate(t, samltest.Descriptor(idp.Cert), true))}
	for k, v := range c14nDocuments {
		docs[k] = v
	}
	modes := []struct {
		name  string
		mode  c14nMode
		canon func() dsig.Canonicalizer
	}{
		{"exclusive", c14nMode{}, func() dsig.Canonicalizer { return dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("") }},
		{"exclusive, PrefixList", c14nMode{inclusivePrefixes: []string{"", "unused", "x", "absent"}},
			func() dsig.Canonicalizer {
				return dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("#default unused x absent")
			}},
		{"inclusive", c14nMode{inclusive: true}, dsig.MakeC14N10RecCanonicalizer},
	}
	for name, doc := range docs {
		for _, m := range modes {
			t.Run(name+"/"+m.name, func(t *testing.T) {
				var got bytes.Buffer
				if err := streamC14N(&got, []byte(doc), m.mode, -1, -1); err != nil {
					t.Fatal(err)
				}
				d := etree.NewDocument()
				if err := d.ReadFromString(doc); err != nil {
					t.Fatal(err)
				}
				want, err := m.canon().Canonicalize(d.Root())
				if err != nil {
					t.Fatal(err)
				}
				if got.String() != string(want) {
					t.Errorf("streamC14N:\n%s\ngoxmldsig:\n%s", got.String(), want)
				}
			})
		}
	}
}

// TestStreamC14NLeavesOutTheSignature: the element at skipAt, a child of
// the root, is left out with its subtree, and only that one.
func TestStreamC14NLeavesOutTheSignature(t *testing.T) {
	doc := `<r xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:Signature><ds:SignedInfo><x/></ds:SignedInfo></ds:Signature><a/><ds:Signature/></r>`
	var got bytes.Buffer
	if err := streamC14N(&got, []byte(doc), c14nMode{}, -1, int64(strings.Index(doc, "<ds:Signature>"))); err != nil {
		t.Fatal(err)
	}
	if want := `<r><a></a><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"></ds:Signature></r>`; got.String() != want {
		t.Errorf("got %s, want %s", got.String(), want)
	}
}

// TestStreamC14NRefuses: a DTD, processing instructions, undeclared
// prefixes and broken documents are errors, not canonical forms.
func TestStreamC14NRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"DTD":                     `<!DOCTYPE r [<!ENTITY e "x">]><r/>`,
		"processing instruction":  `<r><?php echo 1 ?></r>`,
		"PI after the root":       `<r/><?x y?>`,
		"undeclared prefix":       `<p:r/>`,
		"undeclared attr prefix":  `<r p:a="1"/>`,
		"unclosed":                `<r><a></r>`,
		"two roots":               `<r/><s/>`,
		"truncated":               `<r><a>`,
		"unknown entity":          `<r>&e;</r>`,
		"mismatched with prefix":  `<a:r xmlns:a="urn:a" xmlns:b="urn:a"></b:r>`,
		"DTD inside skipped part": `<r><s><!DOCTYPE x></s></r>`,
		"repeated attribute":      `<root a="" a=""/>`,
		"repeated below the root": `<root><e b="1" c="2" b="1"/></root>`,
		"repeated by namespace":   `<r xmlns:p="urn:a" xmlns:q="urn:a"><e p:x="1" q:x="2"/></r>`,
		"repeated declaration":    `<r xmlns:p="urn:a" xmlns:p="urn:b"/>`,
		"repeated default ns":     `<r xmlns="urn:a" xmlns="urn:a"/>`,
		"repeated, skipped part":  `<r><s a="1" a="1"/></r>`,
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			skip := int64(-1)
			if name == "DTD inside skipped part" || name == "repeated, skipped part" {
				skip = 3
			}
			if err := streamC14N(&out, []byte(doc), c14nMode{}, -1, skip); err == nil {
				t.Errorf("canonicalized to %s", out.String())
			}
		})
	}
}

// TestCanonicalSignedInfoNotFound: a SignedInfo that the token scan does
// not find where expected is an error, not the whole root canonicalized
// (and signed over) in its place.
func TestCanonicalSignedInfoNotFound(t *testing.T) {
	for name, small := range map[string]string{
		"no SignedInfo":                   `<r xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:Signature><ds:SignatureValue/></ds:Signature></r>`,
		"SignedInfo too deep":             `<r xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:Signature><x><ds:SignedInfo/></x></ds:Signature></r>`,
		"SignedInfo of another namespace": `<r xmlns:ds="urn:not-dsig"><ds:Signature><ds:SignedInfo/></ds:Signature></r>`,
	} {
		t.Run(name, func(t *testing.T) {
			if out, err := canonicalSignedInfo([]byte(small), c14nMode{}); err == nil {
				t.Errorf("canonicalized to %s", out)
			}
		})
	}
}
