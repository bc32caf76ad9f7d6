package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ErrNoChromium says that no Chromium or Chrome binary was found; the error
// that wraps it says where it looked and how to install one.
var ErrNoChromium = errors.New("no Chromium or Chrome browser")

// FindChromium returns the browser to drive: $CHROMIUM when set, else the
// first of the usual names on PATH (Debian's chromium, other
// distributions' chromium-browser, Google Chrome, chrome-headless-shell).
func FindChromium() (string, error) {
	const hint = "install it with: apt-get install --no-install-recommends chromium, or set CHROMIUM to a Chromium or Chrome binary"
	if p := os.Getenv("CHROMIUM"); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("%w (CHROMIUM: %v); %s", ErrNoChromium, err, hint)
		}
		return path, nil
	}
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "chrome-headless-shell", "headless_shell"}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w (none of %s is on PATH and CHROMIUM is not set); %s", ErrNoChromium, strings.Join(names, ", "), hint)
}

// ChromiumStepTimeout bounds each browser step of a Tab, so that a page
// that never shows what a caller waits for is an error instead of a hang.
const ChromiumStepTimeout = 30 * time.Second

// Chromium is one headless Chromium process. Each tab it opens lives in its
// own browser context, with its own cookies, as a fresh browser profile.
type Chromium struct {
	ctx         context.Context // the browser's first tab, which stays blank
	cancel      context.CancelFunc
	cancelAlloc context.CancelFunc
	out         *SyncBuffer
	tempDir     string // removed by Stop
}

// StartChromium starts headless Chromium (see FindChromium) with the
// profile in profileDir, which must be empty or absent; when profileDir is
// "", a temporary directory is made and Stop removes it. It waits up to 60 s
// for the browser to answer. Errors wrap ErrNoChromium when there is no
// browser to start.
func StartChromium(profileDir string) (_ *Chromium, err error) {
	path, err := FindChromium()
	if err != nil {
		return nil, err
	}
	c := &Chromium{out: &SyncBuffer{}}
	if profileDir == "" {
		if profileDir, err = os.MkdirTemp("", "chromium-profile-"); err != nil {
			return nil, err
		}
		c.tempDir = profileDir
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profileDir),
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
	c.ctx, c.cancel = chromedp.NewContext(allocCtx)
	c.cancelAlloc = cancelAlloc
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	// The first action starts the browser; its life is bound to c.ctx, not
	// to the time limit, which only bounds the wait.
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(c.ctx) }()
	select {
	case err := <-done:
		if err != nil {
			return nil, fmt.Errorf("starting %s: %w\n%s", path, err, c.Output())
		}
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("%s did not start within 60s\n%s", path, c.Output())
	}
	return c, nil
}

// Output returns what the browser process has written so far.
func (c *Chromium) Output() string { return c.out.String() }

// Stop ends the browser, waits for the process to exit, and removes the
// profile StartChromium made.
func (c *Chromium) Stop() {
	c.cancel()
	c.cancelAlloc() // waits for the process to exit
	if c.tempDir != "" {
		_ = os.RemoveAll(c.tempDir)
	}
}

// Tab is one browser tab in its own browser context. It records every
// document request, redirect and cookie the browser refused, and keeps a
// screenshot and the text of each page snapshotted (Snapshot, and every
// failed step); WriteArtifacts writes all of it out.
type Tab struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	log   []string
	reqs  []DocRequest
	docs  []DocResponse
	urls  map[network.RequestID]string
	shots []Shot
}

// DocRequest is one top-level document request, with its form body.
type DocRequest struct {
	Method string
	URL    string
	Body   []byte
}

// DocResponse is one HTTP response to a top-level document request, a
// redirect included.
type DocResponse struct {
	Method   string
	URL      string
	Status   int64
	Location string
}

// Shot is a snapshot of a page: its address, its text and a screenshot.
// Err says what could not be captured.
type Shot struct {
	Name string
	URL  string
	Text string
	PNG  []byte
	Err  error
}

// NewTab opens a tab with empty cookies; Close closes it.
func (c *Chromium) NewTab() (*Tab, error) {
	ctx, cancel := chromedp.NewContext(c.ctx, chromedp.WithNewBrowserContext())
	tb := &Tab{ctx: ctx, cancel: cancel, urls: map[network.RequestID]string{}}
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("opening a tab: %w", err)
	}
	if err := chromedp.Listen(ctx, tb.onEvent); err != nil {
		cancel()
		return nil, fmt.Errorf("listening to the tab: %w", err)
	}
	return tb, nil
}

// Close closes the tab and its browser context.
func (tb *Tab) Close() { tb.cancel() }

// Context is the tab's chromedp context, for actions this type has no
// method for.
func (tb *Tab) Context() context.Context { return tb.ctx }

// onEvent runs on the tab's reader goroutine, so it only records.
func (tb *Tab) onEvent(ev any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if ev.Type != network.ResourceTypeDocument {
			return
		}
		if r := ev.RedirectResponse; r != nil {
			loc := headerValue(r.Headers, "Location")
			tb.docs = append(tb.docs, DocResponse{Method: tb.methodOf(ev.RequestID), URL: r.URL, Status: r.Status, Location: loc})
			tb.log = append(tb.log, fmt.Sprintf("  <- %d %s (Location: %s)", r.Status, r.URL, loc))
		}
		tb.urls[ev.RequestID] = ev.Request.Method + " " + ev.Request.URL
		req := DocRequest{Method: ev.Request.Method, URL: ev.Request.URL}
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
		tb.docs = append(tb.docs, DocResponse{Method: tb.methodOf(ev.RequestID), URL: r.URL, Status: r.Status})
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
func (tb *Tab) methodOf(id network.RequestID) string {
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
func (tb *Tab) Requests() []DocRequest {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]DocRequest(nil), tb.reqs...)
}

// Documents returns the document responses seen so far.
func (tb *Tab) Documents() []DocResponse {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]DocResponse(nil), tb.docs...)
}

// NavigationLog is the tab's document requests, responses and refused
// cookies, one per line.
func (tb *Tab) NavigationLog() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return strings.Join(tb.log, "\n")
}
