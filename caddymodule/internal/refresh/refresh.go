// Package refresh keeps a document fetched from the network fresh in the
// background: the IdP metadata of the SAML package and the discovery
// document of the OpenID Connect package.
package refresh

import (
	"context"
	"time"
)

// Keep calls fetch at once, then every interval after a success; after a
// failure it calls failed (unless ctx is done) and tries again after
// first, doubling the wait after each further failure up to most, and
// starting over after a success. It returns when ctx is done.
func Keep(ctx context.Context, fetch func(context.Context) error, interval, first, most time.Duration,
	failed func(err error, retryIn time.Duration)) {
	if first <= 0 {
		first = time.Second
	}
	if most < first {
		most = first
	}
	backoff := first
	for {
		wait := interval
		if err := fetch(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			failed(err, backoff)
			wait = backoff
			backoff = min(backoff*2, most)
		} else {
			backoff = first
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
