package samlauth

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// TestAttackCommentInjection covers the XML comment truncation attack: the
// IdP signs "alice@example.com.evil.com" (an account the attacker may
// register), and the attacker inserts a comment after "alice@example.com".
// Canonicalization drops comments, so the signature still verifies; the SP
// must not read the value as "alice@example.com".
func TestAttackCommentInjection(t *testing.T) {
	const signed = samltest.Victim + ".evil.com"
	for _, tc := range []struct {
		name     string
		cfg      func(*Config)
		location func(t testing.TB, root *etree.Element) *etree.Element
	}{
		{"email attribute", nil, func(t testing.TB, root *etree.Element) *etree.Element {
			return samltest.AttrValue(t, root, "email")
		}},
		{"NameID", func(c *Config) { c.EmailAttribute = "" }, func(t testing.TB, root *etree.Element) *etree.Element {
			return samltest.Child(t, samltest.Child(t, samltest.Child(t, root, "Assertion"), "Subject"), "NameID")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newAttackEnv(t, tc.cfg)
			l := e.login(t)
			r := e.response(l)
			r.Assertion = samltest.Assertion(l.requestID, signed, "engineering")
			after(r, func(t testing.TB, root *etree.Element) *etree.Element {
				el := tc.location(t, root)
				el.SetText(samltest.Victim)
				el.CreateComment("")
				el.CreateText(".evil.com")
				return root
			})
			id, err := e.verify(t, l, r.XML(t))
			if err != nil {
				expectRefused(t, id, err, "")
				return
			}
			if id.Email != signed {
				t.Fatalf("logged in as %q; the IdP signed %q", id.Email, signed)
			}
		})
	}
}

// TestAttackReplay covers replays: of the whole response, of an old
// assertion in a new login, and of an assertion ID the IdP signed again.
// (That a relay state is used once is the glue's part.)
func TestAttackReplay(t *testing.T) {
	e := newAttackEnv(t, nil)
	l1 := e.login(t)
	first := e.response(l1)
	firstXML := first.XML(t)
	id, err := e.verify(t, l1, firstXML)
	expectLogin(t, id, err, samltest.Victim)

	// The very same response for the same login again: the assertion was
	// consumed.
	t.Run("same response twice", func(t *testing.T) {
		id, err := e.verify(t, l1, firstXML)
		expectRefused(t, id, err, "replayed")
	})

	// The captured response in a new login: it answers the old AuthnRequest.
	t.Run("old response in a new login", func(t *testing.T) {
		id, err := e.verify(t, e.login(t), firstXML)
		expectRefused(t, id, err, "InResponseTo")
	})

	// The IdP signs the same assertion ID again for a new login (a buggy or
	// compromised IdP): the ID is accepted only once.
	t.Run("same assertion ID for a new login", func(t *testing.T) {
		l3 := e.login(t)
		r := e.response(l3)
		r.Assertion.ID = first.Assertion.ID
		id, err := e.verify(t, l3, r.XML(t))
		expectRefused(t, id, err, "replayed")
	})
}

// TestAttackReplayAcrossProviders: two Providers (two instances, each with
// its own SP key) share one replay guard. A login started at one completes
// at the other, and an assertion ID consumed at one is refused at the
// other, in both directions.
func TestAttackReplayAcrossProviders(t *testing.T) {
	a := newAttackEnv(t, nil)
	b := &attackEnv{idp: a.idp, impostor: a.impostor, mdFile: a.mdFile, guard: a.guard}
	b.p = newAttackProvider(t, a.mdFile, nil)

	la := a.login(t)
	ra := a.response(la)
	raXML := ra.XML(t)
	id, err := b.verify(t, la, raXML)
	expectLogin(t, id, err, samltest.Victim)

	// The same response at the first instance.
	id, err = a.verify(t, la, raXML)
	expectRefused(t, id, err, "replayed")

	// The ID re-signed for a login at b, verified at a; and the other way.
	lb := b.login(t)
	rb := b.response(lb)
	rb.Assertion.ID = ra.Assertion.ID
	id, err = a.verify(t, lb, rb.XML(t))
	expectRefused(t, id, err, "replayed")

	lc := a.login(t)
	rc := a.response(lc)
	rc.Assertion.ID = ra.Assertion.ID
	id, err = b.verify(t, lc, rc.XML(t))
	expectRefused(t, id, err, "replayed")
}

