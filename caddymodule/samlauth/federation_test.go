package samlauth

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/crewjam/saml"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

// Entity IDs of the other members of the test federation.
const (
	fedOtherIdP = "https://idp.other-university.example/idp/shibboleth"
	fedSomeSP   = "https://wiki.other-university.example/shibboleth"
)

// federationAggregate is an EntitiesDescriptor as research and education
// federations publish: a signature and extensions of its own, a nested
// EntitiesDescriptor, another IdP, an SP, and (unless without) the test
// IdP ed.
func federationAggregate(t testing.TB, ed *saml.EntityDescriptor, withOurs bool) []byte {
	t.Helper()
	other := samltest.NewIdP(t, t.TempDir(), "other-idp")
	otherIdP := samltest.Descriptor(other.Cert)
	otherIdP.EntityID = fedOtherIdP
	sp := saml.EntityDescriptor{EntityID: fedSomeSP, SPSSODescriptors: []saml.SPSSODescriptor{{}}}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0"?>
<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" Name="urn:mace:example.org" validUntil="2099-01-01T00:00:00Z">
<md:Extensions><mdrpi:PublicationInfo xmlns:mdrpi="urn:oasis:names:tc:SAML:metadata:rpi" publisher="https://fed.example.org"/></md:Extensions>
<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/></ds:Signature>
<md:EntitiesDescriptor Name="members">
`)
	b.Write(samltest.MarshalMetadata(t, otherIdP))
	b.WriteString("\n")
	b.Write(samltest.MarshalMetadata(t, &sp))
	b.WriteString("\n</md:EntitiesDescriptor>\n")
	if withOurs {
		b.Write(samltest.MarshalMetadata(t, ed))
	}
	b.WriteString("\n</md:EntitiesDescriptor>\n")
	return b.Bytes()
}

// TestFederationMetadata logs in at the IdP idp_entity_id picks out of a
// federation aggregate, read from a file and from a URL.
func TestFederationMetadata(t *testing.T) {
	e := newAttackEnv(t, nil)
	agg := federationAggregate(t, samltest.Descriptor(e.idp.Cert), true)
	file := samltest.WriteFile(t, t.TempDir(), "federation.xml", agg)
	pick := func(c *Config) { c.IDPEntityID = samltest.IdPEntityID }

	t.Run("file", func(t *testing.T) {
		e.p = newAttackProvider(t, file, pick)
		if got := e.p.IDPEntityID(); got != samltest.IdPEntityID {
			t.Fatalf("IdP %q, want %q", got, samltest.IdPEntityID)
		}
		l := e.login(t)
		id, err := e.verify(t, l, e.response(l).XML(t))
		expectLogin(t, id, err, samltest.Victim)
	})
	t.Run("URL", func(t *testing.T) {
		srv := newMetadataServer(t, agg)
		cfg := spConfig(t, "")
		cfg.IDPMetadataFile, cfg.IDPMetadataURL, cfg.IDPEntityID = "", srv.URL, samltest.IdPEntityID
		e.p = mustNew(t, cfg)
		runProvider(t, e.p)
		waitFor(t, "metadata", e.p.Loaded)
		if got := e.p.IDPEntityID(); got != samltest.IdPEntityID {
			t.Fatalf("IdP %q, want %q", got, samltest.IdPEntityID)
		}
		l := e.login(t)
		id, err := e.verify(t, l, e.response(l).XML(t))
		expectLogin(t, id, err, samltest.Victim)
	})
	t.Run("the other IdP", func(t *testing.T) {
		p := newAttackProvider(t, file, func(c *Config) { c.IDPEntityID = fedOtherIdP })
		if got := p.IDPEntityID(); got != fedOtherIdP {
			t.Fatalf("IdP %q", got)
		}
	})
}

// TestFederationMetadataErrors: without idp_entity_id, or naming no IdP of
// the metadata, New says what to set.
func TestFederationMetadataErrors(t *testing.T) {
	idp := samltest.NewIdP(t, t.TempDir(), "idp")
	ours := samltest.Descriptor(idp.Cert)
	dir := t.TempDir()
	agg := samltest.WriteFile(t, dir, "federation.xml", federationAggregate(t, ours, true))
	single := samltest.WriteFile(t, dir, "single.xml", samltest.MarshalMetadata(t, ours))
	for _, tc := range []struct {
		name, file, entity string
		want               []string
	}{
		{"aggregate without idp_entity_id", agg, "", []string{"idp_entity_id: required", fedOtherIdP, samltest.IdPEntityID}},
		{"idp_entity_id not in the aggregate", agg, "https://nowhere.example/idp", []string{"idp_entity_id", "no entity", "nowhere.example", "3 entities"}},
		{"idp_entity_id names an SP", agg, fedSomeSP, []string{"idp_entity_id", "not an identity provider"}},
		{"idp_entity_id not the single IdP", single, fedOtherIdP, []string{"idp_entity_id", "no entity"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := spConfig(t, tc.file)
			cfg.IDPEntityID = tc.entity
			_, err := New(cfg, nil)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v does not mention %q", err, w)
				}
			}
		})
	}
	// One IdP among SPs needs no idp_entity_id; a single EntityDescriptor
	// may name its entity ID.
	oneIdP := samltest.WriteFile(t, dir, "one.xml", federationAggregate(t, ours, false))
	if p, err := New(spConfig(t, oneIdP), nil); err != nil || p.IDPEntityID() != fedOtherIdP {
		t.Errorf("aggregate with one IdP: %v", err)
	}
	cfg := spConfig(t, single)
	cfg.IDPEntityID = samltest.IdPEntityID
	if p, err := New(cfg, nil); err != nil || p.IDPEntityID() != samltest.IdPEntityID {
		t.Errorf("single IdP named: %v", err)
	}
}

// TestMetadataSizeLimit: metadata is read up to maxMetadataSize, and one
// byte more is an error, not a truncated document.
func TestMetadataSizeLimit(t *testing.T) {
	read := func(size, limit int) error {
		_, err := io.ReadAll(&limitReader{r: bytes.NewReader(make([]byte, size)), n: int64(limit)})
		return err
	}
	if err := read(100, 100); err != nil {
		t.Errorf("exactly at the limit: %v", err)
	}
	if err := read(101, 100); err != errMetadataTooLarge {
		t.Errorf("one byte over: %v", err)
	}
}
