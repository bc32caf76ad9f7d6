package consolemeauth

import (
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUserMatchCaseInsensitive(t *testing.T) {
	exact := newTestHandler(t, nil)
	tok := generate(t, exact, "Alice@Example.com", "192.0.2.1")
	r := request("GET", "/challenge_validator/"+tok, "192.0.2.1", nil)
	r.AddCookie(sessionCookie(t, exact, "alice@example.com"))
	if rec, _ := serve(t, exact, r); rec.Code != 403 {
		t.Errorf("exact match accepted another case: %d", rec.Code)
	}
	ci := newTestHandler(t, func(h *Handler) { h.UserMatch = "case_insensitive" })
	tok = generate(t, ci, "Alice@Example.com", "192.0.2.1")
	if rec := approve(t, ci, tok, "192.0.2.1", sessionCookie(t, ci, "alice@example.com")); rec.Code != 200 {
		t.Errorf("case-insensitive match refused: %d", rec.Code)
	}
}

func TestGroupPolicies(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) {
		h.AllowedGroups = []string{"engineering", "sre"}
		h.DeniedGroups = []string{"contractors"}
	})
	for _, tc := range []struct {
		groups []string
		ok     bool
	}{
		{[]string{"engineering"}, true},
		{[]string{"marketing", "sre"}, true},
		{[]string{"marketing"}, false},
		{nil, false},
		{[]string{"engineering", "contractors"}, false},
	} {
		tok := generate(t, h, "alice@example.com", "192.0.2.1")
		r := request("GET", "/challenge_validator/"+tok, "192.0.2.1", nil)
		r.AddCookie(sessionCookie(t, h, "alice@example.com", tc.groups...))
		rec, _ := serve(t, h, r)
		if tc.ok != (rec.Code == 200) {
			t.Errorf("groups %v: %d", tc.groups, rec.Code)
		}
		if !tc.ok && !strings.Contains(rec.Body.String(), "administrator") {
			t.Errorf("groups %v: refusal page does not say what to do: %s", tc.groups, rec.Body)
		}
		if m := poll(t, h, tok, "192.0.2.1"); m["status"] != "pending" {
			t.Errorf("groups %v: %v", tc.groups, m)
		}
	}
}

func TestGroupsFilterAndTokenSize(t *testing.T) {
	many := make([]string, 300)
	for i := range many {
		many[i] = fmt.Sprintf("directory-group-with-a-long-name-%03d", i)
	}
	many = append(many, "consoleme-admins", "aws-prod-readonly")

	unfiltered := newTestHandler(t, nil)
	tok := generate(t, unfiltered, "alice@example.com", "192.0.2.1")
	r := request("GET", "/challenge_validator/"+tok, "192.0.2.1", nil)
	r.AddCookie(sessionCookie(t, unfiltered, "alice@example.com", many...))
	rec, _ := serve(t, unfiltered, r)
	if rec.Code != 403 || !strings.Contains(rec.Body.String(), "groups_filter") {
		t.Errorf("oversized token not refused clearly: %d %s", rec.Code, rec.Body)
	}

	h := newTestHandler(t, func(h *Handler) { h.GroupsFilter = []string{"consoleme-.*", "aws-.*"} })
	tok = generate(t, h, "alice@example.com", "192.0.2.1")
	if rec := approve(t, h, tok, "192.0.2.1", sessionCookie(t, h, "alice@example.com", many...)); rec.Code != 200 {
		t.Fatalf("approve: %d", rec.Code)
	}
	m := poll(t, h, tok, "192.0.2.1")
	id, err := h.sessions.codec.Verify(m["encoded_jwt"].(string), h.now())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(id.Groups, ",") != "consoleme-admins,aws-prod-readonly" {
		t.Errorf("filtered groups %v", id.Groups)
	}
	// The filter is anchored: a group merely containing the pattern is dropped.
	if got := h.policy.filterGroups([]string{"not-consoleme-x", "aws-x"}); strings.Join(got, ",") != "aws-x" {
		t.Errorf("filter %v", got)
	}
}

func TestPolicyConfig(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`consoleme_auth {
		user_match case_insensitive
		allowed_groups a b
		denied_groups c
		groups_filter "consoleme-.*" aws-.*
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if h.UserMatch != "case_insensitive" || len(h.AllowedGroups) != 2 || h.DeniedGroups[0] != "c" || h.GroupsFilter[1] != "aws-.*" {
		t.Errorf("%+v", h)
	}
	for _, bad := range []func(*Handler){
		func(h *Handler) { h.UserMatch = "fuzzy" },
		func(h *Handler) { h.GroupsFilter = []string{"("} },
	} {
		x := &Handler{JWTSecret: "s"}
		bad(x)
		ctx, cancel := newCtx()
		err := x.Provision(ctx)
		cancel()
		_ = x.Cleanup()
		if err == nil {
			t.Errorf("bad policy accepted: %+v", x)
		}
	}
}
