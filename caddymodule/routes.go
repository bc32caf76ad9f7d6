package consolemeauth

import (
	"strings"
	"unicode/utf8"
)

// route is one of the paths the handler answers itself.
type route int

const (
	routeNone route = iota
	routeGenerator
	routePoller
	routeValidator
	routeValidatorAPI
	routeSAMLMetadata
	routeSAMLACS
	routeSAMLLogin
	routeSAMLSLO
)

// prefixes maps each spelling of a parameterised route to the route. The
// underscore form is ConsoleMe's; the colon form is how one rendering of its
// docs spells the same routes.
var prefixes = []struct {
	prefix string
	route  route
}{
	{"/noauth/v1/challenge_generator", routeGenerator},
	{"/noauth/v1/challenge:generator", routeGenerator},
	{"/noauth/v1/challenge_poller", routePoller},
	{"/noauth/v1/challenge:poller", routePoller},
	{"/challenge_validator", routeValidator},
	{"/challenge:validator", routeValidator},
	{"/api/v2/challenge_validator", routeValidatorAPI},
	{"/api/v2/challenge:validator", routeValidatorAPI},
}

// matchRoute returns the route for a (decoded) request path and the rest of
// the path after the route's prefix and its slash: the user name or token,
// possibly empty or malformed, which the route's handler checks. Paths that
// are not ours return routeNone quickly: every request pays for this call.
func matchRoute(path string, saml bool) (route, string) {
	if len(path) < 2 {
		return routeNone, ""
	}
	switch path[1] {
	case 'n', 'c', 'a':
	case 's':
		if saml {
			switch path {
			case "/saml/metadata":
				return routeSAMLMetadata, ""
			case "/saml/acs":
				return routeSAMLACS, ""
			case "/saml/login":
				return routeSAMLLogin, ""
			case "/saml/slo":
				return routeSAMLSLO, ""
			}
		}
		return routeNone, ""
	default:
		return routeNone, ""
	}
	for _, p := range prefixes {
		if !strings.HasPrefix(path, p.prefix) {
			continue
		}
		rest := path[len(p.prefix):]
		if rest == "" {
			return p.route, ""
		}
		if rest[0] == '/' {
			return p.route, rest[1:]
		}
	}
	return routeNone, ""
}

// maxUserLen is the longest user name the generator accepts, in bytes.
const maxUserLen = 256

// checkUser returns why a user name from the generator path is refused, or "".
// ConsoleMe accepts anything; we refuse what cannot be a real user name and
// could only cause trouble in logs and pages.
func checkUser(u string) string {
	switch {
	case u == "":
		return "the user name is missing: call /noauth/v1/challenge_generator/{user}"
	case len(u) > maxUserLen:
		return "the user name is longer than 256 bytes"
	case !utf8.ValidString(u):
		return "the user name is not valid UTF-8"
	}
	for _, r := range u {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return "the user name contains a control character"
		}
	}
	return ""
}

// maxTokenLen is the longest challenge token accepted; ours are 36 bytes.
const maxTokenLen = 64

// validToken reports whether t matches ConsoleMe's token pattern
// [a-zA-Z0-9_-]+ and is not absurdly long.
func validToken(t string) bool {
	if t == "" || len(t) > maxTokenLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
