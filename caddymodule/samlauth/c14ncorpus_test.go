package samlauth

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// c14nCorpusDir holds documents on which streamC14N and goxmldsig
// disagreed (found by FuzzC14N, or written by hand for a case it found),
// each settled against libxml2 by TestC14NCorpusMatchesXMLSec.
const c14nCorpusDir = "testdata/c14n"

// c14nCorpus returns the documents of c14nCorpusDir by file name.
func c14nCorpus(t testing.TB) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(c14nCorpusDir, "*.xml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs[filepath.Base(f)] = string(b)
	}
	return docs
}

// xmlsecC14NModes are the canonicalizations settled: the Transform a
// Reference names, and the mode streamC14N runs in for it.
var xmlsecC14NModes = []struct {
	name      string
	transform string
	mode      c14nMode
}{
	{"exclusive", `<Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`, c14nMode{}},
	{"exclusive, PrefixList", `<Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#">` +
		`<InclusiveNamespaces xmlns="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="#default a"/></Transform>`,
		c14nMode{inclusivePrefixes: []string{"", "a"}}},
	{"inclusive", `<Transform Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>`, c14nMode{inclusive: true}},
}

// TestC14NCorpusMatchesXMLSec settles the canonicalizer's disagreements
// with goxmldsig against libxml2, through xmlsec1: for each document of
// the corpus (and c14nDocuments), xmlsec1 signs a copy holding an
// enveloped signature whose one Reference canonicalizes the whole
// document, and prints what it digested. streamC14N must give exactly
// those bytes; it may refuse a document (it is stricter: no DTD, no
// processing instruction), but never accept one libxml2 refuses. Without
// xmlsec1 it is skipped, unless CI is "true".
func TestC14NCorpusMatchesXMLSec(t *testing.T) {
	xmlsec, err := exec.LookPath("xmlsec1")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("xmlsec1 is needed: %v", err)
		}
		t.Skipf("skipping: xmlsec1 is needed (apt-get install xmlsec1): %v", err)
	}
	dir := t.TempDir()
	key := samltest.NewKeyPair(t, dir, "c14n").KeyFile
	docs := c14nCorpus(t)
	if len(docs) == 0 {
		t.Fatalf("no documents in %s", c14nCorpusDir)
	}
	for k, v := range c14nDocuments {
		docs["c14nDocuments "+k] = v
	}
	for name, doc := range docs {
		for _, m := range xmlsecC14NModes {
			t.Run(name+"/"+m.name, func(t *testing.T) {
				var ours bytes.Buffer
				oerr := streamC14N(&ours, []byte(doc), m.mode, -1, -1)
				want, xerr := xmlsecC14N(t, xmlsec, key, doc, m.transform)
				switch {
				case oerr != nil && xerr == nil:
					t.Logf("streamC14N refuses what libxml2 reads (%v)", oerr)
				case oerr == nil && xerr != nil:
					t.Errorf("streamC14N canonicalized what libxml2 refuses (%v):\n%s", xerr, ours.String())
				case oerr == nil && ours.String() != want:
					t.Errorf("streamC14N: %s\nlibxml2:    %s", ours.String(), want)
				}
			})
		}
	}
}

// xmlsecC14N is libxml2's canonical form of doc's root element by the
// transform, as xmlsec1 digests it for an enveloped signature over the
// whole document (which the enveloped-signature transform removes again).
func xmlsecC14N(t *testing.T, xmlsec, key, doc, transform string) (string, error) {
	t.Helper()
	tmpl, err := withSignatureTemplate(doc, `<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo>`+
		`<CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`+
		`<SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>`+
		`<Reference URI=""><Transforms><Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>`+
		transform+`</Transforms><DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><DigestValue/></Reference>`+
		`</SignedInfo><SignatureValue/></Signature>`)
	if err != nil {
		return "", err
	}
	file := filepath.Join(t.TempDir(), "doc.xml")
	if err := os.WriteFile(file, []byte(tmpl), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(xmlsec, "--sign", "--privkey-pem", key, "--store-references", "--print-debug", file).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("xmlsec1: %v: %s", err, bytes.TrimSpace(out))
	}
	const start, end = "== PreDigest data - start buffer:\n", "\n== PreDigest data - end buffer"
	s := string(out)
	i, j := strings.Index(s, start), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("no pre-digest data in xmlsec1's output:\n%s", out)
	}
	return s[i+len(start) : j], nil
}

// withSignatureTemplate puts sig as the last child of doc's root element.
func withSignatureTemplate(doc, sig string) (string, error) {
	d := xml.NewDecoder(strings.NewReader(doc))
	depth := 0
	for {
		off := d.InputOffset()
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			return "", errors.New("no root element")
		}
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			if depth--; depth == 0 {
				if d.InputOffset() == off { // <root/>: no end tag of its own
					return doc[:off-2] + ">" + sig + "</" + qualified(t.Name) + ">" + doc[off:], nil
				}
				return doc[:off] + sig + doc[off:], nil
			}
		}
	}
}

// TestGoxmldsigQuirksRecognised: the corpus documents kept for goxmldsig's
// known departures do make it differ from streamC14N (exclusive C14N),
// goxmldsigQuirk names the departure, and TestC14NCorpusMatchesXMLSec
// shows libxml2 agreeing with streamC14N on them. The repeated attribute
// is refused by streamC14N (and libxml2), though goxmldsig renders it.
func TestGoxmldsigQuirksRecognised(t *testing.T) {
	docs := c14nCorpus(t)
	for name, want := range map[string]string{
		"spurious-empty-default.xml":          `spurious xmlns=""`,
		"spurious-empty-default-prefixed.xml": `spurious xmlns=""`,
		"attributes-by-namespace-uri.xml":     "attributes sorted by prefix",
	} {
		var ours bytes.Buffer
		if err := streamC14N(&ours, []byte(docs[name]), c14nMode{}, -1, -1); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d := etree.NewDocument()
		if err := d.ReadFromString(docs[name]); err != nil {
			t.Fatal(err)
		}
		theirs, err := dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("").Canonicalize(d.Root())
		if err != nil {
			t.Fatal(err)
		}
		if ours.String() == string(theirs) {
			t.Errorf("%s: goxmldsig agrees now (%s); drop the quirk", name, theirs)
		}
		if got := goxmldsigQuirk(docs[name], ours.String(), string(theirs)); got != want {
			t.Errorf("%s: quirk %q, want %q", name, got, want)
		}
	}
	var out bytes.Buffer
	if err := streamC14N(&out, []byte(docs["repeated-attribute.xml"]), c14nMode{}, -1, -1); err == nil {
		t.Errorf("repeated attribute canonicalized to %s", out.String())
	}
}

// TestAbsoluteURI pins which namespace names the canonicalizer takes: those
// with a scheme, of URI characters only, as libxml2 does.
func TestAbsoluteURI(t *testing.T) {
	for s, want := range map[string]bool{
		"urn:oasis:names:tc:SAML:2.0:assertion":               true,
		"http://www.w3.org/2000/09/xmldsig#":                  true,
		"http://www.w3.org/2001/10/xml-exc-c14n#WithComments": true,
		"urn:%41":   true,
		"a+b.c-d:x": true,
		"0":         false,
		"":          false,
		":x":        false,
		"1a:b":      false,
		"urn:a b":   false,
		"urn:%zz":   false,
		"urn:%4":    false,
		"urn:é":     false,
		"urn:a\"b":  false,
	} {
		if got := absoluteURI(s); got != want {
			t.Errorf("absoluteURI(%q) = %v, want %v", s, got, want)
		}
	}
}
