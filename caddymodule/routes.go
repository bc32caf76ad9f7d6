package consolemeauth

import "strings"

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
	routeOIDCLogin
	routeOIDCCallback
	routeSessions
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
func matchRoute(path string, saml, oidc bool) (route, string) {
	if len(path) < 2 {
		return routeNone, ""
	}
	switch path[1] {
	case 'n', 'c', 'a':
	case 'o':
		if oidc {
			switch path {
			case "/oidc/login":
				return routeOIDCLogin, ""
			case "/oidc/callback":
				return routeOIDCCallback, ""
			}
		}
		return routeNone, ""
	case 's':
		if path == sessionsPath {
			return routeSessions, ""
		}
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

// redactURI is a request path fit for the log: a challenge token in it is
// cut to its first characters, and the query is left out.
func redactURI(path string) string {
	rt, arg := matchRoute(path, false, false)
	if rt == routePoller || rt == routeValidator || rt == routeValidatorAPI {
		return strings.TrimSuffix(path, arg) + shortToken(arg) + "…"
	}
	return path
}

// shortToken is the part of a challenge token that is safe to log: enough to
// correlate log lines, too little to poll with.
func shortToken(t string) string {
	if len(t) > 8 {
		return t[:8]
	}
	return t
}
