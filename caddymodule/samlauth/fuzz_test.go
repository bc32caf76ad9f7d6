package samlauth

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// The fuzz targets of the code this package parses by hand, below the
// store: Verify on a login in progress (its request ID injected, as the
// glue takes it back from the relay state), the canonicalizer against
// goxmldsig, decryption against crewjam/saml's xmlenc, and the query of a
// query-signed LogoutResponse against net/url. .ci/run runs each for a
// bounded number of executions.

// freshGuard is a ReplayGuard that finds every assertion new, so that each
// input is verified to the end.
type freshGuard struct{}

func (freshGuard) MarkOnce(context.Context, string, time.Time, time.Time) (bool, error) {
	return true, nil
}

// FuzzVerify: Verify, on the login whose AuthnRequest ID the responses
// answer, either refuses with a *Refusal or logs in exactly the user the
// IdP signed for (the victim, in the group engineering); never a panic,
// never another error. Seeds: every variant of samltest.Accepted, and an
// encrypted assertion in each layout with the response signed or not.
func FuzzVerify(f *testing.F) {
	e := newAttackEnv(f, nil)
	l := e.login(f)
	skew, delay := e.p.Tolerances()
	var seeds [][]byte
	for _, v := range samltest.Accepted(e.p.cert, skew, delay) {
		r := e.response(l)
		v.Edit(r)
		seeds = append(seeds, r.XML(f))
	}
	for _, layout := range []string{"prefixed", "ns0", "default", "context", "keybeside"} {
		c := interopCase{data: algAES128CBC, transport: algRSAOAEPMGF1P, layout: layout, signAssertion: true, signResponse: layout == "ns0"}
		seeds = append(seeds, e.interopResponse(f, l, c))
	}
	for _, raw := range seeds {
		// Control: every seed logs in, so that mutants start from the end.
		if _, err := e.p.Verify(context.Background(), raw, samltest.SPBaseURL, l.requestID, freshGuard{}, time.Now()); err != nil {
			f.Fatalf("seed refused: %v", err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		id, err := e.p.Verify(context.Background(), raw, samltest.SPBaseURL, l.requestID, freshGuard{}, time.Now())
		if err != nil {
			var r *Refusal
			if !errors.As(err, &r) {
				t.Fatalf("not a refusal: %v", err)
			}
			return
		}
		if id.Email != samltest.Victim || !slices.Equal(id.Groups, []string{"engineering"}) || id.Issuer != samltest.IdPEntityID {
			t.Fatalf("logged in %q in %q (issuer %q), which the IdP did not sign", id.Email, id.Groups, id.Issuer)
		}
	})
}

// c14nFuzzModes are the canonicalizations compared, ours and goxmldsig's.
var c14nFuzzModes = []struct {
	mode  c14nMode
	canon func() dsig.Canonicalizer
}{
	{c14nMode{}, func() dsig.Canonicalizer { return dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("") }},
	{c14nMode{inclusivePrefixes: []string{"", "a"}}, func() dsig.Canonicalizer {
		return dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("#default a")
	}},
	{c14nMode{inclusive: true}, dsig.MakeC14N10RecCanonicalizer},
}

// FuzzC14N compares streamC14N with goxmldsig's canonicalizers (over
// etree) on the root element of a document: where both canonicalize it,
// the bytes must be equal, but for goxmldsig's known departures from the
// specifications (goxmldsigQuirk); where streamC14N canonicalizes a
// document, etree must read it too. streamC14N refusing what goxmldsig
// accepts is allowed: it is stricter by design (no DTD, no processing
// instruction, no repeated attribute), and a refusal fails closed.
// Disagreements are settled against libxml2 by TestC14NCorpusMatchesXMLSec
// over the inputs kept in testdata/c14n.
func FuzzC14N(f *testing.F) {
	for _, doc := range c14nDocuments {
		f.Add(doc, uint8(0))
		f.Add(doc, uint8(2))
	}
	for _, doc := range c14nCorpus(f) {
		f.Add(doc, uint8(0))
		f.Add(doc, uint8(1))
		f.Add(doc, uint8(2))
	}
	f.Fuzz(func(t *testing.T, doc string, mode uint8) {
		m := c14nFuzzModes[int(mode)%len(c14nFuzzModes)]
		var ours bytes.Buffer
		if err := streamC14N(&ours, []byte(doc), m.mode, -1, -1); err != nil {
			return
		}
		d := etree.NewDocument()
		if err := d.ReadFromString(doc); err != nil || d.Root() == nil {
			t.Fatalf("streamC14N canonicalized what etree cannot read (%v): %q", err, doc)
		}
		theirs, err := m.canon().Canonicalize(d.Root())
		if err != nil || ours.String() == string(theirs) {
			return
		}
		if q := goxmldsigQuirk(doc, ours.String(), string(theirs)); q != "" {
			return
		}
		t.Fatalf("mode %d, %q:\nstreamC14N: %s\ngoxmldsig:  %s", int(mode)%len(c14nFuzzModes), doc, ours.String(), theirs)
	})
}

// goxmldsigQuirk names the known goxmldsig departure from C14N that
// explains why its canonical form of doc, theirs, differs from ours, or
// returns "":
//   - attributes of different prefixes are sorted by prefix, where C14N
//     sorts them by namespace URI (etreeutils.SortedAttrs says so itself);
//   - an xmlns="" is written where no default namespace was rendered
//     above (exclusive C14N only writes it to undo a rendered one).
func goxmldsigQuirk(doc, ours, theirs string) string {
	if mixedPrefixAttrs(doc) {
		return "attributes sorted by prefix"
	}
	if stripped := withoutEmptyDefaultNS(theirs); stripped != theirs && stripped == ours {
		return `spurious xmlns=""`
	}
	return ""
}

// withoutEmptyDefaultNS removes every xmlns="" attribute from the tags of a
// canonical form, and nothing from its text or attribute values.
func withoutEmptyDefaultNS(c string) string {
	const attr = ` xmlns=""`
	var b strings.Builder
	inTag, quoted := false, false
	for i := 0; i < len(c); i++ {
		switch ch := c[i]; {
		case !inTag && ch == '<':
			inTag = true
		case inTag && ch == '"':
			quoted = !quoted
		case inTag && !quoted && ch == '>':
			inTag = false
		case inTag && !quoted && strings.HasPrefix(c[i:], attr):
			i += len(attr) - 1
			continue
		}
		b.WriteByte(c[i])
	}
	return b.String()
}

// mixedPrefixAttrs reports whether an element of doc has attributes of
// two different prefixes (counting none as one), where goxmldsig's order
// can differ from C14N's.
func mixedPrefixAttrs(doc string) bool {
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := d.RawToken()
		if err != nil {
			return false
		}
		if s, ok := tok.(xml.StartElement); ok {
			prefixes := map[string]bool{}
			for _, a := range s.Attr {
				if a.Name.Space != "xmlns" && !(a.Name.Space == "" && a.Name.Local == "xmlns") {
					prefixes[a.Name.Space] = true
				}
			}
			if len(prefixes) > 1 {
				return true
			}
		}
	}
}

