package samlauth

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"testing"

	"github.com/beevik/etree"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// interopCase is one way an IdP may build an encrypted (or plain)
// response: the algorithms, the prefix layout and what it signs.
type interopCase struct {
	data      string // data encryption URI; "" sends the assertion in the clear
	transport string // key transport URI
	digest    string // OAEP DigestMethod URI; "" leaves it out (SHA-1)
	mgf       string // xmlenc11 MGF URI; "" leaves it out (MGF1-SHA-1)

	// layout is the prefix layout of the whole response:
	//   prefixed: samlp/saml/ds/xenc, declared once where first used;
	//   ns0:      every element has the prefix ns0, redeclared whenever its
	//             namespace changes (Response in the protocol, EncryptedData
	//             in xmlenc, the signature in xmldsig, ...);
	//   default:  no prefixes, default namespaces redeclared as they change;
	//   context:  prefixed, the plaintext assertion declaring none of its
	//             own prefixes (they are in scope around EncryptedAssertion);
	//   keybeside: prefixed, the EncryptedKey beside the EncryptedData and
	//             referenced by a RetrievalMethod.
	layout string

	signAssertion, signResponse bool
}

// elementPrefix is the prefix the layout gives the namespace uri.
func (c interopCase) elementPrefix(uri string) string {
	switch c.layout {
	case "ns0":
		return "ns0"
	case "default":
		return ""
	}
	return wellKnownPrefixes[uri]
}

// child adds to parent (nil for a root) an element local in namespace uri
// with the layout's prefix, declaring it unless it is already in scope.
func (c interopCase) child(parent *etree.Element, uri, local string) *etree.Element {
	el := etree.NewElement(local)
	el.Space = c.elementPrefix(uri)
	if parent != nil {
		parent.AddChild(el)
	}
	if el.NamespaceURI() != uri {
		if el.Space == "" {
			el.CreateAttr("xmlns", uri)
		} else {
			el.CreateAttr("xmlns:"+el.Space, uri)
		}
	}
	return el
}

// relayout rewrites el, as built by crewjam/saml (samlp and saml
// prefixes), into the case's layout, before anything is signed.
func (c interopCase) relayout(el *etree.Element) *etree.Element {
	if c.layout != "ns0" && c.layout != "default" {
		return el
	}
	uris := map[*etree.Element]string{}
	var collect func(e *etree.Element)
	collect = func(e *etree.Element) {
		uris[e] = e.NamespaceURI()
		for _, ch := range e.ChildElements() {
			collect(ch)
		}
	}
	collect(el)
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		for _, p := range []string{"saml", "samlp"} {
			e.RemoveAttr("xmlns:" + p)
		}
		uri := uris[e]
		e.Space = c.elementPrefix(uri)
		if e.NamespaceURI() != uri {
			if e.Space == "" {
				e.CreateAttr("xmlns", uri)
			} else {
				e.CreateAttr("xmlns:"+e.Space, uri)
			}
		}
		for _, ch := range e.ChildElements() {
			walk(ch)
		}
	}
	walk(el)
	return el
}

// interopResponse is the IdP's answer to l built as c says.
func (e *attackEnv) interopResponse(t testing.TB, l attackLogin, c interopCase) []byte {
	t.Helper()
	r := e.response(l)
	a := c.relayout(r.Assertion.Element())
	if c.signAssertion {
		a = e.idp.SignPrefixed(t, a, c.elementPrefix(nsDSig))
	}
	root := c.relayout(r.Response.Element())
	if c.data == "" {
		root.AddChild(a)
	} else {
		if c.layout == "context" {
			a.RemoveAttr("xmlns:saml")
			a.RemoveAttr("xmlns:samlp")
		}
		root.AddChild(c.encrypt(t, samltest.XMLBytes(t, a), e.p.cert))
	}
	if c.signResponse {
		root = e.idp.SignPrefixed(t, root, c.elementPrefix(nsDSig))
	}
	return samltest.XMLBytes(t, root)
}

