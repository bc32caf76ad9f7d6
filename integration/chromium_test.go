package integration

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// findChromium returns the browser to drive: $CHROMIUM when set, else the
// first of the usual names on PATH (Debian's chromium, other
// distributions' chromium-browser, Google Chrome, chrome-headless-shell).
func findChromium() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return exec.LookPath(p)
	}
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "chrome-headless-shell", "headless_shell"}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %s is on PATH and CHROMIUM is not set", strings.Join(names, ", "))
}

// browserStepTimeout bounds each browser step, so that a page that never
// shows what a test waits for fails the test instead of hanging it.
const browserStepTimeout = 30 * time.Second

// chromium is one headless Chromium process. Each tab it opens lives in its
// own browser context, with its own cookies, as a fresh browser profile.
type chromium struct {
	ctx context.Context // the browser's first tab, which stays blank
	out *syncBuffer
}

// startChromium starts headless Chromium with a fresh profile; it is
// stopped when the test ends. Without Chromium the test is skipped (failed
// under CI=true).
func startChromium(t testing.TB) *chromium {
	t.Helper()
	chromiumPath, err := findChromium()
	if err != nil {
		msg := fmt.Sprintf("Chromium is not installed (%v); install it with: apt-get install --no-install-recommends chromium, or set CHROMIUM to a Chromium or Chrome binary", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// Created before the cleanup that stops Chromium is registered, so it
	// is removed after Chromium has exited.
	profile := t.TempDir()
	c := &chromium{out: &syncBuffer{}}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox, // root in a container has no user namespaces to sandbox with
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.IgnoreCertErrors, // Caddy's `tls internal` CA is not installed anywhere
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1100, 900),
		chromedp.CombinedOutput(c.out),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the process to exit
		if t.Failed() && strings.TrimSpace(c.out.String()) != "" {
			t.Logf("chromium output:\n%s", c.out.String())
		}
	})
	startCtx, cancelStart := context.WithTimeout(ctx, 60*time.Second)
	defer cancelStart()
	// The first action starts the browser; its life is bound to ctx, not to
	// the time limit, which only bounds the wait.
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("starting %s: %v\n%s", chromiumPath, err, c.out.String())
		}
	case <-startCtx.Done():
		t.Fatalf("%s did not start within 60s\n%s", chromiumPath, c.out.String())
	}
	c.ctx = ctx
	return c
}

// tab is one browser tab in its own browser context. It records every
// document request, redirect and cookie the browser refused, and keeps a
// screenshot and the text of each page a test snapshots; all of it is
// written out when the test fails.
type tab struct {
	t   testing.TB
	ctx context.Context

	mu    sync.Mutex
	log   []string
	reqs  []docRequest
	docs  []docResponse
	urls  map[network.RequestID]string
	shots []shot
}

// docRequest is one top-level document request, with its form body.
type docRequest struct {
	Method string
	URL    string
	Body   []byte
}

// docResponse is one HTTP response to a top-level document request, a
// redirect included.
type docResponse struct {
	Method   string
	URL      string
	Status   int64
	Location string
}

type shot struct {
	Name string
	URL  string
	Text string
	PNG  []byte
	Err  error
}

