package samlauth

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// tamperCipherValue flips bit 0 of byte at (from the end when negative)
// in the CipherValue of the EncryptedData, or of the EncryptedKey when key
// is set, in the response raw.
func tamperCipherValue(t testing.TB, raw []byte, key bool, at int) []byte {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	path := "//EncryptedData/CipherData/CipherValue"
	if key {
		path = "//EncryptedKey/CipherData/CipherValue"
	}
	cv := doc.FindElement(path)
	if cv == nil {
		t.Fatalf("no %s", path)
	}
	b, err := base64.StdEncoding.DecodeString(cv.Text())
	if err != nil {
		t.Fatal(err)
	}
	if at < 0 {
		at += len(b)
	}
	b[at] ^= 1
	cv.SetText(base64.StdEncoding.EncodeToString(b))
	return samltest.XMLBytes(t, doc.Root())
}

// setAlgorithm replaces the Algorithm of the EncryptedData's method.
func setAlgorithm(t testing.TB, raw []byte, alg string) []byte {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	doc.FindElement("//EncryptedData/EncryptionMethod").CreateAttr("Algorithm", alg)
	return samltest.XMLBytes(t, doc.Root())
}

// responseWithPlaintext is the IdP's response carrying plain, encrypted
// as c says, in the place of the assertion.
func (e *attackEnv) responseWithPlaintext(t testing.TB, l attackLogin, c interopCase, plain string) []byte {
	t.Helper()
	root := e.response(l).Response.Element()
	root.AddChild(c.encrypt(t, []byte(plain), e.p.cert))
	return samltest.XMLBytes(t, root)
}

// TestDecryptionFailuresLookAlike proves that every way a decryption can
// fail gives one and the same refusal, so that an attacker submitting
// altered ciphertexts learns nothing (no padding or parsing oracle).
func TestDecryptionFailuresLookAlike(t *testing.T) {
	e := newAttackEnv(t, acceptAll)
	other := samltest.NewKeyPair(t, t.TempDir(), "other-sp")
	cbc := interopCase{data: algAES128CBC, transport: algRSAOAEPMGF1P, layout: "prefixed", signAssertion: true}
	gcm := cbc
	gcm.data = algAES256GCM
	des3 := cbc
	des3.data = algTripleDESCBC
	plainAssertion := samltest.Assertion("", samltest.Victim)
	signed := e.idp.Sign(t, plainAssertion.Element())
	cases := []struct {
		name string
		make func(l attackLogin) []byte
	}{
		{"CBC last block altered (padding)", func(l attackLogin) []byte { return tamperCipherValue(t, e.interopResponse(t, l, cbc), false, -1) }},
		{"CBC IV altered (plaintext not XML)", func(l attackLogin) []byte { return tamperCipherValue(t, e.interopResponse(t, l, cbc), false, 0) }},
		{"3DES last block altered", func(l attackLogin) []byte { return tamperCipherValue(t, e.interopResponse(t, l, des3), false, -1) }},
		{"GCM tag altered", func(l attackLogin) []byte { return tamperCipherValue(t, e.interopResponse(t, l, gcm), false, -1) }},
		{"GCM ciphertext altered", func(l attackLogin) []byte { return tamperCipherValue(t, e.interopResponse(t, l, gcm), false, 20) }},
		{"EncryptedKey altered", func(l attackLogin) []byte { return tamperCipherValue(t, e.interopResponse(t, l, cbc), true, 5) }},
		{"key length of another cipher", func(l attackLogin) []byte { return setAlgorithm(t, e.interopResponse(t, l, cbc), algAES256CBC) }},
		{"encrypted to another SP", func(l attackLogin) []byte {
			root := e.response(l).Response.Element()
			root.AddChild(cbc.encrypt(t, samltest.XMLBytes(t, signed), other.Cert))
			return samltest.XMLBytes(t, root)
		}},
		{"plaintext is not an assertion", func(l attackLogin) []byte {
			return e.responseWithPlaintext(t, l, cbc, `<saml:Foo xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"/>`)
		}},
		{"plaintext has a DOCTYPE", func(l attackLogin) []byte {
			return e.responseWithPlaintext(t, l, cbc, `<!DOCTYPE x [<!ENTITY a "b">]>`+string(samltest.XMLBytes(t, signed)))
		}},
		{"plaintext has two assertions", func(l attackLogin) []byte {
			s := string(samltest.XMLBytes(t, signed))
			return e.responseWithPlaintext(t, l, cbc, s+s)
		}},
		{"plaintext is text", func(l attackLogin) []byte { return e.responseWithPlaintext(t, l, cbc, "alice") }},
		{"plaintext has an undeclared prefix", func(l attackLogin) []byte {
			return e.responseWithPlaintext(t, l, cbc, `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><foo:Bar/></saml:Assertion>`)
		}},
		{"plaintext has a nested assertion", func(l attackLogin) []byte {
			return e.responseWithPlaintext(t, l, cbc, `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:Advice><saml:Assertion/></saml:Advice></saml:Assertion>`)
		}},
		// A ciphertext altered into another well-formed assertion must not
		// be told apart from one that did not decrypt.
		{"signed assertion altered before encryption", func(l attackLogin) []byte {
			a := signed.Copy()
			samltest.AttrValue(t, a, "email").SetText(samltest.Attacker)
			return e.responseWithPlaintext(t, l, cbc, string(samltest.XMLBytes(t, a)))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := e.login(t)
			id, err := e.verify(t, l, tc.make(l))
			expectRefused(t, id, err, "")
			if err.Error() != errDecrypt.Error() {
				t.Errorf("reason %q, want the one decryption refusal %q", err, errDecrypt)
			}
		})
	}
}

