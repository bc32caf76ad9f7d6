package samlauth

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// Signed IdP metadata
//
// With Config.IDPMetadataSigningCerts the IdP metadata is accepted only
// when its root element (EntityDescriptor or EntitiesDescriptor) has, as a
// direct child, an enveloped XML signature over the root made by the key
// of one of those certificates:
//
//   - exactly one Reference, to the root (URI "" or "#" + its ID), with the
//     enveloped-signature transform and Exclusive C14N (or Canonical XML
//     1.0) as the only other one;
//   - SHA-256, SHA-384 or SHA-512 digests, RSA PKCS#1 v1.5 or ECDSA
//     signatures with those hashes; SHA-1 is refused;
//   - the certificates are pinned keys, as federations publish them: their
//     validity dates, chain and the signature's KeyInfo are not consulted.
//
// Since only the root's own signature counts and the whole root is what it
// covers, a signed element moved into a new document (signature wrapping)
// leaves the new root unsigned. The entity is then read from the very
// bytes whose digest was checked.

// errMetadataRefused marks metadata that was read but is not to be
// trusted: a missing or bad signature, or a validUntil in the past.
var errMetadataRefused = errors.New("IdP metadata refused")

// refused wraps a reason in errMetadataRefused.
func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMetadataRefused, fmt.Sprintf(format, args...))
}

// metadataDigests are the digest algorithms accepted on metadata (its
// signature algorithms are signatureMethods).
var metadataDigests = map[string]crypto.Hash{
	"http://www.w3.org/2001/04/xmlenc#sha256":       crypto.SHA256,
	"http://www.w3.org/2001/04/xmldsig-more#sha384": crypto.SHA384,
	"http://www.w3.org/2001/04/xmlenc#sha512":       crypto.SHA512,
}

// verifyMetadataSignature checks the signature of the metadata document
// doc with the pinned certificates certs (see "Signed IdP metadata").
func verifyMetadataSignature(doc []byte, certs []*x509.Certificate) error {
	found, err := findRootSignature(doc)
	if err != nil {
		return err
	}
	// The Signature, parsed alone but inside a copy of the root's start
	// tag, so that the namespaces in scope are those of the document.
	var b bytes.Buffer
	b.Write(found.rootStart)
	b.Write(doc[found.sigStart:found.sigEnd])
	b.WriteString("</" + found.rootQName + ">")
	si, err := parseSignedInfo(b.Bytes(), found.rootID)
	if err != nil {
		return err
	}
	if err := si.verify(certs); err != nil {
		return err
	}
	h := si.digest.New()
	if err := streamC14N(h, doc, si.mode, -1, found.sigStart); err != nil {
		return refused("canonicalizing the document: %v", err)
	}
	if !bytes.Equal(h.Sum(nil), si.digestValue) {
		return refused("the signature does not match the document (changed after signing)")
	}
	return nil
}

// rootSignature is where the root's Signature element is in a document.
type rootSignature struct {
	rootStart        []byte // the root's start tag as written
	rootQName        string // the root's name as written
	rootID           string // its ID attribute
	sigStart, sigEnd int64  // the byte range of the Signature element
}

// findRootSignature finds the first Signature child of doc's root.
func findRootSignature(doc []byte) (*rootSignature, error) {
	d := xml.NewDecoder(bytes.NewReader(doc))
	var found rootSignature
	depth := 0
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil, refused("the metadata is not signed (no Signature in its root element)")
		}
		if err != nil {
			return nil, fmt.Errorf("parsing IdP metadata: %w", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, refused("signed metadata must not have a DTD")
		case xml.StartElement:
			if depth == 0 {
				found.rootStart = doc[off:d.InputOffset()]
				found.rootQName = rawName(found.rootStart)
				found.rootID = attrValue(t, "ID")
				if bytes.HasSuffix(found.rootStart, []byte("/>")) {
					return nil, refused("the metadata is not signed (no Signature in its root element)")
				}
				depth = 1
				continue
			}
			if t.Name.Space == nsDSig && t.Name.Local == "Signature" {
				found.sigStart = off
				if err := d.Skip(); err != nil {
					return nil, fmt.Errorf("parsing IdP metadata: %w", err)
				}
				found.sigEnd = d.InputOffset()
				return &found, nil
			}
			if err := d.Skip(); err != nil {
				return nil, fmt.Errorf("parsing IdP metadata: %w", err)
			}
		case xml.EndElement:
			return nil, refused("the metadata is not signed (no Signature in its root element)")
		}
	}
}

