package samlauth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// The query of a message by the HTTP-Redirect binding
//
// The signature of a query-signed message covers its parameters exactly
// as sent, still percent-encoded (SAML bindings, section 3.4.4.1), while
// net/url decodes names and values and keeps every repeated one. A
// verifier that picks the signed bytes out of the raw query one way and
// reads the values another (r.URL.Query()) can be made to check one
// parameter and use another: SAML%52esponse=<unsigned>&SAMLResponse=<signed>
// passes a raw-name check on the second and is read as the first.
// parseRedirectQuery therefore reads the query once, refusing any form in
// which a name could mean two things, and hands back both the signed bytes
// and the values decoded from those very bytes.

// redirectParams are the parameters of the HTTP-Redirect binding.
var redirectParams = []string{"SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature"}

// rawParam is one parameter of a query: as sent and decoded.
type rawParam struct {
	raw, value string
}

// redirectQuery is a query of the HTTP-Redirect binding, read once.
type redirectQuery struct {
	params map[string]rawParam
}

// parseRedirectQuery reads a raw query strictly: no ";" separator, no
// parameter name that is percent-encoded or has a "+" (so that every name
// means what it says, as net/url would decode it), and none of the
// binding's parameters (SAMLRequest, SAMLResponse, RelayState, SigAlg,
// Signature) more than once. Other parameters are ignored. Every value
// must decode.
func parseRedirectQuery(rawQuery string) (*redirectQuery, error) {
	if strings.Contains(rawQuery, ";") {
		return nil, errors.New(`the query has a ";" separator`)
	}
	q := &redirectQuery{params: map[string]rawParam{}}
	for _, kv := range strings.Split(rawQuery, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if strings.ContainsAny(k, "%+") {
			return nil, fmt.Errorf("the query has an encoded parameter name %q", k)
		}
		known := false
		for _, n := range redirectParams {
			known = known || n == k
		}
		if !known {
			continue
		}
		if _, dup := q.params[k]; dup {
			return nil, fmt.Errorf("the query has %s more than once", k)
		}
		dec, err := url.QueryUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("the query's %s: %w", k, err)
		}
		q.params[k] = rawParam{raw: v, value: dec}
	}
	return q, nil
}

// has reports whether the query has the parameter name.
func (q *redirectQuery) has(name string) bool {
	_, ok := q.params[name]
	return ok
}

// get is the decoded value of name, or "".
func (q *redirectQuery) get(name string) string {
	return q.params[name].value
}

// querySignature is what a query signature covers and says.
type querySignature struct {
	signed    []byte // msgName=…[&RelayState=…]&SigAlg=… as sent
	alg       string // SigAlg, decoded
	signature []byte
}

// signature is the query signature over the message msgName
// (SAMLRequest or SAMLResponse): the bytes it covers, built from the very
// parameters whose decoded values get returns, its algorithm and value.
func (q *redirectQuery) signature(msgName string) (*querySignature, error) {
	msg, okMsg := q.params[msgName]
	alg, okAlg := q.params["SigAlg"]
	sig, okSig := q.params["Signature"]
	if !okMsg {
		return nil, fmt.Errorf("the query has no %s", msgName)
	}
	if !okAlg || !okSig {
		return nil, errors.New("the query has no SigAlg and Signature")
	}
	signed := msgName + "=" + msg.raw
	if relay, ok := q.params["RelayState"]; ok {
		signed += "&RelayState=" + relay.raw
	}
	signed += "&SigAlg=" + alg.raw
	b, err := base64.StdEncoding.DecodeString(sig.value)
	if err != nil {
		return nil, fmt.Errorf("query signature: %w", err)
	}
	return &querySignature{signed: []byte(signed), alg: alg.value, signature: b}, nil
}
