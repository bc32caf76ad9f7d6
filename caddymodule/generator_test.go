package consolemeauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The generator's hand-written answer is byte for byte what encoding/json
// writes, with the same headers, whatever the base URL holds.
func TestWriteGeneratorMatchesEncodingJSON(t *testing.T) {
	const token = "0f8fad5b-d9cb-469f-a165-70867728950e"
	for _, base := range []string{
		"http://127.0.0.1:8080", "https://consoleme.example.com", "https://[::1]:8443",
		"https://a&b.example", "http://h<x>", `http://q"uote`, `http://back\slash`, "https://ünï.example",
		"http://ctl\x01", "http://bad\xffutf8", "http://sep\u2028",
	} {
		got := httptest.NewRecorder()
		if err := writeGenerator(got, []byte(base), token); err != nil {
			t.Fatalf("writeGenerator(%q): %v", base, err)
		}
		want := httptest.NewRecorder()
		if err := writeJSON(want, http.StatusOK, generatorReply{
			ChallengeURL: base + "/challenge_validator/" + token,
			PollingURL:   base + "/noauth/v1/challenge_poller/" + token,
		}); err != nil {
			t.Fatal(err)
		}
		if got.Body.String() != want.Body.String() {
			t.Errorf("base %q: body\n%s\nwant\n%s", base, got.Body, want.Body)
		}
		for _, h := range []string{"Content-Type", "X-Content-Type-Options", "Content-Length"} {
			if g, w := got.Header().Values(h), want.Header().Values(h); len(g) != 1 || g[0] != w[0] {
				t.Errorf("base %q: %s = %q, want %q", base, h, g, w)
			}
		}
		var m map[string]string
		if err := json.Unmarshal(got.Body.Bytes(), &m); err != nil || len(m) != 2 {
			t.Errorf("base %q: the answer does not decode to two fields: %v", base, err)
		}
	}
}

// A header directive that rewrites one of the answer's headers in place
// leaves the others, and the next answer's, alone.
func TestWriteBodyHeadersIndependent(t *testing.T) {
	first := httptest.NewRecorder()
	if err := writeBody(first, http.StatusOK, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	first.Header()["Content-Type"][0] = "text/plain"
	first.Header()["Content-Type"] = append(first.Header()["Content-Type"], "x")
	if v := first.Header()["X-Content-Type-Options"]; len(v) != 1 || v[0] != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q after changing Content-Type", v)
	}
	second := httptest.NewRecorder()
	if err := writeBody(second, http.StatusOK, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if v := second.Header().Get("Content-Type"); v != "application/json; charset=UTF-8" {
		t.Errorf("the next answer's Content-Type is %q", v)
	}
}

// nopWriter is a ResponseWriter that keeps nothing, so that what is
// counted is the handler's own work.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) WriteHeader(int)             {}
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }

// The generator does little beyond a random token, one store write and
// a small JSON body: its allocations are counted, not timed (see
// BenchmarkGenerator for the time).
func TestGeneratorAllocations(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) {
		h.MaxPending = 1 << 22
		h.GeneratorRateLimit = &RateLimit{}
	})
	r := request("GET", "/noauth/v1/challenge_generator/alice@example.com", "192.0.2.1", nil)
	w := &nopWriter{h: http.Header{}}
	allocs := testing.AllocsPerRun(2000, func() {
		clear(w.h)
		if err := h.ServeHTTP(w, r, okNext); err != nil {
			t.Fatal(err)
		}
	})
	// The token's string, the challenge, the body and the header values:
	// 4. The store chooses the token and keeps the challenge without
	// allocating (it takes a page of records now and then), the base URL is
	// written into the body directly, and Content-Length's digits come
	// from a table.
	if allocs > 4 {
		t.Errorf("the generator allocates %.0f times per call, want at most 4", allocs)
	}
	t.Logf("%.0f allocations per generator call", allocs)
}
