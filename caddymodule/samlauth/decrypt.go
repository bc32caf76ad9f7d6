package samlauth

import (
	"bytes"
	"crypto"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/beevik/etree"
	xrv "github.com/mattermost/xml-roundtrip-validator"
)

// maxEncryptedKeys is how many EncryptedKeys an encrypted assertion may
// carry. Each one tried costs an RSA private-key operation, and the
// response is unsigned when it arrives (its signature is inside the
// ciphertext), so anyone with a relay state could otherwise make one POST
// cost seconds of CPU. An IdP encrypting to several SPs at once sends one
// per SP: a handful.
const maxEncryptedKeys = 4

// decryptOptions are the algorithms a Provider accepts in an encrypted
// assertion.
type decryptOptions struct {
	allowRSA15 bool
	// ciphers are the data encryption algorithm URIs of Config.DataCiphers.
	ciphers []string
}

// decryptAssertion decrypts an EncryptedAssertion with the SP key and
// returns the Assertion it holds, parsed in the namespace context of the
// EncryptedAssertion (XML Encryption 1.0, section 4.5: the plaintext of an
// Element is serialised XML that may use the prefixes declared around it).
// The returned element's parent is a synthetic element carrying those
// declarations, so that its signature can be checked in place.
func decryptAssertion(ea *etree.Element, key crypto.Signer, opts decryptOptions) (*etree.Element, error) {
	context := inScopeNamespaces(ea)
	var a *etree.Element
	_, err := decryptData(ea, key, opts, func(plain []byte) bool {
		var perr error
		a, perr = parsePlaintextAssertion(plain, context)
		return perr == nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// decryptData decrypts the EncryptedData of the EncryptedAssertion ea with
// the SP key and returns the first plaintext that ok accepts.
//
// The data encryption key travels in an EncryptedKey, inside the
// EncryptedData's KeyInfo or beside the EncryptedData; each one found is
// tried, so that an IdP encrypting to several SPs at once works, but more
// than maxEncryptedKeys are refused before any is tried. The supported
// algorithms are listed in dataCiphers and transportedKey; the data
// encryption algorithm must be one of opts.ciphers. Unsupported or refused
// algorithms are named in the error; every failure to decrypt (or to find
// a plaintext ok accepts) is the single errDecrypt.
func decryptData(ea *etree.Element, key crypto.Signer, opts decryptOptions, ok func([]byte) bool) ([]byte, error) {
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
	dc, supported := dataCiphers[alg]
	if !supported {
		return nil, fmt.Errorf("assertion refused: data encryption algorithm %q is not supported (want %s)", alg, supportedDataCiphers())
	}
	if !slices.Contains(opts.ciphers, alg) {
		return nil, fmt.Errorf("assertion refused: data encryption algorithm %s is not among data_ciphers (%s)", dc.name, cipherNames(opts.ciphers))
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
	if len(keys) > maxEncryptedKeys {
		return nil, fmt.Errorf("assertion refused: the encrypted assertion carries more EncryptedKeys than %d", maxEncryptedKeys)
	}
	err = errDecrypt
	for _, ek := range keys {
		k, kerr := transportedKey(ek, key, dc.keySize, opts.allowRSA15)
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
		if ok(plain) {
			return plain, nil
		}
	}
	return nil, err
}

// cipherNames lists the short names of the data cipher URIs.
func cipherNames(uris []string) string {
	names := make([]string, len(uris))
	for i, u := range uris {
		names[i] = dataCiphers[u].name
	}
	return strings.Join(names, ", ")
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
