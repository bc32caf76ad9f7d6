package consolemeauth

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// The approval page lets a user spot a phishing link: it names the site,
// says what approving grants and for how long, and offers to cancel.
func TestApprovalPageNamesSiteAndGrant(t *testing.T) {
	for _, tc := range []struct {
		siteName, want string
	}{
		{"", "consoleme.example.com"},
		{"ConsoleMe (production)", "ConsoleMe (production)"},
	} {
		h := newTestHandler(t, func(h *Handler) { h.SiteName = tc.siteName })
		tok := generate(t, h, "alice@example.com", "192.0.2.1")
		r := request("GET", "/challenge_validator/"+tok, "192.0.2.1", nil)
		r.AddCookie(sessionCookie(t, h, "alice@example.com"))
		rec, _ := serve(t, h, r)
		body := rec.Body.String()
		for _, want := range []string{
			`<dd id="site-host">` + tc.want + `</dd>`,
			`for <strong>1 hour</strong>`,
			`AWS role credentials`,
			`id="approve"`,
			`id="cancel"`,
			`This wasn't me`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("site_name %q: page lacks %q:\n%s", tc.siteName, want, body)
			}
		}
	}
}

// "This wasn't me" cancels the challenge: the poller answers as for an
// unknown challenge, and the cancellation is logged and counted.
func TestThisWasntMeCancels(t *testing.T) {
	h := newTestHandler(t, nil)
	core, logs := observer.New(zapcore.InfoLevel)
	h.logger = zap.New(core)
	before := testutil.ToFloat64(metrics.cancelled)
	tok := generate(t, h, "alice@example.com", "192.0.2.1")
	cookie := sessionCookie(t, h, "alice@example.com")
	form := approvalForm(t, h, tok, "192.0.2.1", cookie)
	form.Set("decision", "cancel")
	r := request("POST", "/challenge_validator/"+tok, "192.0.2.1", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(cookie)
	rec, _ := serve(t, h, r)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "cancelled") {
		t.Fatalf("cancel: %d %s", rec.Code, rec.Body)
	}
	if m := poll(t, h, tok, "192.0.2.1"); m["status"] != "unknown" {
		t.Errorf("poll after cancel: %v, want unknown", m)
	}
	if got := testutil.ToFloat64(metrics.cancelled) - before; got != 1 {
		t.Errorf("cancelled counter grew by %v", got)
	}
	lines := logs.FilterMessage("challenge cancelled").All()
	if len(lines) != 1 || lines[0].ContextMap()["user"] != "alice@example.com" {
		t.Errorf("audit lines %v", lines)
	}
	// The same form cannot approve it afterwards.
	form.Set("decision", "approve")
	r = request("POST", "/challenge_validator/"+tok, "192.0.2.1", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(cookie)
	if rec, _ := serve(t, h, r); rec.Code != http.StatusNotFound {
		t.Errorf("approval after cancel: %d", rec.Code)
	}
}

// The refusal for another IP names both addresses and warns of phishing;
// the success page sends the user back to the terminal.
func TestRefusalAndSuccessPagesGuideTheUser(t *testing.T) {
	h := newTestHandler(t, nil)
	tok := generate(t, h, "alice@example.com", "192.0.2.1")
	r := request("GET", "/challenge_validator/"+tok, "203.0.113.5", nil)
	r.AddCookie(sessionCookie(t, h, "alice@example.com"))
	rec, _ := serve(t, h, r)
	body := rec.Body.String()
	if rec.Code != 403 || !strings.Contains(body, "192.0.2.1") || !strings.Contains(body, "203.0.113.5") || !strings.Contains(body, "phishing") {
		t.Errorf("other-IP refusal: %d %s", rec.Code, body)
	}
	rec = approve(t, h, tok, "192.0.2.1", sessionCookie(t, h, "alice@example.com"))
	if body := rec.Body.String(); !strings.Contains(body, SuccessMessage) || !strings.Contains(body, "Return to your terminal") {
		t.Errorf("success page: %s", body)
	}
}
