package samlauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"errors"
	"fmt"
)

// The data encryption algorithms of XML Encryption that an encrypted
// assertion may use. Triple DES is the REQUIRED one of XML Encryption 1.0
// (section 5.2.1) and takes a 192-bit key (three DES keys); crewjam/saml
// registers it with a single-DES key, which is why this package decrypts
// assertions itself.
const (
	algTripleDESCBC = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"
	algAES128CBC    = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
	algAES192CBC    = "http://www.w3.org/2001/04/xmlenc#aes192-cbc"
	algAES256CBC    = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
	algAES128GCM    = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
	algAES192GCM    = "http://www.w3.org/2009/xmlenc11#aes192-gcm"
	algAES256GCM    = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
)

// dataCipher is one data encryption algorithm: its key length in bytes
// and how to decrypt a CipherValue (IV followed by the ciphertext, and for
// GCM the 128-bit tag) with a key of that length.
type dataCipher struct {
	name    string // short name for messages, e.g. "aes128-cbc"
	keySize int
	decrypt func(key, data []byte) ([]byte, error)
}

// dataCiphers are the supported data encryption algorithms by URI; a
// Provider accepts those of Config.DataCiphers.
var dataCiphers = map[string]dataCipher{
	algTripleDESCBC: {"tripledes-cbc", 24, func(k, d []byte) ([]byte, error) { return cbcDecrypt(des.NewTripleDESCipher, k, d) }},
	algAES128CBC:    {"aes128-cbc", 16, func(k, d []byte) ([]byte, error) { return cbcDecrypt(aes.NewCipher, k, d) }},
	algAES192CBC:    {"aes192-cbc", 24, func(k, d []byte) ([]byte, error) { return cbcDecrypt(aes.NewCipher, k, d) }},
	algAES256CBC:    {"aes256-cbc", 32, func(k, d []byte) ([]byte, error) { return cbcDecrypt(aes.NewCipher, k, d) }},
	algAES128GCM:    {"aes128-gcm", 16, gcmDecrypt},
	algAES192GCM:    {"aes192-gcm", 24, gcmDecrypt},
	algAES256GCM:    {"aes256-gcm", 32, gcmDecrypt},
}

// errDecrypt is the one error of every failed decryption, whatever went
// wrong (key transport, padding, authentication tag, the plaintext not
// being one well-formed assertion) and of a decrypted assertion whose
// signature does not verify: distinct answers would let an attacker who
// submits altered ciphertexts learn the plaintext (a padding or parsing
// oracle, as in Jager and Somorovsky's attack on XML Encryption).
var errDecrypt = errors.New("assertion refused: the encrypted assertion did not decrypt with sp_key to one well-formed assertion with a valid signature (check sp_key and the IdP's signing certificate)")

// cbcDecrypt decrypts data, an IV of one block followed by whole blocks,
// in CBC mode and removes the XML Encryption padding: the last byte is the
// number of padding bytes (1 to a block), the others are arbitrary (section
// 5.2 of XML Encryption 1.0; unlike PKCS#7 they need not repeat it).
//
// The range check of the padding length has no branch on its value, but
// that is all: a bad length is then refused at once, while a good one goes
// on to the parsing of the plaintext, which takes longer and fails in
// ways that depend on the plaintext. The answer is the same errDecrypt
// either way, yet its timing may tell them apart, so CBC is not free of
// the padding and parsing oracles of Jager and Somorovsky's attack on XML
// Encryption. What stops them: a signed Response is verified before
// anything is decrypted, so its ciphertext cannot be altered; and with
// Config.DataCiphers pinned to GCM, whose tag is checked before any byte of
// plaintext is used, CBC is not tried at all.
func cbcDecrypt(newBlock func([]byte) (cipher.Block, error), key, data []byte) ([]byte, error) {
	b, err := newBlock(key)
	if err != nil {
		return nil, errDecrypt
	}
	bs := b.BlockSize()
	if len(data) < 2*bs || len(data)%bs != 0 {
		return nil, errDecrypt
	}
	iv, ct := data[:bs], data[bs:]
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, ct)
	pad := int(out[len(out)-1])
	// ok is 1 when 1 <= pad <= bs, computed in constant time.
	ok := subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, bs)
	if ok != 1 {
		return nil, errDecrypt
	}
	return out[:len(out)-pad], nil
}

// gcmDecrypt decrypts data, a 96-bit IV followed by the ciphertext and
// its 128-bit authentication tag (XML Encryption 1.1, section 5.2.4), with
// AES in GCM mode and no additional data.
func gcmDecrypt(key, data []byte) ([]byte, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, errDecrypt
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, errDecrypt
	}
	n := g.NonceSize()
	if len(data) < n+g.Overhead() {
		return nil, errDecrypt
	}
	out, err := g.Open(nil, data[:n], data[n:], nil)
	if err != nil {
		return nil, errDecrypt
	}
	return out, nil
}

// DefaultDataCiphers are the data encryption algorithms accepted when
// Config.DataCiphers is empty: AES in CBC mode, what SimpleSAMLphp,
// pysaml2, ADFS, Entra ID and crewjam/saml's IdP send by default. One mode
// only: accepting GCM and CBC for the same key lets an attacker turn a GCM
// ciphertext into a CBC one to decrypt it through CBC's oracles (the
// backwards-compatibility attack of Jager, Schinzel and Somorovsky). For
// an IdP that encrypts with AES-GCM (Shibboleth, which reads the
// algorithms from the SP metadata), pin GCM instead. Triple DES is left
// out: a 64-bit block.
var DefaultDataCiphers = []string{"aes128-cbc", "aes192-cbc", "aes256-cbc"}

// dataCipherURIs maps the short names of Config.DataCiphers to the
// algorithm URIs, in the order given (DefaultDataCiphers for none); it
// refuses an unknown or repeated name.
func dataCipherURIs(names []string) ([]string, error) {
	if len(names) == 0 {
		names = DefaultDataCiphers
	}
	var uris []string
	seen := map[string]bool{}
	for _, n := range names {
		uri := ""
		for u, c := range dataCiphers {
			if c.name == n {
				uri = u
			}
		}
		if uri == "" {
			return nil, fmt.Errorf("data_ciphers: unknown cipher %q (want some of %s)", n, supportedDataCiphers())
		}
		if seen[uri] {
			return nil, fmt.Errorf("data_ciphers: %q given twice", n)
		}
		seen[uri] = true
		uris = append(uris, uri)
	}
	return uris, nil
}
