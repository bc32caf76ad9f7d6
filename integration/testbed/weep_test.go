package testbed

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// poller answers pending twice, then unknown, as the module's poller does
// for a challenge cancelled in the browser.
func poller(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var polls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if polls.Add(1) <= 2 {
			w.Write([]byte(`{"status": "pending"}`))
			return
		}
		w.Write([]byte(`{"status": "unknown"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &polls
}

func TestPollStopsWhenCancelled(t *testing.T) {
	srv, polls := poller(t)
	c := WeepClient{PollEvery: 10 * time.Millisecond, Timeout: time.Minute, StopWhenCancelled: true}
	start := time.Now()
	_, err := c.Poll(context.Background(), srv.URL)
	if !errors.Is(err, ErrCancelled) || !strings.Contains(err.Error(), "cancelled in the browser") {
		t.Fatalf("Poll: %v, want ErrCancelled", err)
	}
	if n := polls.Load(); n != 3 {
		t.Errorf("polled %d times, want 3: stop at the first unknown after pending", n)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s to stop", d)
	}
}

// Without StopWhenCancelled the client polls on, as Weep does, until its
// timeout; and unknown before any pending (a mistyped URL) never counts as
// cancelled.
func TestPollKeepsPollingLikeWeep(t *testing.T) {
	srv, polls := poller(t)
	c := WeepClient{PollEvery: 10 * time.Millisecond, Timeout: 300 * time.Millisecond}
	_, err := c.Poll(context.Background(), srv.URL)
	if err == nil || errors.Is(err, ErrCancelled) || !strings.Contains(err.Error(), `last status "unknown"`) {
		t.Fatalf("Poll: %v, want the timeout after unknown", err)
	}
	if n := polls.Load(); n < 5 {
		t.Errorf("polled %d times: it stopped early", n)
	}

	unknown := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"status": "unknown"}`))
	}))
	defer unknown.Close()
	c.StopWhenCancelled = true
	if _, err := c.Poll(context.Background(), unknown.URL); err == nil || errors.Is(err, ErrCancelled) {
		t.Fatalf("Poll of a challenge never pending: %v, want the timeout", err)
	}
}