// TestEncryptionRefusals covers what is refused with its own reason:
// rsa-1_5 key transport unless allowed, unknown algorithms, and an altered
// ciphertext in a signed response, refused for its signature before
// anything is decrypted.
func TestEncryptionRefusals(t *testing.T) {
	e := newAttackEnv(t, nil)
	rsa15 := interopCase{data: algAES128CBC, transport: algRSA15, layout: "prefixed", signAssertion: true}
	cbc := interopCase{data: algAES128CBC, transport: algRSAOAEPMGF1P, layout: "prefixed", signResponse: true}
	for _, tc := range []struct {
		name, reason string
		make         func(l attackLogin) []byte
	}{
		{"rsa-1_5 key transport", "rsa-1_5|padding-oracle", func(l attackLogin) []byte { return e.interopResponse(t, l, rsa15) }},
		{"unknown data algorithm", "kw-aes128\" is not supported", func(l attackLogin) []byte {
			c := cbc
			c.signAssertion, c.signResponse = true, false
			return setAlgorithm(t, e.interopResponse(t, l, c), "http://www.w3.org/2001/04/xmlenc#kw-aes128")
		}},
		{"unknown key transport", "is not supported", func(l attackLogin) []byte {
			c := cbc
			c.transport = "http://example.com/rsa-magic"
			return e.interopResponse(t, l, c)
		}},
		{"altered ciphertext in a signed response", "signature", func(l attackLogin) []byte {
			return tamperCipherValue(t, e.interopResponse(t, l, cbc), false, -1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := e.login(t)
			id, err := e.verify(t, l, tc.make(l))
			expectRefused(t, id, err, tc.reason)
		})
	}
	t.Run("rsa-1_5 refusal says why and how", func(t *testing.T) {
		l := e.login(t)
		_, err := e.verify(t, l, e.interopResponse(t, l, rsa15))
		for _, want := range []string{"rsa-1_5", "padding-oracle", "allow_rsa1_5"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %v does not mention %q", err, want)
			}
		}
	})
}

// TestAllowRSA15 accepts rsa-1_5 key transport when allowed, and refuses
// an altered key with the one decryption refusal.
func TestAllowRSA15(t *testing.T) {
	e := newAttackEnv(t, func(c *Config) { acceptAll(c); c.AllowRSA15 = true })
	for _, data := range testDataCiphers {
		c := interopCase{data: data, transport: algRSA15, layout: "prefixed", signAssertion: true}
		t.Run(short(data), func(t *testing.T) {
			l := e.login(t)
			id, err := e.verify(t, l, e.interopResponse(t, l, c))
			expectLogin(t, id, err, samltest.Victim)
			l = e.login(t)
			id, err = e.verify(t, l, tamperCipherValue(t, e.interopResponse(t, l, c), true, 5))
			expectRefused(t, id, err, "")
			if err.Error() != errDecrypt.Error() {
				t.Errorf("reason %q, want %q", err, errDecrypt)
			}
		})
	}
}

// TestSignatureCheckerUnknownElement: the library is only ever answered
// about elements of the response as received.
func TestSignatureCheckerUnknownElement(t *testing.T) {
	c := &signatureChecker{originals: map[string]*etree.Element{}, decrypted: map[*etree.Element]bool{}}
	el := etree.NewElement("Assertion")
	el.CreateAttr("ID", "_forged")
	if err := c.VerifySignature(nil, el); err == nil || !strings.Contains(err.Error(), "not an element of the response") {
		t.Errorf("unknown element: %v", err)
	}
}
