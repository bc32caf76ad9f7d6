package samlauth

// Seed gives p the IdP metadata that prev has loaded, when both read the
// same metadata URL for the same idp_entity_id, trusting the same
// metadata signing certificates, and p has none yet, so that a
// configuration reload does not leave a gap in which logins fail until the
// first fetch. p's own fetches (Run) replace it as usual.
func (p *Provider) Seed(prev *Provider) {
	if prev == nil || prev == p || p.cfg.IDPMetadataURL == "" || prev.cfg.IDPMetadataURL != p.cfg.IDPMetadataURL ||
		prev.cfg.IDPEntityID != p.cfg.IDPEntityID || !sameCerts(prev.mdCerts, p.mdCerts) {
		return
	}
	if md := prev.idp.Load(); md != nil {
		p.idp.CompareAndSwap(nil, md)
	}
}
