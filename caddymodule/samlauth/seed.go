package samlauth

// Seed gives p the IdP metadata that prev has loaded, when both read the
// same metadata URL and p has none yet, so that a configuration reload
// does not leave a gap in which logins fail until the first fetch. p's own
// fetches (Run) replace it as usual.
func (p *Provider) Seed(prev *Provider) {
	if prev == nil || prev == p || p.cfg.IDPMetadataURL == "" || prev.cfg.IDPMetadataURL != p.cfg.IDPMetadataURL {
		return
	}
	if md := prev.idp.Load(); md != nil {
		p.idp.CompareAndSwap(nil, md)
	}
}