// FuzzDecrypt compares decryptData with crewjam/saml's xmlenc.Decrypt on
// an EncryptedData for the SP key: within what both implement the same
// way (AES-128/192/256-CBC and AES-128-GCM data, rsa-oaep-mgf1p key
// transport with SHA-1, one EncryptedKey in its KeyInfo) they give the
// same plaintext or both refuse, but for crewjam's known leniencies
// (decryptQuirk). Elsewhere decryptData must only not panic. Seeds:
// assertions encrypted by crewjam's xmlenc with each such cipher.
func FuzzDecrypt(f *testing.F) {
	kp := samltest.NewKeyPair(f, f.TempDir(), "sp")
	key := kp.Key
	a := samltest.Assertion("_req", samltest.Victim)
	plain := samltest.XMLBytes(f, a.Element())
	seeds := map[string]*etree.Element{}
	for _, bc := range []xmlenc.BlockCipher{xmlenc.AES128CBC, xmlenc.AES192CBC, xmlenc.AES256CBC} {
		enc := xmlenc.OAEP()
		enc.BlockCipher = bc
		enc.DigestMethod = &xmlenc.SHA1
		el, err := enc.Encrypt(kp.Cert, plain, nil)
		if err != nil {
			f.Fatal(err)
		}
		// Without the certificate crewjam names in the EncryptedKey (and
		// checks against the key, where decryptData ignores it).
		if ek := el.FindElement("./KeyInfo/EncryptedKey"); ek != nil {
			if ki := ek.FindElement("./KeyInfo"); ki != nil {
				ek.RemoveChild(ki)
			}
		}
		seeds[bc.Algorithm()] = el
	}
	// crewjam's GCM encryption cannot make the seed: it seals a buffer of
	// zeros instead of the plaintext and leaves the IV out (and panics
	// without a nonce); its decryption is sound. The interop tests'
	// encryption makes it instead.
	c := interopCase{data: algAES128GCM, transport: algRSAOAEPMGF1P, layout: "prefixed"}
	seeds[algAES128GCM] = c.encrypt(f, plain, kp.Cert).FindElement("./EncryptedData")
	for alg, el := range seeds {
		// Control: each seed is in the common subset and both decrypt it
		// to the assertion, so that the comparison is not vacuous.
		ea := etree.NewElement("saml:EncryptedAssertion")
		ea.CreateAttr("xmlns:saml", nsAssertion)
		ea.AddChild(el.Copy())
		ours, oerr := decryptData(ea, key, decryptOptions{ciphers: []string{alg}}, func([]byte) bool { return true })
		theirs, terr := crewjamDecrypt(key, el)
		if !inCommonSubset(el) || oerr != nil || terr != nil || !bytes.Equal(ours, plain) || !bytes.Equal(theirs, plain) {
			f.Fatalf("seed %s: in subset %v, ours %v, crewjam %v", alg, inCommonSubset(el), oerr, terr)
		}
		f.Add(samltest.XMLBytes(f, el))
	}
	allAES := []string{algAES128CBC, algAES192CBC, algAES256CBC, algAES128GCM, algAES192GCM, algAES256GCM}
	f.Fuzz(func(t *testing.T, raw []byte) {
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(raw); err != nil || doc.Root() == nil {
			return
		}
		ed := doc.Root()
		// Ours, on an EncryptedAssertion around it.
		ea := etree.NewElement("saml:EncryptedAssertion")
		ea.CreateAttr("xmlns:saml", nsAssertion)
		ea.AddChild(ed.Copy())
		ours, oerr := decryptData(ea, key, decryptOptions{ciphers: allAES}, func([]byte) bool { return true })
		if !inCommonSubset(ed) {
			return
		}
		theirs, terr := crewjamDecrypt(key, ed)
		switch {
		case oerr == nil && terr == nil:
			if !bytes.Equal(ours, theirs) {
				t.Fatalf("plaintexts differ:\nours:    %q\ncrewjam: %q", ours, theirs)
			}
		case oerr == nil:
			t.Fatalf("decrypted what crewjam refuses (%v): %q", terr, raw)
		case terr == nil:
			if decryptQuirk(ed, theirs) == "" {
				t.Fatalf("refused (%v) what crewjam decrypts to %q: %q", oerr, theirs, raw)
			}
		}
	})
}