// TestAttackHostileXML covers payloads aimed at the XML parser: DTDs with
// entity expansion or external entities, deep nesting and malformed input.
// Each must be refused within hostileXMLDeadline, without a panic.
func TestAttackHostileXML(t *testing.T) {
	e := newAttackEnv(t, nil)
	e.deadline = hostileXMLDeadline
	const ns = `xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"`

	var laughs strings.Builder
	laughs.WriteString(`<?xml version="1.0"?>` + "\n<!DOCTYPE samlp:Response [\n<!ENTITY lol0 \"lol\">\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&laughs, "<!ENTITY lol%d \"%s\">\n", i, strings.Repeat(fmt.Sprintf("&lol%d;", i-1), 10))
	}
	laughs.WriteString("]>\n<samlp:Response " + ns + ` ID="_x" Version="2.0" IssueInstant="2024-01-01T00:00:00Z">` +
		`<saml:Issuer>&lol9;</saml:Issuer></samlp:Response>`)

	for _, tc := range []struct {
		name   string
		body   func(t testing.TB, l attackLogin) []byte
		reason string
	}{
		// Billion laughs: nested entities that expand to 10^9 copies.
		{"billion laughs", func(testing.TB, attackLogin) []byte { return []byte(laughs.String()) }, "DOCTYPE"},
		// XXE: an external entity that would read a local file.
		{"external entity", func(testing.TB, attackLogin) []byte {
			return []byte(`<?xml version="1.0"?><!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>` +
				"<samlp:Response " + ns + ` ID="_x" Version="2.0"><saml:Issuer>&xxe;</saml:Issuer></samlp:Response>`)
		}, "DOCTYPE"},
		// A correct, signed response behind a DOCTYPE: a SAML message has no
		// use for a DTD, and accepting one invites parser differentials.
		{"DOCTYPE before a valid response", func(t testing.TB, l attackLogin) []byte {
			r := e.response(l)
			r.PrependXML = `<?xml version="1.0"?>` + "\n" + `<!DOCTYPE samlp:Response [<!ENTITY x "y">]>` + "\n"
			return r.XML(t)
		}, "DOCTYPE"},
		// Not XML at all.
		{"invalid XML", func(testing.TB, attackLogin) []byte { return []byte("<samlp:Response><<>>") }, "invalid xml"},
		{"binary garbage", func(testing.TB, attackLogin) []byte { return []byte{0xff, 0xfe, 0x00, 0x01, '<', 0x80} }, ""},
		{"empty", func(testing.TB, attackLogin) []byte { return nil }, "empty"},
		// Well-formed XML, but another SAML message than a Response.
		{"AuthnRequest instead of a Response", func(t testing.TB, l attackLogin) []byte {
			return []byte(`<samlp:AuthnRequest ` + ns + ` ID="_x" Version="2.0" IssueInstant="2024-01-01T00:00:00Z"/>`)
		}, "not a Response"},
		// Deep nesting (as much as fits the ACS's 1 MiB form), against
		// parsers whose cost grows with depth squared (namespace lookups
		// walking up the tree).
		{"deeply nested XML", func(t testing.TB, l attackLogin) []byte {
			const depth = 60000
			return []byte("<samlp:Response " + ns + ">" + strings.Repeat("<a>", depth) + strings.Repeat("</a>", depth) + "</samlp:Response>")
		}, "nested too deeply"},
		// Many siblings instead of depth.
		{"too many elements", func(t testing.TB, l attackLogin) []byte {
			return []byte("<samlp:Response " + ns + ">" + strings.Repeat("<a/>", maxResponseElements) + "</samlp:Response>")
		}, "too many elements"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := e.login(t)
			id, err := e.verify(t, l, tc.body(t, l))
			expectRefused(t, id, err, tc.reason)
		})
	}
}

// TestVerifyUndecided: without IdP metadata, or when the replay guard
// fails, Verify decides nothing: its error is not a Refusal, so the glue
// answers 503, and the guard's error is wrapped.
func TestVerifyUndecided(t *testing.T) {
	e := newAttackEnv(t, nil)
	l := e.login(t)
	raw := e.response(l).XML(t)

	down := errors.New("store down")
	e.guard = failingGuard{err: down}
	id, err := e.verify(t, l, raw)
	var ref *Refusal
	if id != nil || !errors.Is(err, down) || errors.As(err, &ref) {
		t.Errorf("failing guard: %+v, %v; want the guard's error, not a Refusal", id, err)
	}

	// The guard is asked only about responses that pass every check.
	g := newMemGuard()
	e.guard = g
	r := e.response(l)
	r.SignAssertion = false
	id, err = e.verify(t, l, r.XML(t))
	expectRefused(t, id, err, "signature")
	if len(g.calls) != 0 {
		t.Errorf("the guard was asked %q for a refused response", g.calls)
	}
	id, err = e.verify(t, l, raw)
	expectLogin(t, id, err, samltest.Victim)
	if len(g.calls) != 1 || g.calls[0] != "assertion:"+id.AssertionID {
		t.Errorf("guard keys %q, want [assertion:%s]", g.calls, id.AssertionID)
	}

	sp := samltest.NewKeyPair(t, t.TempDir(), "sp")
	p := mustNew(t, Config{IDPMetadataURL: "http://127.0.0.1:1/metadata", SPCert: sp.CertFile, SPKey: sp.KeyFile})
	if _, err := p.Verify(t.Context(), raw, samltest.SPBaseURL, l.requestID, newMemGuard(), time.Now()); !errors.Is(err, ErrNoMetadata) {
		t.Errorf("without metadata: %v, want ErrNoMetadata", err)
	}
}
