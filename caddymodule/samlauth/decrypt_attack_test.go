package samlauth

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// withDecoyKeys puts n decoy EncryptedKeys (the real one's algorithm, a
// random CipherValue of the same length: each costs the SP an RSA
// decryption) before the real one; with keepReal false the real one is
// dropped.
func withDecoyKeys(t testing.TB, raw []byte, n int, keepReal bool) []byte {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	real := doc.FindElement("//EncryptedKey")
	if real == nil {
		t.Fatal("no EncryptedKey")
	}
	parent := real.Parent()
	b, _ := base64.StdEncoding.DecodeString(real.FindElement("CipherData/CipherValue").Text())
	for range n {
		d := real.Copy()
		junk := make([]byte, len(b))
		_, _ = rand.Read(junk)
		junk[0] = 0 // below the modulus
		d.FindElement("CipherData/CipherValue").SetText(base64.StdEncoding.EncodeToString(junk))
		parent.InsertChildAt(real.Index(), d)
	}
	if !keepReal {
		parent.RemoveChild(real)
	}
	return samltest.XMLBytes(t, doc.Root())
}

// TestEncryptedKeysBounded: an encrypted assertion may carry at most
// maxEncryptedKeys EncryptedKeys; with more it is refused before any is
// tried (each costs an RSA private-key operation, and the response is
// not signed where it can be checked first), even when the right key is
// among them.
func TestEncryptedKeysBounded(t *testing.T) {
	e := newAttackEnv(t, nil)
	c := interopCase{data: algAES128CBC, transport: algRSAOAEPMGF1P, layout: "prefixed", signAssertion: true}
	l := e.login(t)
	id, err := e.verify(t, l, withDecoyKeys(t, e.interopResponse(t, l, c), 3, true))
	expectLogin(t, id, err, samltest.Victim)
	for _, decoys := range []int{4, 1000} {
		l := e.login(t)
		id, err := e.verify(t, l, withDecoyKeys(t, e.interopResponse(t, l, c), decoys, true))
		if err == nil || !strings.Contains(err.Error(), "EncryptedKeys than 4") {
			t.Errorf("%d decoys and the right key: %v, %v; want a refusal of the number of EncryptedKeys", decoys, id, err)
		}
	}
}

// TestDataCipherPinning: only the data ciphers of Config.DataCiphers are
// tried. By default (AES-CBC) an AES-GCM assertion is refused by name;
// pinned to GCM, a CBC one is, and so is a GCM ciphertext relabelled as
// CBC (the backwards-compatibility attack's first step), before its key is
// decrypted.
func TestDataCipherPinning(t *testing.T) {
	cbc := interopCase{data: algAES128CBC, transport: algRSAOAEPMGF1P, layout: "prefixed", signAssertion: true}
	gcm := cbc
	gcm.data = algAES128GCM
	def := newAttackEnv(t, nil)
	pinned := newAttackEnv(t, func(c *Config) { c.DataCiphers = []string{"aes256-gcm", "aes128-gcm"} })
	for _, tc := range []struct {
		name    string
		e       *attackEnv
		c       interopCase
		relabel string
		want    string // "" for accepted
	}{
		{"default, CBC", def, cbc, "", ""},
		{"default, GCM", def, gcm, "", "aes128-gcm is not among data_ciphers (aes128-cbc, aes192-cbc, aes256-cbc)"},
		{"pinned GCM, GCM", pinned, gcm, "", ""},
		{"pinned GCM, CBC", pinned, cbc, "", "aes128-cbc is not among data_ciphers (aes256-gcm, aes128-gcm)"},
		{"pinned GCM, GCM relabelled CBC", pinned, gcm, algAES128CBC, "aes128-cbc is not among data_ciphers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.e.login(t)
			raw := tc.e.interopResponse(t, l, tc.c)
			if tc.relabel != "" {
				raw = setAlgorithm(t, raw, tc.relabel)
			}
			id, err := tc.e.verify(t, l, raw)
			if tc.want == "" {
				expectLogin(t, id, err, samltest.Victim)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, %v; want a refusal about %q", id, err, tc.want)
			}
		})
	}
}

// BenchmarkDecryptWorstCase is the most CPU one POST to the ACS can cost
// through decryption: an unsigned response whose encrypted assertion
// carries maxEncryptedKeys EncryptedKeys of the SP key's size, none the
// right one (one RSA-2048 private-key operation each), and the same with
// 1000 of them, refused at the count.
func BenchmarkDecryptWorstCase(b *testing.B) {
	e := newAttackEnv(b, nil)
	c := interopCase{data: algAES128CBC, transport: algRSAOAEPMGF1P, layout: "prefixed", signAssertion: true}
	for _, n := range []int{maxEncryptedKeys, 1000} {
		b.Run(map[int]string{maxEncryptedKeys: "max-keys", 1000: "1000-keys"}[n], func(b *testing.B) {
			l := e.login(b)
			raw := withDecoyKeys(b, e.interopResponse(b, l, c), n, false)
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := e.p.Verify(b.Context(), raw, samltest.SPBaseURL, l.requestID, newMemGuard(), time.Now()); err == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}