// crewjamDecrypt is xmlenc.Decrypt, a panic being a refusal (it panics on
// a CBC ciphertext that is not whole blocks).
func crewjamDecrypt(key crypto.Signer, ed *etree.Element) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, errors.New("crewjam panicked")
		}
	}()
	return xmlenc.Decrypt(key, ed)
}

// inCommonSubset reports whether ed uses only what decryptData and
// crewjam's xmlenc implement alike: an EncryptedData, every element named
// in its proper namespace, AES-CBC or AES-128-GCM data, one EncryptedKey
// in its KeyInfo with rsa-oaep-mgf1p and a SHA-1 digest (crewjam applies
// the digest to MGF1 too, which rsa-oaep-mgf1p fixes to SHA-1), CipherValues
// without inner white space other than line breaks (crewjam only trims
// them), and no child element crewjam would find ahead of ours (etree's
// paths ignore namespaces).
func inCommonSubset(ed *etree.Element) bool {
	if !isNS(ed, nsXMLEnc, "EncryptedData") {
		return false
	}
	var ok = true
	var walk func(el *etree.Element)
	walk = func(el *etree.Element) {
		switch el.Tag {
		case "EncryptedData", "EncryptionMethod", "CipherData", "CipherValue", "EncryptedKey":
			ok = ok && el.NamespaceURI() == nsXMLEnc
		case "KeyInfo", "DigestMethod":
			ok = ok && el.NamespaceURI() == nsDSig
		default:
			ok = false
		}
		if el.Tag == "CipherValue" && strings.ContainsAny(strings.TrimSpace(el.Text()), " \t") {
			ok = false
		}
		seen := map[string]bool{}
		for _, c := range el.ChildElements() {
			if seen[c.Tag] {
				ok = false
			}
			seen[c.Tag] = true
			walk(c)
		}
	}
	walk(ed)
	if !ok {
		return false
	}
	m := ed.FindElement("./EncryptionMethod")
	if m == nil || !slices.Contains([]string{algAES128CBC, algAES192CBC, algAES256CBC, algAES128GCM}, m.SelectAttrValue("Algorithm", "")) {
		return false
	}
	ek := ed.FindElement("./KeyInfo/EncryptedKey")
	if ek == nil {
		return false
	}
	km := ek.FindElement("./EncryptionMethod")
	if km == nil || km.SelectAttrValue("Algorithm", "") != algRSAOAEPMGF1P || ek.FindElement("./KeyInfo") != nil {
		return false
	}
	if dm := km.FindElement("./DigestMethod"); dm != nil && dm.SelectAttrValue("Algorithm", "") != "http://www.w3.org/2000/09/xmldsig#sha1" {
		return false
	}
	return len(km.ChildElements()) <= 1
}

