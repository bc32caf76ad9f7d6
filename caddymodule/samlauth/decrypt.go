package samlauth

import (
	"bytes"
	"crypto"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/beevik/etree"
	xrv "github.com/mattermost/xml-roundtrip-validator"
)

// decryptAssertion decrypts an EncryptedAssertion with the SP key and
// returns the Assertion it holds, parsed in the namespace context of the
// EncryptedAssertion (XML Encryption 1.0, section 4.5: the plaintext of an
// Element is serialised XML that may use the prefixes declared around it).
// The returned element's parent is a synthetic element carrying those
// declarations, so that its signature can be checked in place.
//
// The data encryption key travels in an EncryptedKey, inside the
// EncryptedData's KeyInfo or beside the EncryptedData; each one found is
// tried, so that an IdP encrypting to several SPs at once works. The
// supported algorithms are listed in dataCiphers and transportedKey.
// Unsupported algorithms are named in the error; every failure to decrypt
// (or to find an assertion in the plaintext) is the single errDecrypt.
func decryptAssertion(ea *etree.Element, key crypto.Signer, allowRSA15 bool) (*etree.Element, error) {
	ed := childNS(ea, nsXMLEnc, "EncryptedData")
	if ed == nil {
		return nil, errors.New("assertion refused: EncryptedAssertion has no EncryptedData")
	}
	if t := ed.SelectAttrValue("Type", ""); t != "" && t != nsXMLEnc+"Element" {
		return nil, fmt.Errorf("assertion refused: EncryptedData of Type %q, want an Element", t)
	}
	method := childNS(ed, nsXMLEnc, "EncryptionMethod")
	if method == nil {
		return nil, errors.New("assertion refused: EncryptedData has no EncryptionMethod")
	}
	alg := method.SelectAttrValue("Algorithm", "")
	dc, ok := dataCiphers[alg]
	if !ok {
		return nil, fmt.Errorf("assertion refused: data encryption algorithm %q is not supported (want %s)", alg, supportedDataCiphers())
	}
	ct, err := cipherValue(ed)
	if err != nil {
		return nil, err
	}
	var keys []*etree.Element
	if ki := childNS(ed, nsDSig, "KeyInfo"); ki != nil {
		keys = append(keys, childrenNS(ki, nsXMLEnc, "EncryptedKey")...)
	}
	keys = append(keys, childrenNS(ea, nsXMLEnc, "EncryptedKey")...)
	if len(keys) == 0 {
		return nil, errors.New("assertion refused: the encrypted assertion carries no EncryptedKey")
	}
	context := inScopeNamespaces(ea)
	err = errDecrypt
	for _, ek := range keys {
		k, kerr := transportedKey(ek, key, dc.keySize, allowRSA15)
		if kerr != nil {
			if !errors.Is(kerr, errDecrypt) && errors.Is(err, errDecrypt) {
				err = kerr // an unsupported or refused algorithm says more
			}
			continue
		}
		plain, derr := dc.decrypt(k, ct)
		if derr != nil {
			continue
		}
		if a, perr := parsePlaintextAssertion(plain, context); perr == nil {
			return a, nil
		}
	}
	return nil, err
}

// supportedDataCiphers lists the short names of dataCiphers.
func supportedDataCiphers() string {
	var names []string
	for _, c := range dataCiphers {
		names = append(names, c.name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// childrenNS returns the child elements of el named local in namespace ns.
func childrenNS(el *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if isNS(c, ns, local) {
			out = append(out, c)
		}
	}
	return out
}

// decryptedWrapper is the synthetic parent of a decrypted assertion.
const decryptedWrapper = "decrypted-assertion"

// parsePlaintextAssertion parses the plaintext of an EncryptedAssertion,
// with the namespace declarations ns in scope, and returns its Assertion
// element. The plaintext must be exactly one saml:Assertion element
// (optionally after an XML declaration), with no DTD or processing
// instruction and within the size limits of a response.
func parsePlaintextAssertion(plain []byte, ns map[string]string) (*etree.Element, error) {
	plain = bytes.TrimPrefix(plain, []byte("\xef\xbb\xbf"))
	if bytes.HasPrefix(plain, []byte("<?xml")) {
		end := bytes.Index(plain, []byte("?>"))
		if end < 0 {
			return nil, errDecrypt
		}
		plain = plain[end+2:]
	}
	var w bytes.Buffer
	w.WriteString("<" + decryptedWrapper)
	prefixes := make([]string, 0, len(ns))
	for p := range ns {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	for _, p := range prefixes {
		name := "xmlns"
		if p != "" {
			name += ":" + p
		}
		w.WriteString(" " + name + `="`)
		_ = xml.EscapeText(&w, []byte(ns[p]))
		w.WriteString(`"`)
	}
	w.WriteString(">")
	w.Write(plain)
	w.WriteString("</" + decryptedWrapper + ">")
	if err := checkPlaintextTokens(w.Bytes()); err != nil {
		return nil, err
	}
	if err := xrv.Validate(bytes.NewReader(w.Bytes())); err != nil {
		return nil, errDecrypt
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(w.Bytes()); err != nil {
		return nil, errDecrypt
	}
	root := doc.Root()
	if root == nil || root.Tag != decryptedWrapper || len(root.ChildElements()) != 1 {
		return nil, errDecrypt
	}
	for _, tok := range root.Child {
		if cd, ok := tok.(*etree.CharData); ok && strings.TrimSpace(cd.Data) != "" {
			return nil, errDecrypt
		}
	}
	a := root.ChildElements()[0]
	if !isNS(a, nsAssertion, "Assertion") {
		return nil, errDecrypt
	}
	// Every prefix must resolve, or the rewriting would fail later with
	// an error of its own.
	if err := checkPrefixes(a); err != nil {
		return nil, errDecrypt
	}
	return a, nil
}

// checkPlaintextTokens is the shape pre-check of a decrypted plaintext:
// well-formed, no directive or processing instruction, bounded depth and
// size, and one assertion (no other, encrypted or not, nested in it), as
// checkResponseShape requires of the whole response.
func checkPlaintextTokens(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	depth, elements, assertions := 0, 0, 0
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errDecrypt
		}
		switch t := tok.(type) {
		case xml.Directive, xml.ProcInst:
			return errDecrypt
		case xml.StartElement:
			depth++
			elements++
			if t.Name.Local == "Assertion" || t.Name.Local == "EncryptedAssertion" {
				assertions++
			}
			if depth > maxResponseDepth || elements > maxResponseElements {
				return errDecrypt
			}
		case xml.EndElement:
			depth--
		}
	}
	if assertions != 1 {
		return errDecrypt
	}
	return nil
}
