package samlauth

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/internal/refresh"
)

// Run keeps the IdP metadata of Config.IDPMetadataURL fresh until ctx
// ends. It fetches the metadata at once; after a failure it logs a warning,
// keeps the last good copy and tries again after RetryFirst, doubling the
// wait after each further failure up to RetryMax; after a success it
// fetches again every IDPMetadataRefresh. Metadata that downloads but is
// refused (its signature, its validUntil) is a failure too; the same
// refusal is logged once, not at every retry. Without a metadata URL it
// returns at once. Call it once per Provider, in its own goroutine; it
// returns when ctx is done.
func (p *Provider) Run(ctx context.Context) {
	if p.cfg.IDPMetadataURL == "" {
		return
	}
	refresh.Keep(ctx, p.fetchMetadata, p.cfg.refresh(), p.RetryFirst, p.RetryMax, func(err error, retryIn time.Duration) {
		if !isRefusal(err) {
			p.logger.Warn("fetching IdP metadata; keeping the last good copy",
				zap.String("url", p.cfg.IDPMetadataURL), zap.Error(err), zap.Duration("retry_in", retryIn))
			return
		}
		if said, _ := p.refusalSaid.Load().(string); said == err.Error() {
			p.logger.Debug("IdP metadata refused again", zap.String("url", p.cfg.IDPMetadataURL), zap.Error(err))
			return
		}
		p.refusalSaid.Store(err.Error())
		p.logger.Warn("IdP metadata refused; keeping the last good copy",
			zap.String("url", p.cfg.IDPMetadataURL), zap.Error(err), zap.Bool("have_good_copy", p.Loaded()),
			zap.Duration("retry_in", retryIn))
	})
}

// fetchMetadata fetches and parses the metadata URL once and, when it is
// usable, makes it the current metadata.
func (p *Provider) fetchMetadata(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.IDPMetadataURL, nil)
	if err != nil {
		return err
	}
	resp, err := p.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	m, err := p.loadMetadata(resp.Body, resp.ContentLength)
	if err != nil {
		return err
	}
	p.idp.Store(m)
	p.refusalSaid.Store("")
	md := m.md
	// Said once per provider: after a reload too, although the new
	// provider started from the previous one's copy (Seed).
	if p.fetched.CompareAndSwap(false, true) {
		p.logger.Info("IdP metadata loaded", zap.String("entity_id", md.EntityID), zap.String("url", p.cfg.IDPMetadataURL))
	}
	return nil
}