// newTab opens a tab with empty cookies, closed when the test ends. A
// subtest may take the tab over by setting its t.
func (c *chromium) newTab(t testing.TB) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(c.ctx, chromedp.WithNewBrowserContext())
	tb := &tab{t: t, ctx: ctx, urls: map[network.RequestID]string{}}
	t.Cleanup(func() {
		if t.Failed() {
			tb.writeArtifacts(t)
		}
		cancel()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	if err := chromedp.Listen(ctx, tb.onEvent); err != nil {
		t.Fatalf("listening to the tab: %v", err)
	}
	return tb
}

// onEvent runs on the tab's reader goroutine, so it only records.
func (tb *tab) onEvent(ev any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if ev.Type != network.ResourceTypeDocument {
			return
		}
		if r := ev.RedirectResponse; r != nil {
			loc := headerValue(r.Headers, "Location")
			tb.docs = append(tb.docs, docResponse{Method: tb.methodOf(ev.RequestID), URL: r.URL, Status: r.Status, Location: loc})
			tb.log = append(tb.log, fmt.Sprintf("  <- %d %s (Location: %s)", r.Status, r.URL, loc))
		}
		tb.urls[ev.RequestID] = ev.Request.Method + " " + ev.Request.URL
		req := docRequest{Method: ev.Request.Method, URL: ev.Request.URL}
		for _, e := range ev.Request.PostDataEntries {
			req.Body = append(req.Body, e.Bytes...)
		}
		tb.reqs = append(tb.reqs, req)
		tb.log = append(tb.log, fmt.Sprintf("-> %s %s", ev.Request.Method, ev.Request.URL))
	case *network.EventResponseReceived:
		if ev.Type != network.ResourceTypeDocument {
			return
		}
		r := ev.Response
		tb.docs = append(tb.docs, docResponse{Method: tb.methodOf(ev.RequestID), URL: r.URL, Status: r.Status})
		tb.log = append(tb.log, fmt.Sprintf("  <- %d %s", r.Status, r.URL))
	case *network.EventResponseReceivedExtraInfo:
		// The cookies Chromium refused to store are what a Go cookie jar
		// never shows: SameSite, Secure and third-party rules.
		for _, b := range ev.BlockedCookies {
			tb.log = append(tb.log, fmt.Sprintf("  !! cookie refused %v: %s (response to %s)", b.BlockedReasons, b.CookieLine, tb.urls[ev.RequestID]))
		}
	case *network.EventRequestWillBeSentExtraInfo:
		// The headers a server checks against cross-site requests, as
		// they went over the wire (the browser adds them late).
		if req, ok := tb.urls[ev.RequestID]; ok {
			var hs []string
			for _, name := range []string{"Origin", "Sec-Fetch-Site", "Referer"} {
				if v := headerValue(ev.Headers, name); v != "" {
					hs = append(hs, name+": "+v)
				}
			}
			if len(hs) > 0 {
				tb.log = append(tb.log, fmt.Sprintf("   (%s sent %s)", req, strings.Join(hs, ", ")))
			}
		}
		for _, c := range ev.AssociatedCookies {
			if len(c.BlockedReasons) > 0 && c.Cookie != nil {
				tb.log = append(tb.log, fmt.Sprintf("  !! cookie %s not sent %v (request %s)", c.Cookie.Name, c.BlockedReasons, tb.urls[ev.RequestID]))
			}
		}
	case *network.EventLoadingFailed:
		if ev.Type == network.ResourceTypeDocument {
			tb.log = append(tb.log, fmt.Sprintf("  !! loading failed: %s %s", ev.ErrorText, ev.BlockedReason))
		}
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range ev.Args {
			args = append(args, string(a.Value))
		}
		tb.log = append(tb.log, fmt.Sprintf("  console.%s %s", ev.Type, strings.Join(args, " ")))
	case *runtime.EventExceptionThrown:
		if d := ev.ExceptionDetails; d != nil {
			tb.log = append(tb.log, fmt.Sprintf("  !! page exception: %s", d.Text))
		}
	}
}

// methodOf returns the method of a recorded request; it needs tb.mu.
func (tb *tab) methodOf(id network.RequestID) string {
	m, _, _ := strings.Cut(tb.urls[id], " ")
	return m
}

func headerValue(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			if s, ok := v.(string); ok {
				return s
			}
			return fmt.Sprint(v)
		}
	}
	return ""
}

// Requests returns the document requests sent so far.
func (tb *tab) Requests() []docRequest {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]docRequest(nil), tb.reqs...)
}

// Documents returns the document responses seen so far.
func (tb *tab) Documents() []docResponse {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]docResponse(nil), tb.docs...)
}

// WaitDocument waits for the answer to a document request (the last one
// if there were several) and returns it.
func (tb *tab) WaitDocument(method, rawURL string) docResponse {
	tb.t.Helper()
	deadline := time.Now().Add(browserStepTimeout)
	for {
		var found *docResponse
		for _, d := range tb.Documents() {
			if d.Method == method && d.URL == rawURL {
				found = &d
			}
		}
		if found != nil {
			return *found
		}
		if time.Now().After(deadline) {
			tb.fail("no answer to %s %s", method, rawURL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// NavigationLog is the tab's document requests, responses and refused
// cookies, one per line.
func (tb *tab) NavigationLog() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return strings.Join(tb.log, "\n")
}

// step runs browser actions with a time limit; on error it snapshots the
// page and fails the test.
func (tb *tab) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.fail("%s: %v", what, err)
	}
}

// fail snapshots the page as it is and fails the test with its address
// and text.
func (tb *tab) fail(format string, args ...any) {
	tb.t.Helper()
	s := tb.Snapshot("failure")
	tb.t.Fatalf("%s\npage %s says:\n%s\nnavigation:\n%s", fmt.Sprintf(format, args...), s.URL, excerpt(s.Text, 1500), tb.NavigationLog())
}

// Navigate loads rawURL and waits for its load event (not for whatever the
// page does next, such as an auto-submitted form).
func (tb *tab) Navigate(rawURL string) {
	tb.t.Helper()
	tb.step("opening "+rawURL, chromedp.Navigate(rawURL))
}

// WaitVisible waits until an element matching the CSS selector is visible.
func (tb *tab) WaitVisible(sel string) {
	tb.t.Helper()
	tb.step("waiting for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// Type types text into the element matching the CSS selector.
func (tb *tab) Type(sel, text string) {
	tb.t.Helper()
	tb.step("typing into "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text))
}

// Click clicks the element matching the CSS selector with the mouse.
func (tb *tab) Click(sel string) {
	tb.t.Helper()
	tb.step("clicking "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// Location is the address of the page shown now.
func (tb *tab) Location() string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStepTimeout)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		tb.fail("reading the location: %v", err)
	}
	return loc
}

// Text is the visible text of the page shown now.
func (tb *tab) Text() string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStepTimeout)
	defer cancel()
	text, err := tb.text(ctx)
	if err != nil {
		tb.fail("reading the page text: %v", err)
	}
	return text
}

