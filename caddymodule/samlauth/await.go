package samlauth

import (
	"context"
	"time"
)

// AwaitLoaded waits until IdP metadata is loaded, at most max or until ctx
// ends, and reports whether it is. A login that arrives while the first
// fetch of the metadata URL is still under way (just after start-up) then
// waits a moment instead of failing. It checks every 20 ms.
func (p *Provider) AwaitLoaded(ctx context.Context, max time.Duration) bool {
	if p.Loaded() {
		return true
	}
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return p.Loaded()
		case <-deadline.C:
			return p.Loaded()
		case <-tick.C:
			if p.Loaded() {
				return true
			}
		}
	}
}
