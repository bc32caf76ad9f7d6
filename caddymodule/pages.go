package consolemeauth

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"net/http"
	"strconv"
	"strings"
)

// SuccessMessage is what ConsoleMe says after an approval, word for word.
const SuccessMessage = "You've successfully authenticated to ConsoleMe and may now close this page."

// The pages are parsed once, at init; html/template escapes every value.
var pages = template.Must(template.New("layout").Parse(`{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{{.Title}} · ConsoleMe</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f5f7;color:#1d2330;margin:0}
main{max-width:36rem;margin:4rem auto;background:#fff;border-radius:8px;padding:2rem 2.5rem;box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.35rem;margin-top:0}dl{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1rem}
dt{color:#5a6272}dd{margin:0;font-weight:600;word-break:break-all}
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.75rem 1rem;margin:1rem 0}
button{background:#2165d1;color:#fff;border:0;border-radius:6px;padding:.7rem 1.6rem;font-size:1rem;cursor:pointer;margin-right:.6rem}
button.secondary{background:#fff;color:#a3261b;border:1px solid #a3261b}
.muted{color:#5a6272;font-size:.9rem}
main:has(table){max-width:56rem}table{border-collapse:collapse;width:100%;margin:1rem 0;font-size:.9rem}th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e3e5ea;vertical-align:top}
td button{padding:.3rem .8rem;font-size:.85rem;margin:0}
</style></head><body><main>{{end}}
{{define "foot"}}</main></body></html>{{end}}

{{define "approve"}}{{template "head" .}}
<h1>Approve ConsoleMe credentials?</h1>
<p>A command-line client asked to sign in to <strong id="site">{{.Site}}</strong>. Approve only if you started this request yourself, just now.</p>
<dl>
<dt>Site</dt><dd id="site-host">{{.Site}}</dd>
<dt>User</dt><dd id="user">{{.User}}</dd>
<dt>Requested from IP</dt><dd id="request-ip">{{.RequestIP}}</dd>
<dt>Requested at</dt><dd id="request-time">{{.Created}} ({{.Age}} ago)</dd>
<dt>Your browser's IP</dt><dd id="browser-ip">{{.BrowserIP}}</dd>
</dl>
<p id="grant">Approving gives that client a ConsoleMe session as <strong>{{.User}}</strong> for <strong>{{.Lifetime}}</strong>, which can obtain AWS role credentials for every role you may use.</p>
{{if .IPMismatch}}<p class="warn" id="ip-warning"><strong>Warning:</strong> this request was made from a different IP address
({{.RequestIP}}) than the one your browser uses ({{.BrowserIP}}). If you did not run the command yourself, do not approve it
and report it to your security team.</p>{{end}}
<form method="POST" action="{{.Action}}">
<input type="hidden" name="nonce" value="{{.Nonce}}">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<button type="submit" id="approve" name="decision" value="approve">Approve</button>
<button type="submit" id="cancel" name="decision" value="cancel" class="secondary">This wasn't me</button>
</form>
<p class="muted">This page can be viewed only once. If you did not create this request, choose "This wasn't me" and report it to your security team.</p>
{{template "foot"}}{{end}}

{{define "logout"}}{{template "head" .}}
<h1>{{.Title}}</h1>
<p id="message">Another site asked to sign you out. Sign out only if you meant to.</p>
<form method="POST" action="/logout"><button type="submit" id="logout">Sign out</button></form>
{{template "foot"}}{{end}}

{{define "message"}}{{template "head" .}}
<h1>{{.Title}}</h1>
<p id="message">{{.Message}}</p>
{{if .Detail}}<p id="detail">{{.Detail}}</p>{{end}}
{{if .Link}}<p><a id="more" href="{{.Link}}">{{.LinkText}}</a></p>{{end}}
{{template "foot"}}{{end}}

{{define "sessions"}}{{template "head" .}}
<h1>Your sessions</h1>
<p>Signed in as <strong id="user">{{.User}}</strong>. These are your live ConsoleMe sessions: browsers that signed in, and command-line tokens from approved requests.</p>
{{if .Notice}}<p class="warn" id="notice">{{.Notice}}</p>{{end}}
<table id="sessions"><thead><tr><th>How</th><th>From IP</th><th>Since</th><th>Until</th><th></th></tr></thead><tbody>
{{range .Rows}}<tr{{if .Current}} id="current"{{end}} class="session" data-method="{{.Method}}">
<td>{{.Method}}{{if .Current}} <strong>(this browser)</strong>{{end}}</td><td>{{.IP}}</td><td>{{.Created}}</td><td>{{.Expires}}</td>
<td>{{if .Current}}{{if $.Logout}}<a href="/logout" id="logout">Sign out</a>{{else if .ID}}<form method="POST" action="/sessions">
<input type="hidden" name="csrf_token" value="{{$.CSRF}}"><input type="hidden" name="action" value="end"><input type="hidden" name="session" value="{{.ID}}">
<button type="submit" class="secondary" id="end-current">Sign out</button></form>{{end}}{{else}}<form method="POST" action="/sessions">
<input type="hidden" name="csrf_token" value="{{$.CSRF}}"><input type="hidden" name="action" value="end"><input type="hidden" name="session" value="{{.ID}}">
<button type="submit" class="secondary end">Sign out</button></form>{{end}}</td></tr>
{{end}}</tbody></table>
{{if .Current}}<form method="POST" action="/sessions">
<input type="hidden" name="csrf_token" value="{{.CSRF}}"><input type="hidden" name="action" value="others">
<button type="submit" id="others">Sign out everywhere else</button></form>
<p class="muted">"Sign out everywhere else" ends every session of yours but this browser's, command-line tokens included, even those not listed here.</p>{{end}}
{{template "foot"}}{{end}}

{{define "post"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>Signing in · ConsoleMe</title></head>
<body><form method="POST" action="{{.Action}}">{{range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<noscript><button type="submit">Continue to sign in</button></noscript></form>
<script nonce="{{.Nonce}}">document.forms[0].submit();</script></body></html>{{end}}
`))

