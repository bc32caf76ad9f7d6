package samltest

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/url"
	"testing"

	"github.com/beevik/etree"
)

// DecodeRedirect reads the SAML message an SP put in the query parameter
// param ("SAMLRequest") of an HTTP-Redirect binding URL: it base64-decodes
// and inflates it and unmarshals the XML into v, such as a
// *saml.AuthnRequest or a *saml.LogoutRequest.
func DecodeRedirect(t testing.TB, location, param string, v any) {
	t.Helper()
	loc, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	deflated, err := base64.StdEncoding.DecodeString(loc.Query().Get(param))
	if err != nil {
		t.Fatalf("%s: %v", param, err)
	}
	raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
	if err != nil {
		t.Fatalf("inflating %s: %v", param, err)
	}
	if err := xml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", param, err)
	}
}

// Child returns the first child element of el with the local name tag,
// whatever its prefix, and fails the test when there is none.
func Child(t testing.TB, el *etree.Element, tag string) *etree.Element {
	t.Helper()
	c := el.SelectElement(tag)
	if c == nil {
		t.Fatalf("no %s in %s", tag, el.Tag)
	}
	return c
}

// AttrValue returns the first AttributeValue of the SAML attribute named
// name anywhere below root, and fails the test when there is none.
func AttrValue(t testing.TB, root *etree.Element, name string) *etree.Element {
	t.Helper()
	for _, attr := range root.FindElements(".//Attribute") {
		if attr.SelectAttrValue("Name", "") == name {
			return Child(t, attr, "AttributeValue")
		}
	}
	t.Fatalf("no attribute %s", name)
	return nil
}
