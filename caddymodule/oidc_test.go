package consolemeauth

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// oidcHandler provisions a handler signing in with OpenID Connect at an
// issuer nothing answers for (discovery stays unloaded).
func oidcHandler(t *testing.T, mutate func(*Handler)) *Handler {
	return newTestHandler(t, func(h *Handler) {
		h.OIDC = &OIDCConfig{Issuer: "http://127.0.0.1:1", ClientID: "consoleme", ClientSecret: "s3cret"}
		if mutate != nil {
			mutate(h)
		}
	})
}

func TestOIDCConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		h    Handler
		want string
	}{
		{Handler{JWTSecret: "s", OIDC: &OIDCConfig{ClientID: "c", ClientSecret: "x"}}, "oidc: issuer"},
		{Handler{JWTSecret: "s", OIDC: &OIDCConfig{Issuer: "https://idp.example.com"}}, "oidc: client_id"},
		{Handler{JWTSecret: "s", OIDC: &OIDCConfig{Issuer: "https://idp.example.com", ClientID: "c", ClientSecret: "{env.CONSOLEME_AUTH_TEST_UNSET_VAR}"}}, "client_secret: {env.CONSOLEME_AUTH_TEST_UNSET_VAR} expanded to nothing"},
		{Handler{JWTSecret: "s", OIDC: &OIDCConfig{Issuer: "https://idp.example.com", ClientID: "c", ClientSecret: "x"},
			SAML: &SAMLConfig{SPCert: "c", SPKey: "k", IDPMetadataFile: "f"}}, "not both"},
	} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		h := tc.h
		err := h.Provision(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Provision(%+v) = %v, want an error saying %q", tc.h.OIDC, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Error("an error quotes the client secret")
		}
		_ = h.Cleanup()
	}
}

// With an oidc block the module answers /oidc/*, and web_login points
// ConsoleMe's JavaScript at /oidc/login; without one, /oidc/* is not ours.
func TestOIDCRoutes(t *testing.T) {
	h := oidcHandler(t, func(h *Handler) { h.WebLogin = &WebLoginConfig{} })
	r := request("GET", "/policies", "192.0.2.1", nil)
	r.Header.Set("X-Requested-With", "XMLHttpRequest")
	rec, passed := serve(t, h, r)
	if passed || rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "/oidc/login?return_to=%2Fpolicies") {
		t.Errorf("XHR without a session: %d %s", rec.Code, rec.Body)
	}
	// A callback naming no login of ours is refused without asking the provider.
	for _, q := range []string{"", "?state=unknown-state&code=x", "?state=../x&code=x"} {
		rec, passed = serve(t, h, request("GET", "/oidc/callback"+q, "192.0.2.1", nil))
		if passed || rec.Code != http.StatusBadRequest {
			t.Errorf("callback %q: %d passed=%v", q, rec.Code, passed)
		}
	}
	if rec, _ := serve(t, h, request("POST", "/oidc/callback", "192.0.2.1", nil)); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST callback: %d", rec.Code)
	}
	plain := newTestHandler(t, nil)
	if _, passed := serve(t, plain, request("GET", "/oidc/callback?state=x", "192.0.2.1", nil)); !passed {
		t.Error("without an oidc block /oidc/callback was not passed on")
	}
}