// approvalPage is the data of the approval page.
type approvalPage struct {
	Title      string
	Site       string // the public host the user should recognise
	Lifetime   string // what approving grants: the token's lifetime
	User       string
	RequestIP  string
	BrowserIP  string
	Created    string
	Age        string
	IPMismatch bool
	Action     string
	Nonce      string
	CSRF       string
}

// messagePage is the data of an information or error page.
type messagePage struct {
	Title   string
	Message template.HTML // escaped by textEscaper
	Detail  string        // an optional second paragraph
	// Link is an optional path on this site, shown as LinkText.
	Link, LinkText string
}

// textEscaper escapes text for an element's content. Unlike
// html/template's escaping it leaves quotes alone (they are harmless outside
// attributes), so ConsoleMe's "You've successfully authenticated…" appears
// in the page source exactly as written.
var textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// securityHeaders are sent with every page: no framing (the approve button
// cannot be clickjacked), no caching, no referrer (the URL holds the token).
func securityHeaders(h http.Header, csp string) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

// pageCSP is the policy of the module's pages: nothing loaded from
// anywhere, inline styles only, forms posted to this site only.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// onwardCSP is pageCSP for a page whose form sends the browser on to the
// identity provider: the logout confirmation (POST /logout answers with a
// redirect to the IdP's single-logout endpoint) and the HTTP-POST binding's
// form. It has no form-action: browsers apply form-action to every
// redirect that follows a submission, and an IdP may send the browser back
// here or on through other sites (a federated or home-realm IdP, a logout
// chain through other service providers), which no list written here can
// name. These pages hold no content from the request but the escaped form
// fields.
const onwardCSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"

// render executes a template into a buffer first, so a template error never
// leaves half a page behind.
func render(w http.ResponseWriter, status int, name, csp string, data any) error {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		return err
	}
	hdr := w.Header()
	securityHeaders(hdr, csp)
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// postForm renders a page that POSTs fields to action at once (the SAML
// HTTP-POST binding); its script runs under a one-time CSP nonce, with
// onwardCSP's rules (the IdP answers with redirects this page cannot
// foresee: back to /saml/slo after a logout, or through other sites).
func (h *Handler) postForm(w http.ResponseWriter, action string, fields map[string]string) error {
	nonce := randomID()
	csp := onwardCSP + "; script-src 'nonce-" + nonce + "'"
	return render(w, http.StatusOK, "post", csp, struct {
		Action string
		Fields map[string]string
		Nonce  string
	}{action, fields, nonce})
}

// randomID returns 128 random bits, base64url-encoded (22 characters).
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