// rawName is the element name of a start tag as written.
func rawName(tag []byte) string {
	s := strings.TrimPrefix(string(tag), "<")
	if i := strings.IndexAny(s, " \t\r\n/>"); i >= 0 {
		s = s[:i]
	}
	return s
}

// signedInfo is what a metadata signature says it signed, and how.
type signedInfo struct {
	canonical   []byte // the SignedInfo, canonicalized
	method      string // the SignatureMethod
	value       []byte // the SignatureValue
	mode        c14nMode
	digest      crypto.Hash
	digestValue []byte
}

// parseSignedInfo reads the signature in small (the root's start tag, the
// Signature, the root's end tag) of a root whose ID is rootID, and refuses
// any form but the one "Signed IdP metadata" describes.
func parseSignedInfo(small []byte, rootID string) (*signedInfo, error) {
	d := etree.NewDocument()
	if err := d.ReadFromBytes(small); err != nil {
		return nil, refused("reading its signature: %v", err)
	}
	sig := d.Root().ChildElements()[0]
	var si signedInfo
	info := onlyChild(sig, "SignedInfo")
	sv := onlyChild(sig, "SignatureValue")
	if info == nil || sv == nil {
		return nil, refused("the signature needs one SignedInfo and one SignatureValue")
	}
	var err error
	if si.value, err = base64.StdEncoding.DecodeString(stripSpace(sv.Text())); err != nil {
		return nil, refused("the SignatureValue is not base64")
	}
	cm, sm, ref := onlyChild(info, "CanonicalizationMethod"), onlyChild(info, "SignatureMethod"), onlyChild(info, "Reference")
	if cm == nil || sm == nil || ref == nil {
		return nil, refused("the SignedInfo needs one CanonicalizationMethod, SignatureMethod and Reference")
	}
	si.method = sm.SelectAttrValue("Algorithm", "")
	if _, ok := signatureMethods[si.method]; !ok {
		return nil, refused("signature method %q is not accepted (want RSA or ECDSA with SHA-256, SHA-384 or SHA-512)", si.method)
	}
	var mode c14nMode
	switch a := cm.SelectAttrValue("Algorithm", ""); dsig.AlgorithmID(a) {
	case dsig.CanonicalXML10ExclusiveAlgorithmId:
		mode = exclusiveMode(cm)
	case dsig.CanonicalXML10RecAlgorithmId, dsig.CanonicalXML11AlgorithmId:
		mode.inclusive = true
	default:
		return nil, refused("canonicalization %q of the SignedInfo is not supported", a)
	}
	if si.canonical, err = canonicalSignedInfo(small, mode); err != nil {
		return nil, err
	}

	if uri := ref.SelectAttrValue("URI", ""); uri != "" && (rootID == "" || uri != "#"+rootID) {
		return nil, refused("the signature's Reference %q is not to the root element", uri)
	}
	if err := si.readTransforms(ref); err != nil {
		return nil, err
	}
	dm, dv := onlyChild(ref, "DigestMethod"), onlyChild(ref, "DigestValue")
	if dm == nil || dv == nil {
		return nil, refused("the Reference needs one DigestMethod and one DigestValue")
	}
	var ok bool
	if si.digest, ok = metadataDigests[dm.SelectAttrValue("Algorithm", "")]; !ok {
		return nil, refused("digest %q is not accepted (want SHA-256, SHA-384 or SHA-512)", dm.SelectAttrValue("Algorithm", ""))
	}
	if si.digestValue, err = base64.StdEncoding.DecodeString(stripSpace(dv.Text())); err != nil {
		return nil, refused("the DigestValue is not base64")
	}
	return &si, nil
}

