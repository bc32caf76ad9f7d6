package main

import (
	"context"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

// Flags work before and after the user, as users type them.
func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args, rest []string
		noOpen     bool
		url        string
	}{
		{args: []string{"alice@example.com", "-no-open"}, rest: []string{"alice@example.com"}, noOpen: true},
		{args: []string{"-no-open", "alice@example.com"}, rest: []string{"alice@example.com"}, noOpen: true},
		{args: []string{"alice@example.com", "-url", "http://x", "-no-open"}, rest: []string{"alice@example.com"}, noOpen: true, url: "http://x"},
		{args: []string{"a", "b"}, rest: []string{"a", "b"}},
		{args: []string{"--", "-no-open"}, rest: []string{"-no-open"}},
		{args: nil, rest: nil},
	} {
		fs := flag.NewFlagSet("login", flag.ContinueOnError)
		noOpen := fs.Bool("no-open", false, "")
		url := fs.String("url", "", "")
		rest, err := parseInterspersed(fs, tc.args)
		if err != nil || !slices.Equal(rest, tc.rest) || *noOpen != tc.noOpen || *url != tc.url {
			t.Errorf("%q: rest %q, -no-open %v, -url %q, err %v; want %q, %v, %q", tc.args, rest, *noOpen, *url, err, tc.rest, tc.noOpen, tc.url)
		}
	}
}

// `demo login alice@example.com -no-open` is a login, not a usage error.
func TestLoginFlagsAfterUser(t *testing.T) {
	err := loginMain(context.Background(), []string{"alice@example.com", "-no-open", "-url", "http://127.0.0.1:1"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("login: %v, want it to have asked 127.0.0.1:1 for a challenge", err)
	}
	err = loginMain(context.Background(), []string{"alice@example.com", "bob@example.com"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "at most one user") {
		t.Fatalf("two users: %v, want a usage error", err)
	}
}