// encrypt wraps plain in an EncryptedAssertion for cert.
func (c interopCase) encrypt(t testing.TB, plain []byte, cert *x509.Certificate) *etree.Element {
	t.Helper()
	ea := c.child(nil, nsAssertion, "EncryptedAssertion")
	if c.layout == "context" {
		ea.CreateAttr("xmlns:samlp", nsProtocol)
	}
	ed := c.child(ea, nsXMLEnc, "EncryptedData")
	ed.CreateAttr("Type", nsXMLEnc+"Element")
	c.child(ed, nsXMLEnc, "EncryptionMethod").CreateAttr("Algorithm", c.data)
	ki := c.child(ed, nsDSig, "KeyInfo")
	key := make([]byte, testKeySize(c.data))
	_, _ = rand.Read(key)
	ekParent := ki
	if c.layout == "keybeside" {
		rm := c.child(ki, nsDSig, "RetrievalMethod")
		rm.CreateAttr("URI", "#ek1")
		rm.CreateAttr("Type", nsXMLEnc+"EncryptedKey")
		ekParent = ea
	}
	setCipherValue(c, c.child(ed, nsXMLEnc, "CipherData"), encryptData(t, c.data, key, plain))
	ek := c.child(ekParent, nsXMLEnc, "EncryptedKey")
	ek.CreateAttr("Id", "ek1")
	em := c.child(ek, nsXMLEnc, "EncryptionMethod")
	em.CreateAttr("Algorithm", c.transport)
	if c.digest != "" {
		c.child(em, nsDSig, "DigestMethod").CreateAttr("Algorithm", c.digest)
	}
	if c.mgf != "" {
		c.child(em, nsXMLEnc11, "MGF").CreateAttr("Algorithm", c.mgf)
	}
	setCipherValue(c, c.child(ek, nsXMLEnc, "CipherData"), c.encryptKey(t, cert.PublicKey.(*rsa.PublicKey), key))
	return ea
}

func setCipherValue(c interopCase, cd *etree.Element, b []byte) {
	c.child(cd, nsXMLEnc, "CipherValue").SetText(base64.StdEncoding.EncodeToString(b))
}

// testKeySize is the key length of a data encryption algorithm, written
// out here rather than taken from the code under test.
func testKeySize(alg string) int {
	switch alg {
	case algAES128CBC, algAES128GCM:
		return 16
	case algAES256CBC, algAES256GCM:
		return 32
	}
	return 24 // aes192, tripledes
}

// encryptData encrypts plain the way XML Encryption says: IV first; CBC
// padding of random bytes ending with their count; GCM with a 96-bit IV.
func encryptData(t testing.TB, alg string, key, plain []byte) []byte {
	t.Helper()
	if alg == algAES128GCM || alg == algAES192GCM || alg == algAES256GCM {
		b, _ := aes.NewCipher(key)
		g, _ := cipher.NewGCM(b)
		iv := make([]byte, g.NonceSize())
		_, _ = rand.Read(iv)
		return g.Seal(iv, iv, plain, nil)
	}
	var b cipher.Block
	var err error
	if alg == algTripleDESCBC {
		b, err = des.NewTripleDESCipher(key)
	} else {
		b, err = aes.NewCipher(key)
	}
	if err != nil {
		t.Fatal(err)
	}
	bs := b.BlockSize()
	n := bs - len(plain)%bs
	pad := make([]byte, n)
	_, _ = rand.Read(pad)
	pad[n-1] = byte(n)
	data := append(append([]byte{}, plain...), pad...)
	out := make([]byte, bs+len(data))
	_, _ = rand.Read(out[:bs])
	cipher.NewCBCEncrypter(b, out[:bs]).CryptBlocks(out[bs:], data)
	return out
}

// encryptKey encrypts the data key to pub with the case's key transport.
func (c interopCase) encryptKey(t testing.TB, pub *rsa.PublicKey, key []byte) []byte {
	t.Helper()
	if c.transport == algRSA15 {
		out, err := rsa.EncryptPKCS1v15(rand.Reader, pub, key)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	out, err := rsa.EncryptOAEPWithOptions(rand.Reader, pub, key, &rsa.OAEPOptions{Hash: testHashes[c.digest], MGFHash: testHashes[c.mgf]})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// testHashes are the digests the DigestMethod and MGF URIs name, written
// out here rather than taken from the code under test.
var testHashes = map[string]crypto.Hash{
	"":                                       crypto.SHA1,
	"http://www.w3.org/2000/09/xmldsig#sha1": crypto.SHA1,
	"http://www.w3.org/2001/04/xmlenc#sha256":       crypto.SHA256,
	"http://www.w3.org/2001/04/xmlenc#sha512":       crypto.SHA512,
	"http://www.w3.org/2001/04/xmldsig-more#sha384": crypto.SHA384,
	"http://www.w3.org/2009/xmlenc11#mgf1sha1":      crypto.SHA1,
	"http://www.w3.org/2009/xmlenc11#mgf1sha256":    crypto.SHA256,
	"http://www.w3.org/2009/xmlenc11#mgf1sha512":    crypto.SHA512,
}
