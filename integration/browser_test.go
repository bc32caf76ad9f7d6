package integration

import (
	"testing"

	"github.com/consoleme-auth/caddy-consoleme-auth/integration/testbed"
)

// The browser-like HTTP client is the test bed's: it keeps cookies per host
// as browsers do, never follows a redirect by itself, and parses forms and
// text out of the pages it gets.
type (
	browser     = testbed.Browser
	page        = testbed.Page
	htmlForm    = testbed.HTMLForm
	htmlControl = testbed.HTMLControl
)

func newBrowser(t testing.TB) *browser { return testbed.NewBrowser(t) }

func parseForms(body []byte) []htmlForm { return testbed.ParseForms(body) }

func htmlText(body []byte) string { return testbed.HTMLText(body) }
