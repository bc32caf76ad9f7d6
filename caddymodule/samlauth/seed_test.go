package samlauth

import (
	"testing"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
)

func TestSeedCarriesMetadataAcrossProviders(t *testing.T) {
	dir := t.TempDir()
	cfg := spConfig(t, samltest.NewIdP(t, dir, "idp").MetadataFile(t, dir))
	loaded := mustNew(t, cfg)
	if !loaded.Loaded() {
		t.Fatal("the metadata file was not loaded")
	}
	// Providers reading a URL start without metadata until Run fetches it.
	cfg.IDPMetadataFile, cfg.IDPMetadataURL = "", "https://idp.example.com/metadata"
	prev := mustNew(t, cfg)
	prev.idp.Store(loaded.idp.Load())
	next := mustNew(t, cfg)
	next.Seed(prev)
	if !next.Loaded() || next.IDPEntityID() != loaded.IDPEntityID() {
		t.Error("Seed did not carry the loaded metadata over")
	}
	other := cfg
	other.IDPMetadataURL = "https://other-idp.example.com/metadata"
	o := mustNew(t, other)
	o.Seed(prev)
	if o.Loaded() {
		t.Error("Seed carried metadata to a provider of another URL")
	}
}
