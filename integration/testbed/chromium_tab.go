package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// What a Tab does. Every step is bounded by ChromiumStepTimeout, and every
// error a step returns has been through Failure: it names the page the tab
// shows and carries its text and the navigation log.

// Failure snapshots the page as it is (as "failure") and returns err with
// the page's address, the start of its text and the navigation log.
func (tb *Tab) Failure(err error) error {
	s := tb.Snapshot("failure")
	return fmt.Errorf("%w\npage %s says:\n%s\nnavigation:\n%s", err, s.URL, Excerpt(s.Text, 1500), tb.NavigationLog())
}

// Step runs chromedp actions, as one step called what.
func (tb *Tab) Step(what string, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(tb.ctx, ChromiumStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		return tb.Failure(fmt.Errorf("%s: %w", what, err))
	}
	return nil
}

// Navigate loads rawURL and waits for its load event (not for whatever the
// page does next, such as an auto-submitted form).
func (tb *Tab) Navigate(rawURL string) error {
	return tb.Step("opening "+rawURL, chromedp.Navigate(rawURL))
}

// WaitVisible waits until an element matching the CSS selector is visible.
func (tb *Tab) WaitVisible(sel string) error {
	return tb.Step("waiting for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// Type types text into the element matching the CSS selector.
func (tb *Tab) Type(sel, text string) error {
	return tb.Step("typing into "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text))
}

// Click clicks the element matching the CSS selector with the mouse.
func (tb *Tab) Click(sel string) error {
	return tb.Step("clicking "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// Location is the address of the page shown now.
func (tb *Tab) Location() (string, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, ChromiumStepTimeout)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "", tb.Failure(fmt.Errorf("reading the location: %w", err))
	}
	return loc, nil
}

// Text is the visible text of the page shown now.
func (tb *Tab) Text() (string, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, ChromiumStepTimeout)
	defer cancel()
	text, err := tb.text(ctx)
	if err != nil {
		return "", tb.Failure(fmt.Errorf("reading the page text: %w", err))
	}
	return text, nil
}

func (tb *Tab) text(ctx context.Context) (string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
}

// WaitFor waits until cond holds for the page's address and text. It keeps
// asking while the browser moves between pages, when the page's script
// context comes and goes.
func (tb *Tab) WaitFor(what string, cond func(loc, text string) bool) error {
	ctx, cancel := context.WithTimeout(tb.ctx, ChromiumStepTimeout)
	defer cancel()
	err := WaitFor(ChromiumStepTimeout, 100*time.Millisecond, func() error {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			return err
		}
		text, err := tb.text(ctx)
		if err != nil {
			return err
		}
		if !cond(loc, text) {
			return fmt.Errorf("not shown at %s", loc)
		}
		return nil
	})
	if err != nil {
		return tb.Failure(fmt.Errorf("waiting for %s: %w", what, err))
	}
	return nil
}

// WaitText waits until the page's text contains s.
func (tb *Tab) WaitText(s string) error {
	return tb.WaitFor(fmt.Sprintf("the text %q", s), func(_, text string) bool { return strings.Contains(text, s) })
}

// WaitDocument waits for the answer to a document request (the last one
// if there were several) and returns it.
func (tb *Tab) WaitDocument(method, rawURL string) (DocResponse, error) {
	var found DocResponse
	err := WaitFor(ChromiumStepTimeout, 50*time.Millisecond, func() error {
		ok := false
		for _, d := range tb.Documents() {
			if d.Method == method && d.URL == rawURL {
				found, ok = d, true
			}
		}
		if !ok {
			return errors.New("no answer yet")
		}
		return nil
	})
	if err != nil {
		return DocResponse{}, tb.Failure(fmt.Errorf("no answer to %s %s: %w", method, rawURL, err))
	}
	return found, nil
}

// Cookies returns the cookies the browser would send to rawURL.
func (tb *Tab) Cookies(rawURL string) ([]*network.Cookie, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, ChromiumStepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{rawURL}})
	if err != nil {
		return nil, tb.Failure(fmt.Errorf("reading cookies: %w", err))
	}
	return res.Cookies, nil
}

// Cookie returns the cookie called name that the browser would send to
// rawURL, or nil.
func (tb *Tab) Cookie(rawURL, name string) (*network.Cookie, error) {
	cookies, err := tb.Cookies(rawURL)
	for _, c := range cookies {
		if c.Name == name {
			return c, nil
		}
	}
	return nil, err
}

// Snapshot keeps a screenshot and the text of the page shown now, for
// WriteArtifacts, and returns them. What it could not capture is in the
// Shot's Err.
func (tb *Tab) Snapshot(name string) Shot {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	s := Shot{Name: name}
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

// ArtifactDir makes the directory a run called name keeps its browser
// pages in: $SCREENSHOT_DIR/<name>, or a new directory under the system's
// temporary directory that outlives the run.
func ArtifactDir(name string) (string, error) {
	if dir := os.Getenv("SCREENSHOT_DIR"); dir != "" {
		dir = filepath.Join(dir, unsafeFileChars.ReplaceAllString(name, "_"))
		return dir, os.MkdirAll(dir, 0o755)
	}
	return os.MkdirTemp("", "consoleme-auth-browser-")
}

// WriteArtifacts writes every snapshot (PNG and text) and the navigation
// log into dir and returns the files written.
func (tb *Tab) WriteArtifacts(dir string) ([]string, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var written []string
	write := func(path string, data []byte) error {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("writing the browser's pages: %w", err)
		}
		written = append(written, path)
		return nil
	}
	for i, s := range tb.shots {
		base := filepath.Join(dir, fmt.Sprintf("%02d-%s", i+1, unsafeFileChars.ReplaceAllString(s.Name, "_")))
		text := fmt.Sprintf("URL: %s\n\n%s\n", s.URL, s.Text)
		if s.Err != nil {
			text += fmt.Sprintf("\n(snapshot incomplete: %v)\n", s.Err)
		}
		if err := write(base+".txt", []byte(text)); err != nil {
			return written, err
		}
		if len(s.PNG) > 0 {
			if err := write(base+".png", s.PNG); err != nil {
				return written, err
			}
		}
	}
	return written, write(filepath.Join(dir, "navigation.log"), []byte(strings.Join(tb.log, "\n")+"\n"))
}

// Excerpt is s cut to n bytes, with an ellipsis when it was longer.
func Excerpt(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