func (tb *tab) text(ctx context.Context) (string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
}

// WaitFor waits until cond holds for the page's address and text. It keeps
// asking while the browser moves between pages, when the page's script
// context comes and goes.
func (tb *tab) WaitFor(what string, cond func(loc, text string) bool) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStepTimeout)
	defer cancel()
	var lastErr error
	for {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err == nil {
			var text string
			if text, err = tb.text(ctx); err == nil && cond(loc, text) {
				return
			}
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			tb.fail("waiting for %s (last error: %v)", what, lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitText waits until the page's text contains s.
func (tb *tab) WaitText(s string) {
	tb.t.Helper()
	tb.WaitFor(fmt.Sprintf("the text %q", s), func(_, text string) bool { return strings.Contains(text, s) })
}

// Cookies returns the cookies the browser would send to rawURL.
func (tb *tab) Cookies(rawURL string) []*network.Cookie {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{rawURL}})
	if err != nil {
		tb.fail("reading cookies: %v", err)
	}
	return res.Cookies
}

// Cookie returns the cookie called name that the browser would send to
// rawURL, or nil.
func (tb *tab) Cookie(rawURL, name string) *network.Cookie {
	tb.t.Helper()
	for _, c := range tb.Cookies(rawURL) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Snapshot keeps a screenshot and the text of the page shown now, to be
// written out if the test fails. It never fails the test itself.
func (tb *tab) Snapshot(name string) shot {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	s := shot{Name: name}
	var err error
	if s.URL, err = chromedp.Run(ctx, chromedp.Location()); err == nil {
		if s.Text, err = tb.text(ctx); err == nil {
			s.PNG, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
		}
	}
	s.Err = err
	tb.mu.Lock()
	tb.shots = append(tb.shots, s)
	tb.mu.Unlock()
	return s
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// writeArtifacts writes every snapshot (PNG and text) and the navigation
// log into SCREENSHOT_DIR, or a new directory under the system's temporary
// directory that outlives the test, and logs where.
func (tb *tab) writeArtifacts(t testing.TB) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	dir := os.Getenv("SCREENSHOT_DIR")
	var err error
	if dir != "" {
		dir = filepath.Join(dir, unsafeFileChars.ReplaceAllString(t.Name(), "_"))
		err = os.MkdirAll(dir, 0o755)
	} else {
		dir, err = os.MkdirTemp("", "consoleme-auth-browser-")
	}
	if err != nil {
		t.Logf("cannot keep the browser's pages: %v", err)
		return
	}
	var written []string
	for i, s := range tb.shots {
		base := filepath.Join(dir, fmt.Sprintf("%02d-%s", i+1, unsafeFileChars.ReplaceAllString(s.Name, "_")))
		text := fmt.Sprintf("URL: %s\n\n%s\n", s.URL, s.Text)
		if s.Err != nil {
			text += fmt.Sprintf("\n(snapshot incomplete: %v)\n", s.Err)
		}
		if err := os.WriteFile(base+".txt", []byte(text), 0o644); err == nil {
			written = append(written, base+".txt")
		}
		if len(s.PNG) > 0 {
			if err := os.WriteFile(base+".png", s.PNG, 0o644); err == nil {
				written = append(written, base+".png")
			}
		}
	}
	navPath := filepath.Join(dir, "navigation.log")
	if err := os.WriteFile(navPath, []byte(strings.Join(tb.log, "\n")+"\n"), 0o644); err == nil {
		written = append(written, navPath)
	}
	t.Logf("browser pages kept in %s:\n  %s", dir, strings.Join(written, "\n  "))
}

func excerpt(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// hostOf is the host:port of a URL, or "" when it does not parse.
func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Host
}