// decryptQuirk names crewjam's known leniency that explains its
// decrypting what decryptData refuses, or returns "": CBC padding longer
// than a block (XML Encryption allows 1 to a block; crewjam up to the
// whole plaintext), and a CBC ciphertext with a partial last block
// (crewjam decrypts the whole blocks).
func decryptQuirk(ed *etree.Element, plain []byte) string {
	alg := ed.FindElement("./EncryptionMethod").SelectAttrValue("Algorithm", "")
	if alg == algAES128GCM {
		return ""
	}
	cv := ed.FindElement("./CipherData/CipherValue")
	ct, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cv.Text()))
	if err != nil {
		return ""
	}
	if len(ct)%16 != 0 {
		return "partial last block"
	}
	if pad := len(ct) - 16 - len(plain); pad > 16 {
		return "padding longer than a block"
	}
	return ""
}

// FuzzLogoutQuery: whatever query parseRedirectQuery accepts, each
// parameter of the binding it returns is the one and only value net/url
// (r.URL.Query(), what the rest of a server reads) finds under that name,
// and the bytes a signature is checked over decode to exactly the values
// returned. And ValidateLogoutResponse accepts a query only with a
// LogoutResponse the IdP signed: the seeds' own.
func FuzzLogoutQuery(f *testing.F) {
	dir := f.TempDir()
	idp := samltest.NewIdP(f, dir, "idp")
	p := providerWith(f, samltest.LogoutDescriptor(idp.Cert), nil)
	const sha256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	var signedMessages []string
	for _, relay := range []string{"", "r", "a b&c=d"} {
		r := querySignedLogout(f, logoutResponse(f, p, nil, nil), relay, sha256, crypto.SHA256, idp.Key, nil)
		if err := p.ValidateLogoutResponse(r, samltest.SPBaseURL); err != nil {
			f.Fatalf("seed refused: %v", err) // control: the seeds are accepted
		}
		f.Add(r.URL.RawQuery)
		q, _ := url.ParseQuery(r.URL.RawQuery)
		signedMessages = append(signedMessages, q.Get("SAMLResponse"))
	}
	f.Add("SAML%52esponse=x&SAMLResponse=y&SigAlg=a&Signature=b")
	f.Add("SAMLResponse=x;SAMLResponse=y")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		q, err := parseRedirectQuery(rawQuery)
		if err == nil {
			std, _ := url.ParseQuery(rawQuery)
			for _, name := range redirectParams {
				if q.has(name) != std.Has(name) || (q.has(name) && !slices.Equal(std[name], []string{q.get(name)})) {
					t.Fatalf("%s: ours %v %q, net/url %q", name, q.has(name), q.get(name), std[name])
				}
			}
			if qs, err := q.signature("SAMLResponse"); err == nil {
				signed, err := url.ParseQuery(string(qs.signed))
				if err != nil || signed.Get("SAMLResponse") != q.get("SAMLResponse") || signed.Get("RelayState") != q.get("RelayState") ||
					signed.Get("SigAlg") != qs.alg {
					t.Fatalf("signed %q does not decode to the values read (%v)", qs.signed, err)
				}
			}
		}
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/saml/slo", RawQuery: rawQuery}}
		if p.ValidateLogoutResponse(r, samltest.SPBaseURL) == nil {
			if q == nil || !slices.Contains(signedMessages, q.get("SAMLResponse")) {
				t.Fatalf("accepted a LogoutResponse the IdP did not sign: %q", rawQuery)
			}
		}
	})
}
