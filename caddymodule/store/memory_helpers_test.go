package store_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// challenge returns a pending challenge with the i-th token, made at created.
func challenge(i uint64, created time.Time) *store.Challenge {
	var id [16]byte
	for j := range 8 {
		id[15-j] = byte(i >> (8 * j))
	}
	return &store.Challenge{
		Token:   uuid4(id),
		User:    fmt.Sprintf("user%06d@example.com", i%1_000_000),
		IP:      "192.0.2.10",
		Created: created,
		Expires: created.Add(ttl),
		Status:  store.StatusPending,
	}
}

// uuid4 formats id as a canonical version 4 uuid.
func uuid4(id [16]byte) string {
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return store.FormatUUID(id)
}

func mustCreate(tb testing.TB, m *store.Memory, c *store.Challenge) {
	tb.Helper()
	if err := m.Create(tb.Context(), c, c.Created); err != nil {
		tb.Fatalf("Create(%s): %v", c.Token, err)
	}
}

func wantPoll(t *testing.T, m *store.Memory, token string, now time.Time, want store.PollOutcome) *store.Challenge {
	t.Helper()
	got, c, err := m.Poll(t.Context(), token, "192.0.2.10", true, now)
	if err != nil || got != want {
		t.Fatalf("Poll(%s) = %v, %v, want %v", token, got, err, want)
	}
	return c
}

func sameChallenge(t *testing.T, got, want *store.Challenge) {
	t.Helper()
	if got.Token != want.Token || got.User != want.User || got.IP != want.IP || got.Status != want.Status ||
		got.Viewed != want.Viewed || got.Nonce != want.Nonce || got.Approver != want.Approver ||
		!got.Created.Equal(want.Created) || !got.Expires.Equal(want.Expires) || !got.AuthTime.Equal(want.AuthTime) ||
		!slices.Equal(got.Groups, want.Groups) {
		t.Fatalf("challenge\n got %+v\nwant %+v", got, want)
	}
}
