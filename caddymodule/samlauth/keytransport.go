package samlauth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // digests that OAEP may name
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/beevik/etree"
)

// The key transport algorithms of XML Encryption, which carry the data
// encryption key encrypted to the SP's RSA key.
const (
	// algRSAOAEPMGF1P is RSA-OAEP with MGF1 over SHA-1 and a digest named
	// by DigestMethod (SHA-1 when absent): XML Encryption 1.0.
	algRSAOAEPMGF1P = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
	// algRSAOAEP is RSA-OAEP of XML Encryption 1.1, whose MGF element
	// names the mask generation digest (MGF1 with SHA-1 when absent).
	algRSAOAEP = "http://www.w3.org/2009/xmlenc11#rsa-oaep"
	// algRSA15 is RSAES-PKCS1-v1_5, refused unless Config.AllowRSA15:
	// its padding checks make a decryption oracle (Bleichenbacher).
	algRSA15 = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"
)

// digests are the DigestMethod URIs OAEP may name.
var digests = map[string]crypto.Hash{
	"http://www.w3.org/2000/09/xmldsig#sha1":        crypto.SHA1,
	"http://www.w3.org/2001/04/xmldsig-more#sha224": crypto.SHA224,
	"http://www.w3.org/2001/04/xmlenc#sha256":       crypto.SHA256,
	"http://www.w3.org/2001/04/xmldsig-more#sha384": crypto.SHA384,
	"http://www.w3.org/2001/04/xmlenc#sha512":       crypto.SHA512,
}

// mgfs are the MGF URIs of XML Encryption 1.1.
var mgfs = map[string]crypto.Hash{
	"http://www.w3.org/2009/xmlenc11#mgf1sha1":   crypto.SHA1,
	"http://www.w3.org/2009/xmlenc11#mgf1sha224": crypto.SHA224,
	"http://www.w3.org/2009/xmlenc11#mgf1sha256": crypto.SHA256,
	"http://www.w3.org/2009/xmlenc11#mgf1sha384": crypto.SHA384,
	"http://www.w3.org/2009/xmlenc11#mgf1sha512": crypto.SHA512,
}

// errRSA15 is the refusal of rsa-1_5 key transport while it is not allowed.
var errRSA15 = errors.New("assertion refused: the IdP encrypted the key with rsa-1_5, which is refused because it invites padding-oracle attacks; configure the IdP for rsa-oaep (or rsa-oaep-mgf1p), or set allow_rsa1_5 to accept it")

// transportedKey decrypts the EncryptedKey element ek with the SP key and
// returns the data encryption key, which must be keySize bytes long. Errors
// about the algorithms name them; every failure of the decryption itself
// is errDecrypt.
func transportedKey(ek *etree.Element, key crypto.Signer, keySize int, allowRSA15 bool) ([]byte, error) {
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("assertion refused: the assertion is encrypted but sp_key is not an RSA key; RSA key transport needs one")
	}
	method := childNS(ek, nsXMLEnc, "EncryptionMethod")
	if method == nil {
		return nil, errors.New("assertion refused: EncryptedKey has no EncryptionMethod")
	}
	ct, err := cipherValue(ek)
	if err != nil {
		return nil, err
	}
	alg := method.SelectAttrValue("Algorithm", "")
	switch alg {
	case algRSA15:
		if !allowRSA15 {
			return nil, errRSA15
		}
		// A wrong padding yields a random key instead of an error, so that
		// the answer is the same as for a wrong key (RFC 3218, section 2.3.2).
		k := make([]byte, keySize)
		if _, err := rand.Read(k); err != nil {
			return nil, errDecrypt
		}
		if err := rsa.DecryptPKCS1v15SessionKey(nil, rsaKey, ct, k); err != nil {
			return nil, errDecrypt
		}
		return k, nil
	case algRSAOAEPMGF1P, algRSAOAEP:
		opts, err := oaepOptions(method, alg)
		if err != nil {
			return nil, err
		}
		k, err := rsaKey.Decrypt(nil, ct, opts)
		if err != nil || len(k) != keySize {
			return nil, errDecrypt
		}
		return k, nil
	}
	return nil, fmt.Errorf("assertion refused: key transport algorithm %q is not supported (want rsa-oaep-mgf1p or rsa-oaep)", alg)
}

// oaepOptions reads the digest, MGF and label of an OAEP EncryptionMethod.
func oaepOptions(method *etree.Element, alg string) (*rsa.OAEPOptions, error) {
	opts := &rsa.OAEPOptions{Hash: crypto.SHA1, MGFHash: crypto.SHA1}
	if dm := childNS(method, nsDSig, "DigestMethod"); dm != nil {
		u := dm.SelectAttrValue("Algorithm", "")
		h, ok := digests[u]
		if !ok {
			return nil, fmt.Errorf("assertion refused: OAEP digest %q is not supported", u)
		}
		opts.Hash = h
	}
	if mgf := childNS(method, nsXMLEnc11, "MGF"); mgf != nil {
		u := mgf.SelectAttrValue("Algorithm", "")
		h, ok := mgfs[u]
		if !ok || alg != algRSAOAEP {
			return nil, fmt.Errorf("assertion refused: OAEP mask generation function %q is not supported with %s", u, alg)
		}
		opts.MGFHash = h
	}
	if p := childNS(method, nsXMLEnc, "OAEPparams"); p != nil {
		label, err := base64.StdEncoding.DecodeString(stripSpace(p.Text()))
		if err != nil {
			return nil, errors.New("assertion refused: OAEPparams is not base64")
		}
		opts.Label = label
	}
	return opts, nil
}

// cipherValue decodes the CipherData/CipherValue of an EncryptedKey or
// EncryptedData (CipherReference is not supported: it fetches by URI).
func cipherValue(el *etree.Element) ([]byte, error) {
	cd := childNS(el, nsXMLEnc, "CipherData")
	var cv *etree.Element
	if cd != nil {
		cv = childNS(cd, nsXMLEnc, "CipherValue")
	}
	if cv == nil {
		return nil, fmt.Errorf("assertion refused: %s has no CipherData/CipherValue", el.Tag)
	}
	b, err := base64.StdEncoding.DecodeString(stripSpace(cv.Text()))
	if err != nil {
		return nil, fmt.Errorf("assertion refused: the CipherValue of %s is not base64", el.Tag)
	}
	return b, nil
}

// stripSpace removes the white space that base64 text may be broken by.
func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
}
