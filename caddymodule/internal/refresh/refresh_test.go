package refresh

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestKeepBacksOffAndRefreshes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var waits []time.Duration
	calls := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Keep(ctx, func(context.Context) error {
			calls++
			switch {
			case calls <= 4:
				return errors.New("down")
			case calls == 6:
				cancel()
			}
			return nil
		}, time.Millisecond, time.Millisecond, 3*time.Millisecond, func(_ error, retryIn time.Duration) {
			waits = append(waits, retryIn)
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Keep did not return after its context ended")
	}
	want := []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 3 * time.Millisecond}
	if len(waits) != len(want) {
		t.Fatalf("retry waits %v, want %v", waits, want)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Errorf("retry waits %v, want %v (doubling, capped)", waits, want)
		}
	}
	if calls != 6 {
		t.Errorf("fetched %d times, want 6 (4 failures, then refreshes until cancelled)", calls)
	}
}
