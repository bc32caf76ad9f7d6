package samlauth

import (
	"fmt"
	"strings"
	"testing"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// The algorithm URIs the tests use, written out.
const (
	uriSHA1       = "http://www.w3.org/2000/09/xmldsig#sha1"
	uriSHA256     = "http://www.w3.org/2001/04/xmlenc#sha256"
	uriSHA512     = "http://www.w3.org/2001/04/xmlenc#sha512"
	uriMGF1SHA1   = "http://www.w3.org/2009/xmlenc11#mgf1sha1"
	uriMGF1SHA256 = "http://www.w3.org/2009/xmlenc11#mgf1sha256"
	uriMGF1SHA512 = "http://www.w3.org/2009/xmlenc11#mgf1sha512"
)

// testDataCiphers are every data encryption algorithm the SP accepts.
var testDataCiphers = []string{
	"http://www.w3.org/2001/04/xmlenc#aes128-cbc",
	"http://www.w3.org/2001/04/xmlenc#aes192-cbc",
	"http://www.w3.org/2001/04/xmlenc#aes256-cbc",
	"http://www.w3.org/2009/xmlenc11#aes128-gcm",
	"http://www.w3.org/2009/xmlenc11#aes192-gcm",
	"http://www.w3.org/2009/xmlenc11#aes256-gcm",
	"http://www.w3.org/2001/04/xmlenc#tripledes-cbc",
}

// allDataCiphers are the short names of testDataCiphers, for
// Config.DataCiphers: a Provider that accepts them all.
var allDataCiphers = []string{"aes128-cbc", "aes192-cbc", "aes256-cbc", "aes128-gcm", "aes192-gcm", "aes256-gcm", "tripledes-cbc"}

// acceptAll makes a Provider accept every data cipher.
func acceptAll(c *Config) { c.DataCiphers = allDataCiphers }

// testTransport is a key transport with its DigestMethod and MGF.
type testTransport struct{ alg, digest, mgf string }

// testTransports are the key transports the SP accepts, with the digest
// and MGF choices IdPs make.
var testTransports = []testTransport{
	{"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p", "", ""},
	{"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p", uriSHA1, ""},
	{"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p", uriSHA256, ""},
	{"http://www.w3.org/2009/xmlenc11#rsa-oaep", "", ""},
	{"http://www.w3.org/2009/xmlenc11#rsa-oaep", uriSHA1, uriMGF1SHA1},
	{"http://www.w3.org/2009/xmlenc11#rsa-oaep", uriSHA256, uriMGF1SHA256},
	{"http://www.w3.org/2009/xmlenc11#rsa-oaep", uriSHA256, uriMGF1SHA1},
	{"http://www.w3.org/2009/xmlenc11#rsa-oaep", uriSHA512, uriMGF1SHA512},
}

// short is the last part of an algorithm URI, for test names.
func short(uri string) string {
	if uri == "" {
		return "default"
	}
	return uri[strings.LastIndexAny(uri, "#/")+1:]
}

// TestInteropAlgorithms logs in with every data encryption algorithm under
// every key transport (prefixed layout, assertion signed).
func TestInteropAlgorithms(t *testing.T) {
	e := newAttackEnv(t, acceptAll)
	for _, data := range testDataCiphers {
		for _, tr := range testTransports {
			c := interopCase{data: data, transport: tr.alg, digest: tr.digest, mgf: tr.mgf, layout: "prefixed", signAssertion: true}
			t.Run(fmt.Sprintf("%s/%s-%s-%s", short(data), short(tr.alg), short(tr.digest), short(tr.mgf)), func(t *testing.T) {
				l := e.login(t)
				id, err := e.verify(t, l, e.interopResponse(t, l, c))
				expectLogin(t, id, err, samltest.Victim)
			})
		}
	}
}

// testSignings are what an IdP may sign.
var testSignings = []struct {
	name                        string
	signAssertion, signResponse bool
}{
	{"assertion signed", true, false},
	{"response signed", false, true},
	{"both signed", true, true},
}

// TestInteropLayouts logs in with every prefix layout a valid document may
// have, redeclared prefixes included, under every signing choice, for each
// data encryption algorithm (key transports taking turns) and in the clear.
func TestInteropLayouts(t *testing.T) {
	e := newAttackEnv(t, acceptAll)
	layouts := []string{"prefixed", "ns0", "default", "context", "keybeside"}
	i := 0
	for _, layout := range layouts {
		for _, s := range testSignings {
			datas := append([]string{""}, testDataCiphers...)
			if layout == "context" || layout == "keybeside" {
				datas = testDataCiphers
			}
			for _, data := range datas {
				tr := testTransports[i%len(testTransports)]
				i++
				c := interopCase{data: data, transport: tr.alg, digest: tr.digest, mgf: tr.mgf,
					layout: layout, signAssertion: s.signAssertion, signResponse: s.signResponse}
				name := "clear"
				if data != "" {
					name = short(data) + "/" + short(tr.alg)
				}
				t.Run(layout+"/"+s.name+"/"+name, func(t *testing.T) {
					l := e.login(t)
					raw := e.interopResponse(t, l, c)
					id, err := e.verify(t, l, raw)
					if err != nil {
						t.Logf("response: %s", raw)
					}
					expectLogin(t, id, err, samltest.Victim)
				})
			}
		}
	}
}