// readTransforms accepts the enveloped-signature transform followed by at
// most one canonicalization; without one, Canonical XML 1.0 applies.
func (si *signedInfo) readTransforms(ref *etree.Element) error {
	si.mode = c14nMode{inclusive: true}
	ts := onlyChild(ref, "Transforms")
	if ts == nil {
		return refused("the signature has no enveloped-signature transform")
	}
	enveloped, canon := false, false
	for _, t := range ts.ChildElements() {
		if t.Tag != "Transform" || t.NamespaceURI() != nsDSig || canon {
			return refused("unexpected transform %s", t.Tag)
		}
		switch a := dsig.AlgorithmID(t.SelectAttrValue("Algorithm", "")); a {
		case dsig.EnvelopedSignatureAltorithmId:
			if enveloped {
				return refused("the enveloped-signature transform twice")
			}
			enveloped = true
		case dsig.CanonicalXML10ExclusiveAlgorithmId:
			si.mode = exclusiveMode(t)
			canon = true
		case dsig.CanonicalXML10RecAlgorithmId, dsig.CanonicalXML11AlgorithmId:
			canon = true
		default:
			return refused("transform %q is not accepted", a)
		}
	}
	if !enveloped {
		return refused("the signature has no enveloped-signature transform")
	}
	return nil
}

// verify checks the SignatureValue over the SignedInfo with each
// certificate until one verifies it.
func (si *signedInfo) verify(certs []*x509.Certificate) error {
	if signatureMethods[si.method].verifiedBy(si.canonical, si.value, certs) {
		return nil
	}
	return refused("the signature is not made by the key of idp_metadata_signing_cert (%d certificates tried)", len(certs))
}

// onlyChild is el's only child element local in the XML Signature
// namespace, or nil when there is none or more than one.
func onlyChild(el *etree.Element, local string) *etree.Element {
	var found *etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == nsDSig {
			if found != nil {
				return nil
			}
			found = c
		}
	}
	return found
}

// exclusiveMode is Exclusive C14N with the PrefixList of the
// InclusiveNamespaces of method, if it has one.
func exclusiveMode(method *etree.Element) c14nMode {
	var m c14nMode
	for _, c := range method.ChildElements() {
		if c.Tag == "InclusiveNamespaces" && c.NamespaceURI() == string(dsig.CanonicalXML10ExclusiveAlgorithmId) {
			m.inclusivePrefixes = strings.Fields(c.SelectAttrValue("PrefixList", ""))
		}
	}
	for i, p := range m.inclusivePrefixes {
		if p == "#default" {
			m.inclusivePrefixes[i] = ""
		}
	}
	return m
}

// canonicalSignedInfo canonicalizes the SignedInfo of small (a root, its
// Signature, the SignedInfo in it) by mode. Not finding it where the
// element tree found it is an error, never the whole root canonicalized
// in its place.
func canonicalSignedInfo(small []byte, mode c14nMode) ([]byte, error) {
	at := signedInfoAt(small)
	if at < 0 {
		return nil, refused("canonicalizing the SignedInfo: not found as the Signature's child")
	}
	var out bytes.Buffer
	if err := streamC14N(&out, small, mode, at, -1); err != nil {
		return nil, refused("canonicalizing the SignedInfo: %v", err)
	}
	return out.Bytes(), nil
}

// signedInfoAt is the byte offset of the SignedInfo in small (a root, its
// Signature, the SignedInfo in it), or -1.
func signedInfoAt(small []byte) int64 {
	d := xml.NewDecoder(bytes.NewReader(small))
	depth := 0
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			return -1
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 3 && t.Name.Space == nsDSig && t.Name.Local == "SignedInfo" {
				return off
			}
		case xml.EndElement:
			depth--
		}
	}
}
