package consolemeauth

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// policy is the compiled form of the user and group settings.
type policy struct {
	caseInsensitive bool
	allowed         []string
	denied          []string
	filters         []*regexp.Regexp
}

func (h *Handler) compilePolicy() error {
	switch h.UserMatch {
	case "", "exact":
	case "case_insensitive":
		h.policy.caseInsensitive = true
	default:
		return fmt.Errorf("user_match: unknown mode %q (want exact or case_insensitive)", h.UserMatch)
	}
	h.policy.allowed = h.AllowedGroups
	h.policy.denied = h.DeniedGroups
	for _, f := range h.GroupsFilter {
		re, err := regexp.Compile("^(?:" + f + ")$")
		if err != nil {
			return fmt.Errorf("groups_filter: %q: %w", f, err)
		}
		h.policy.filters = append(h.policy.filters, re)
	}
	return nil
}

// sameUser compares the approving identity with the challenge's user.
func (p *policy) sameUser(identity, challengeUser string) bool {
	if p.caseInsensitive {
		return strings.EqualFold(identity, challengeUser)
	}
	return identity == challengeUser
}

// filterGroups keeps the groups matching groups_filter (all without one).
func (p *policy) filterGroups(groups []string) []string {
	if len(p.filters) == 0 {
		return groups
	}
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		for _, re := range p.filters {
			if re.MatchString(g) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// groupsRefusal says why groups may not get a CLI token, or "".
func (p *policy) groupsRefusal(groups []string) string {
	for _, g := range groups {
		if slices.Contains(p.denied, g) {
			return "member of a denied group"
		}
	}
	if len(p.allowed) == 0 {
		return ""
	}
	for _, g := range groups {
		if slices.Contains(p.allowed, g) {
			return ""
		}
	}
	return "in none of the allowed groups"
}
