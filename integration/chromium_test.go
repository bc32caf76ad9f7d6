package integration

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// Headless Chromium is the test bed's (testbed.StartChromium); this file
// binds it to a test: a missing browser skips (fails under CI=true), the
// browser and its tabs close when the test ends, a failed step fails the
// test, and a failed test keeps every tab's pages and navigation log.

// browserStepTimeout bounds each browser step, so that a page that never
// shows what a test waits for fails the test instead of hanging it.
const browserStepTimeout = testbed.ChromiumStepTimeout

type (
	// docRequest is one top-level document request, with its form body.
	docRequest = testbed.DocRequest
	// docResponse is one HTTP response to a top-level document request,
	// a redirect included.
	docResponse = testbed.DocResponse
	// shot is a snapshot of a page: address, text and screenshot.
	shot = testbed.Shot
)

// chromium is one headless Chromium process. Each tab it opens lives in its
// own browser context, with its own cookies, as a fresh browser profile.
type chromium struct{ *testbed.Chromium }

// startChromium starts headless Chromium with a fresh profile; it is
// stopped when the test ends, and its output is shown if the test failed.
// Without Chromium the test is skipped (failed under CI=true).
func startChromium(t testing.TB) *chromium {
	t.Helper()
	// Created before the cleanup that stops Chromium is registered, so it
	// is removed after Chromium has exited.
	profile := t.TempDir()
	c, err := testbed.StartChromium(profile)
	if errors.Is(err, testbed.ErrNoChromium) {
		skipOrFail(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() && strings.TrimSpace(c.Output()) != "" {
			t.Logf("chromium output:\n%s", c.Output())
		}
	})
	return &chromium{c}
}

// tab is one browser tab (the test bed's) bound to a test: a step that
// fails fails t with the page's address and text and the navigation log.
// A subtest may take the tab over by setting t.
type tab struct {
	*testbed.Tab
	t   testing.TB
	ctx context.Context // the tab's chromedp context, for other actions
}

// newTab opens a tab with empty cookies, closed when the test ends. If the
// test failed, every snapshot and the navigation log are written out
// (SCREENSHOT_DIR, or a temporary directory) and the test says where.
func (c *chromium) newTab(t testing.TB) *tab {
	t.Helper()
	bt, err := c.NewTab()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			keepPages(t, bt)
		}
		bt.Close()
	})
	return &tab{Tab: bt, t: t, ctx: bt.Context()}
}

// keepPages writes a tab's snapshots and navigation log out and logs where.
func keepPages(t testing.TB, bt *testbed.Tab) {
	dir, err := testbed.ArtifactDir(t.Name())
	if err == nil {
		var written []string
		written, err = bt.WriteArtifacts(dir)
		t.Logf("browser pages kept in %s:\n  %s", dir, strings.Join(written, "\n  "))
	}
	if err != nil {
		t.Logf("cannot keep the browser's pages: %v", err)
	}
}

// check fails the tab's test with err, to which the test bed's tab has
// already added the page and the navigation log.
func (tb *tab) check(err error) {
	tb.t.Helper()
	if err != nil {
		tb.t.Fatal(err)
	}
}

// fail snapshots the page as it is and fails the test with its address
// and text.
func (tb *tab) fail(format string, args ...any) {
	tb.t.Helper()
	tb.t.Fatal(tb.Failure(errors.New(fmt.Sprintf(format, args...))))
}

// step runs browser actions with a time limit; on error it fails the test.
func (tb *tab) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	tb.check(tb.Step(what, actions...))
}

// Navigate loads rawURL and waits for its load event (not for whatever the
// page does next, such as an auto-submitted form).
func (tb *tab) Navigate(rawURL string) {
	tb.t.Helper()
	tb.check(tb.Tab.Navigate(rawURL))
}

// WaitVisible waits until an element matching the CSS selector is visible.
func (tb *tab) WaitVisible(sel string) {
	tb.t.Helper()
	tb.check(tb.Tab.WaitVisible(sel))
}

// Type types text into the element matching the CSS selector.
func (tb *tab) Type(sel, text string) {
	tb.t.Helper()
	tb.check(tb.Tab.Type(sel, text))
}

// Click clicks the element matching the CSS selector with the mouse.
func (tb *tab) Click(sel string) {
	tb.t.Helper()
	tb.check(tb.Tab.Click(sel))
}

// WaitFor waits until cond holds for the page's address and text, while
// the browser moves between pages.
func (tb *tab) WaitFor(what string, cond func(loc, text string) bool) {
	tb.t.Helper()
	tb.check(tb.Tab.WaitFor(what, cond))
}

// WaitText waits until the page's text contains s.
func (tb *tab) WaitText(s string) {
	tb.t.Helper()
	tb.check(tb.Tab.WaitText(s))
}

// WaitDocument waits for the answer to a document request (the last one
// if there were several) and returns it.
func (tb *tab) WaitDocument(method, rawURL string) docResponse {
	tb.t.Helper()
	d, err := tb.Tab.WaitDocument(method, rawURL)
	tb.check(err)
	return d
}

// Location is the address of the page shown now.
func (tb *tab) Location() string {
	tb.t.Helper()
	loc, err := tb.Tab.Location()
	tb.check(err)
	return loc
}

// Text is the visible text of the page shown now.
func (tb *tab) Text() string {
	tb.t.Helper()
	text, err := tb.Tab.Text()
	tb.check(err)
	return text
}

// Cookies returns the cookies the browser would send to rawURL.
func (tb *tab) Cookies(rawURL string) []*network.Cookie {
	tb.t.Helper()
	cookies, err := tb.Tab.Cookies(rawURL)
	tb.check(err)
	return cookies
}

// Cookie returns the cookie called name that the browser would send to
// rawURL, or nil.
func (tb *tab) Cookie(rawURL, name string) *network.Cookie {
	tb.t.Helper()
	c, err := tb.Tab.Cookie(rawURL, name)
	tb.check(err)
	return c
}

func excerpt(s string, n int) string { return testbed.Excerpt(s, n) }

// hostOf is the host:port of a URL, or "" when it does not parse.
func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Host
}
