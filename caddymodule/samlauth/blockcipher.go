package samlauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"errors"
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

// dataCiphers are the supported data encryption algorithms by URI.
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
// 5.2 of XML Encryption 1.0; unlike PKCS#7 they need not repeat it). The
// padding is checked without branching on its value.
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
