package consolemeauth

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/samlauth/samltest"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/token"
)

// revokeMany fills the site's revocation list with n revoked sessions.
func revokeMany(h *Handler, n int) {
	now := time.Now()
	for i := range n {
		h.sessions.revoked.Apply(store.Revocation{Kind: store.RevokeSession, Subject: fmt.Sprintf("%022d", i), At: now, Expires: now.Add(time.Hour)})
	}
}

// BenchmarkPassThroughWithCookie is a ConsoleMe request carrying a session
// cookie, checked against 100,000 revocations (and the group policy): the
// cost every request with a token pays.
func BenchmarkPassThroughWithCookie(b *testing.B) {
	for _, tc := range []struct {
		name   string
		mutate func(*Handler)
	}{
		{"revocations", nil},
		{"revocations+policy", func(h *Handler) { h.AllowedGroups, h.DeniedGroups = []string{"eng"}, []string{"contractors"} }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := newTestHandler(b, tc.mutate)
			revokeMany(h, 100_000)
			c := issuedB(b, h, "alice@example.com", "eng")
			r := request("GET", "/api/v2/get_roles?all=true", "192.0.2.1", nil)
			r.AddCookie(c)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				_ = h.ServeHTTP(w, r, okNext)
			}
		})
	}
}

// BenchmarkWebLoginPage is a page load under web_login with a valid
// session: the token is verified once, then remembered.
func BenchmarkWebLoginPage(b *testing.B) {
	dir := b.TempDir()
	sp := samltest.NewKeyPair(b, dir, "sp")
	md := samltest.NewIdP(b, dir, "idp").MetadataFile(b, dir)
	h := newTestHandler(b, func(h *Handler) {
		h.SAML = &SAMLConfig{IDPMetadataFile: md, SPCert: sp.CertFile, SPKey: sp.KeyFile}
		h.WebLogin = &WebLoginConfig{}
	})
	revokeMany(h, 100_000)
	c := issuedB(b, h, "alice@example.com", "eng")
	r := request("GET", "/policies", "192.0.2.1", nil)
	r.Header.Set("Accept", "text/html")
	r.AddCookie(c)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		_ = h.ServeHTTP(w, r, okNext)
	}
}

func issuedB(b *testing.B, h *Handler, email string, groups ...string) *http.Cookie {
	rec := httptest.NewRecorder()
	if _, err := h.sessions.issue(rec, request("GET", "/", "192.0.2.1", nil), email, groups, time.Now()); err != nil {
		b.Fatal(err)
	}
	c := rec.Result().Cookies()[0]
	return &http.Cookie{Name: c.Name, Value: c.Value}
}

// Memory per remembered token and per recorded session, as README states.
func TestBytesPerTokenAndSession(t *testing.T) {
	h := newTestHandler(t, nil)
	const n = 20_000
	toks := make([]string, n)
	for i := range toks {
		jwt, _, err := h.sessions.codec.MintSubject(tokenSubject(fmt.Sprintf("user%05d@example.com", i)), time.Now(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		toks[i] = jwt
	}
	per := heapPer(n, func() {
		for _, tok := range toks {
			h.sessions.verified(tok, time.Now())
		}
	})
	t.Logf("%.0f bytes per remembered token, plus its text (%d bytes here, 2 groups)", per, len(toks[0]))
	if per <= 0 || per > 2048 {
		t.Errorf("%.0f bytes per remembered token", per)
	}
	st := store.NewMemorySessions()
	now := time.Now()
	per = heapPer(n, func() {
		for i := range n {
			_ = st.RecordSession(t.Context(), &store.Session{ID: newSessionID(), User: fmt.Sprintf("user%05d@example.com", i),
				Method: methodIdP, IP: "192.0.2.1", Created: now, Expires: now.Add(time.Hour)}, maxSessionsPerUser, now)
		}
	})
	t.Logf("%.0f bytes per recorded session (memory store)", per)
	if per <= 0 || per > 1024 {
		t.Errorf("%.0f bytes per recorded session", per)
	}
	runtime.KeepAlive(st)
	runtime.KeepAlive(toks)
}

// heapPer returns the live heap fill adds, per item.
func heapPer(n int, fill func()) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	fill()
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

func tokenSubject(email string) token.Subject {
	return token.Subject{Email: email, Groups: []string{"eng", "sre"}, Method: methodIdP, AuthTime: time.Now(), SessionID: newSessionID()}
}
