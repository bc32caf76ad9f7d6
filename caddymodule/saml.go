package consolemeauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// SAMLConfig makes the handler a SAML 2.0 service provider that logs
// browsers in at the challenge validator (SP-initiated, HTTP-Redirect or
// HTTP-POST binding to the IdP, HTTP-POST back to /saml/acs).
type SAMLConfig struct {
	// IDPMetadataURL is where the IdP publishes its metadata. It is fetched
	// in the background (start-up and `caddy validate` never wait for it)
	// and refreshed every IDPMetadataRefresh; a failed refresh keeps the last
	// good copy. One of IDPMetadataURL and IDPMetadataFile is required.
	IDPMetadataURL string `json:"idp_metadata_url,omitempty"`

	// IDPMetadataFile is a file holding the IdP metadata, read at provision.
	IDPMetadataFile string `json:"idp_metadata_file,omitempty"`

	// IDPMetadataRefresh is how often IDPMetadataURL is fetched again, so an
	// IdP certificate rotation needs no reload. Default: 24h.
	IDPMetadataRefresh caddy.Duration `json:"idp_metadata_refresh,omitempty"`

	// SPCert is the PEM file of the SP certificate published in the SP
	// metadata. Required.
	SPCert string `json:"sp_cert,omitempty"`

	// SPKey is the PEM file of the SP private key (RSA or ECDSA; PKCS#1,
	// PKCS#8 or SEC 1). It must match SPCert. Required. Never logged.
	SPKey string `json:"sp_key,omitempty"`

	// EntityID is the SP's entity ID. Default: <base>/saml/metadata, where
	// <base> is public_url or the request's scheme and host.
	EntityID string `json:"entity_id,omitempty"`

	// EmailAttribute is the assertion attribute (Name or FriendlyName) that
	// holds the user's email. Default: the assertion's NameID.
	EmailAttribute string `json:"email_attribute,omitempty"`

	// GroupsAttribute is the multi-valued attribute (Name or FriendlyName)
	// that holds the user's groups. Default: none (no groups).
	GroupsAttribute string `json:"groups_attribute,omitempty"`

	// NameIDFormat is the NameID format asked of the IdP: unspecified
	// (default: the IdP chooses), email, persistent or transient.
	NameIDFormat string `json:"name_id_format,omitempty"`

	// ClockSkew is how far the IdP's clock may be off from this host's when
	// checking an assertion's validity window. Setting it also lets an
	// assertion be up to 90 s + ClockSkew old (90 s when unset). The SAML
	// library keeps these settings process-wide, so the largest value
	// configured in any site applies to all. Default: 3m.
	ClockSkew caddy.Duration `json:"clock_skew,omitempty"`
}

// clockSkewMu guards the SAML library's process-wide time tolerances.
var clockSkewMu sync.Mutex

// widenClockSkew raises the SAML library's tolerances to skew if they are
// smaller; it never lowers them, since another site may need more.
func widenClockSkew(skew time.Duration) {
	clockSkewMu.Lock()
	defer clockSkewMu.Unlock()
	if skew > saml.MaxClockSkew {
		saml.MaxClockSkew = skew
	}
	if d := 90*time.Second + skew; d > saml.MaxIssueDelay {
		saml.MaxIssueDelay = d
	}
}

// serviceProvider is the provisioned SAML SP: keys, the current IdP
// metadata, and how to build a crewjam/saml ServiceProvider for a base URL.
type serviceProvider struct {
	cfg    *SAMLConfig
	key    crypto.Signer
	cert   *x509.Certificate
	format saml.NameIDFormat
	idp    atomic.Pointer[saml.EntityDescriptor]
	logger *zap.Logger
}

var errNoMetadata = errors.New("the identity provider's metadata is not loaded yet")

// provision reads the SP key pair and the IdP metadata file, or starts the
// background fetch of the metadata URL.
func (c *SAMLConfig) provision(ctx caddy.Context, repl *caddy.Replacer, logger *zap.Logger) (*serviceProvider, error) {
	c.IDPMetadataURL = repl.ReplaceAll(c.IDPMetadataURL, "")
	c.IDPMetadataFile = repl.ReplaceAll(c.IDPMetadataFile, "")
	c.SPCert = repl.ReplaceAll(c.SPCert, "")
	c.SPKey = repl.ReplaceAll(c.SPKey, "")
	c.EntityID = repl.ReplaceAll(c.EntityID, "")
	if c.IDPMetadataRefresh == 0 {
		c.IDPMetadataRefresh = caddy.Duration(24 * time.Hour)
	}
	if c.IDPMetadataRefresh < 0 {
		return nil, errors.New("idp_metadata_refresh: must be positive")
	}
	if c.ClockSkew < 0 {
		return nil, errors.New("clock_skew: must not be negative")
	}
	sp, err := newServiceProviderKeys(c)
	if err != nil {
		return nil, err
	}
	sp.logger = logger
	if c.ClockSkew > 0 {
		widenClockSkew(time.Duration(c.ClockSkew))
	}

	switch {
	case c.IDPMetadataURL != "" && c.IDPMetadataFile != "":
		return nil, errors.New("idp_metadata_url and idp_metadata_file: give only one")
	case c.IDPMetadataFile != "":
		data, err := os.ReadFile(c.IDPMetadataFile)
		if err != nil {
			return nil, fmt.Errorf("idp_metadata_file: %w", err)
		}
		md, err := parseIDPMetadata(data)
		if err != nil {
			return nil, fmt.Errorf("idp_metadata_file: %s: %w", c.IDPMetadataFile, err)
		}
		sp.idp.Store(md)
	case c.IDPMetadataURL != "":
		u, err := url.Parse(c.IDPMetadataURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("idp_metadata_url: %q is not an absolute http or https URL", c.IDPMetadataURL)
		}
		go sp.keepMetadata(ctx, time.Duration(c.IDPMetadataRefresh))
	default:
		return nil, errors.New("idp_metadata_url or idp_metadata_file: one is required")
	}
	return sp, nil
}

// newServiceProviderKeys checks the NameID format and loads the SP key pair.
func newServiceProviderKeys(c *SAMLConfig) (*serviceProvider, error) {
	sp := &serviceProvider{cfg: c, logger: zap.NewNop()}
	switch c.NameIDFormat {
	case "", "unspecified":
		sp.format = saml.UnspecifiedNameIDFormat
	case "email":
		sp.format = saml.EmailAddressNameIDFormat
	case "persistent":
		sp.format = saml.PersistentNameIDFormat
	case "transient":
		sp.format = saml.TransientNameIDFormat
	default:
		return nil, fmt.Errorf("name_id_format: unknown format %q (want unspecified, email, persistent or transient)", c.NameIDFormat)
	}
	var err error
	if c.SPCert == "" {
		return nil, errors.New("sp_cert: required")
	}
	if c.SPKey == "" {
		return nil, errors.New("sp_key: required")
	}
	if sp.cert, err = loadCert(c.SPCert); err != nil {
		return nil, fmt.Errorf("sp_cert: %w", err)
	}
	if sp.key, err = loadKey(c.SPKey); err != nil {
		return nil, fmt.Errorf("sp_key: %w", err)
	}
	if !publicKeysEqual(sp.key.Public(), sp.cert.PublicKey) {
		return nil, errors.New("sp_key: does not match the public key of sp_cert")
	}
	return sp, nil
}

// keepMetadata fetches the IdP metadata until it succeeds (backing off up to
// a minute), then again every refresh, keeping the last good copy, until the
// config is unloaded.
func (sp *serviceProvider) keepMetadata(ctx context.Context, refresh time.Duration) {
	backoff := time.Second
	for {
		err := sp.fetchMetadata(ctx)
		wait := refresh
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			sp.logger.Warn("fetching IdP metadata; keeping the last good copy",
				zap.String("url", sp.cfg.IDPMetadataURL), zap.Error(err), zap.Duration("retry_in", backoff))
			wait = backoff
			backoff = min(backoff*2, time.Minute)
		} else {
			backoff = time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// metadataClient fetches IdP metadata; its timeout bounds one attempt.
var metadataClient = &http.Client{Timeout: 15 * time.Second}

// maxMetadataSize bounds the IdP metadata we read.
const maxMetadataSize = 4 << 20

func (sp *serviceProvider) fetchMetadata(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sp.cfg.IDPMetadataURL, nil)
	if err != nil {
		return err
	}
	resp, err := metadataClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataSize+1))
	if err != nil {
		return err
	}
	if len(data) > maxMetadataSize {
		return errors.New("metadata larger than 4 MiB")
	}
	md, err := parseIDPMetadata(data)
	if err != nil {
		return err
	}
	old := sp.idp.Swap(md)
	if old == nil {
		sp.logger.Info("IdP metadata loaded", zap.String("entity_id", md.EntityID), zap.String("url", sp.cfg.IDPMetadataURL))
	}
	return nil
}

// parseIDPMetadata parses an EntityDescriptor (or the first of an
// EntitiesDescriptor) and checks that it describes an IdP we can log in at.
func parseIDPMetadata(data []byte) (*saml.EntityDescriptor, error) {
	md, err := samlsp.ParseMetadata(data)
	if err != nil {
		return nil, fmt.Errorf("parsing IdP metadata: %w", err)
	}
	if len(md.IDPSSODescriptors) == 0 {
		return nil, errors.New("parsing IdP metadata: no IDPSSODescriptor")
	}
	sp := saml.ServiceProvider{IDPMetadata: md}
	if sp.GetSSOBindingLocation(saml.HTTPRedirectBinding) == "" && sp.GetSSOBindingLocation(saml.HTTPPostBinding) == "" {
		return nil, errors.New("parsing IdP metadata: no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding")
	}
	return md, nil
}

// forBase returns a crewjam/saml ServiceProvider whose URLs live under base.
func (sp *serviceProvider) forBase(base string) (*saml.ServiceProvider, error) {
	md := sp.idp.Load()
	if md == nil {
		return nil, errNoMetadata
	}
	acs, err := url.Parse(base + "/saml/acs")
	if err != nil {
		return nil, err
	}
	meta, err := url.Parse(base + "/saml/metadata")
	if err != nil {
		return nil, err
	}
	slo, err := url.Parse(base + "/saml/slo")
	if err != nil {
		return nil, err
	}
	return &saml.ServiceProvider{
		SloURL:            *slo,
		LogoutBindings:    sloBindings,
		EntityID:          sp.cfg.EntityID,
		Key:               sp.key,
		Certificate:       sp.cert,
		MetadataURL:       *meta,
		AcsURL:            *acs,
		IDPMetadata:       md,
		AuthnNameIDFormat: sp.format,
		// parseResponse checks the audience itself, seeing every Audience
		// of a restriction where the library keeps only the last.
		ValidateAudienceRestriction: func(*saml.Assertion) error { return nil },
	}, nil
}

// sloBindings are how the IdP may reach /saml/slo after a logout.
var sloBindings = []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding}

// spMetadata is the SP's own metadata; it needs no IdP metadata.
func (sp *serviceProvider) spMetadata(base string) ([]byte, error) {
	acs, _ := url.Parse(base + "/saml/acs")
	meta, _ := url.Parse(base + "/saml/metadata")
	slo, _ := url.Parse(base + "/saml/slo")
	s := saml.ServiceProvider{
		EntityID: sp.cfg.EntityID, Key: sp.key, Certificate: sp.cert,
		MetadataURL: *meta, AcsURL: *acs, AuthnNameIDFormat: sp.format,
		SloURL: *slo, LogoutBindings: sloBindings,
	}
	md := s.Metadata()
	// Only the HTTP-POST binding is accepted at the ACS; the library also
	// advertises HTTP-Artifact, which would make IdPs try it.
	for i := range md.SPSSODescriptors {
		var acs []saml.IndexedEndpoint
		for _, e := range md.SPSSODescriptors[i].AssertionConsumerServices {
			if e.Binding == saml.HTTPPostBinding {
				acs = append(acs, e)
			}
		}
		md.SPSSODescriptors[i].AssertionConsumerServices = acs
	}
	return xml.MarshalIndent(md, "", "  ")
}

// serveMetadata answers GET /saml/metadata with the SP metadata.
func (h *Handler) serveMetadata(w http.ResponseWriter, r *http.Request) error {
	if !allowMethods(w, r, http.MethodGet) {
		return nil
	}
	b, err := h.sp.spMetadata(h.baseURL(r))
	if err != nil {
		return writeError(w, http.StatusInternalServerError, "internal_error", "building SP metadata failed")
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Header().Set("Cache-Control", "no-cache")
	_, err = w.Write(append([]byte(xml.Header), b...))
	return err
}

// startLogin sends the browser to the IdP with a fresh AuthnRequest whose ID
// is remembered (one-time) under a random RelayState, so the ACS can check
// InResponseTo without any cookie surviving the IdP's cross-site POST.
func (h *Handler) startLogin(w http.ResponseWriter, r *http.Request, returnPath string) error {
	sp, err := h.sp.forBase(h.baseURL(r))
	if err != nil {
		return h.page(w, r, http.StatusServiceUnavailable, "Sign-in unavailable",
			"The identity provider is not reachable right now. Please try again in a minute.")
	}
	binding, loc := saml.HTTPRedirectBinding, sp.GetSSOBindingLocation(saml.HTTPRedirectBinding)
	if loc == "" {
		binding, loc = saml.HTTPPostBinding, sp.GetSSOBindingLocation(saml.HTTPPostBinding)
	}
	req, err := sp.MakeAuthenticationRequest(loc, binding, saml.HTTPPostBinding)
	if err != nil {
		h.logger.Error("making SAML AuthnRequest", zap.Error(err))
		return h.page(w, r, http.StatusInternalServerError, "Sign-in failed", "The sign-in request could not be made.")
	}
	relay := randomID()
	now := h.now()
	state := &store.LoginState{RequestID: req.ID, ReturnPath: returnPath, Created: now}
	if err := h.store.SaveLogin(r.Context(), relay, state, now.Add(loginTTL)); err != nil {
		return h.storePage(w, r, err)
	}
	h.debug(r, "starting SAML login", zap.String("idp", sp.IDPMetadata.EntityID))
	if binding == saml.HTTPRedirectBinding {
		u, err := req.Redirect(relay, sp)
		if err != nil {
			h.logger.Error("encoding SAML AuthnRequest", zap.Error(err))
			return h.page(w, r, http.StatusInternalServerError, "Sign-in failed", "The sign-in request could not be made.")
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u.String(), http.StatusFound)
		return nil
	}
	doc, err := xml.Marshal(req)
	if err != nil {
		return err
	}
	return h.postForm(w, loc, map[string]string{
		"SAMLRequest": base64.StdEncoding.EncodeToString(doc),
		"RelayState":  relay,
	})
}

// maxACSBody bounds the ACS form: generous for responses with many groups.
const maxACSBody = 1 << 20

// serveACS consumes the IdP's POSTed response: the RelayState must name a
// login we started (each only once), the response must answer its
// AuthnRequest and pass crewjam/saml's checks (signature, audience,
// destination, recipient, validity window), and an assertion ID is accepted
// only once. Then the browser gets the consoleme_auth cookie and goes back to
// where the login started.
func (h *Handler) serveACS(w http.ResponseWriter, r *http.Request) error {
	if !allowMethods(w, r, http.MethodPost) {
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxACSBody)
	if err := r.ParseForm(); err != nil {
		h.debug(r, "refusing SAML response", zap.String("reason", "unreadable form"), zap.Error(err))
		return h.page(w, r, http.StatusBadRequest, "Sign-in failed", "The identity provider's answer could not be read.")
	}
	if r.PostForm.Get("SAMLart") != "" {
		return h.page(w, r, http.StatusBadRequest, "Sign-in failed", "The SAML artifact binding is not supported; configure the IdP to POST the response.")
	}
	relay := r.PostForm.Get("RelayState")
	samlResponse := r.PostForm.Get("SAMLResponse")
	if samlResponse == "" {
		h.debug(r, "refusing SAML response", zap.String("reason", "no SAMLResponse"))
		return h.page(w, r, http.StatusBadRequest, "Sign-in failed", "The request carries no SAML response.")
	}
	raw, err := decodeBase64Loose(samlResponse)
	if err != nil {
		h.debug(r, "refusing SAML response", zap.String("reason", "invalid base64"))
		return h.page(w, r, http.StatusBadRequest, "Sign-in failed", "The SAML response is not valid base64.")
	}
	if relay == "" || len(relay) > 128 {
		metrics.logins.WithLabelValues("refused").Inc()
		h.logger.Info("SAML login refused", zap.String("reason", "no login in progress (IdP-initiated or missing RelayState)"),
			zap.String("remote_ip", clientIP(r)))
		return h.page(w, r, http.StatusBadRequest, "Sign-in failed",
			"This sign-in was not started here. Open the challenge link from your terminal again.")
	}
	now := h.now()
	state, err := h.store.TakeLogin(r.Context(), relay, now)
	if err != nil {
		if isNotFound(err) {
			metrics.logins.WithLabelValues("refused").Inc()
			h.logger.Info("SAML login refused", zap.String("reason", "unknown, expired or already used RelayState"),
				zap.String("remote_ip", clientIP(r)))
			return h.page(w, r, http.StatusBadRequest, "Sign-in failed",
				"This sign-in has expired or was already used. Open the challenge link from your terminal again.")
		}
		return h.storePage(w, r, err)
	}
	base := h.baseURL(r)
	sp, err := h.sp.forBase(base)
	if err != nil {
		return h.page(w, r, http.StatusServiceUnavailable, "Sign-in unavailable",
			"The identity provider's metadata is not loaded. Please try again in a minute.")
	}
	assertion, err := parseResponse(sp, raw, state.RequestID)
	if err != nil {
		reason := err.Error()
		var ire *saml.InvalidResponseError
		if errors.As(err, &ire) && ire.PrivateErr != nil {
			reason = ire.PrivateErr.Error()
		}
		metrics.logins.WithLabelValues("refused").Inc()
		h.logger.Info("SAML login refused", zap.String("reason", reason), zap.String("remote_ip", clientIP(r)))
		return h.page(w, r, http.StatusForbidden, "Sign-in failed",
			"The identity provider's answer was not accepted. Ask your administrator to check the server log.")
	}
	until := now.Add(2 * saml.MaxClockSkew)
	if na := assertion.Conditions; na != nil && !na.NotOnOrAfter.IsZero() {
		until = na.NotOnOrAfter.Add(saml.MaxClockSkew)
	}
	if fresh, err := h.store.MarkOnce(r.Context(), "assertion:"+assertion.ID, until); err != nil {
		return h.storePage(w, r, err)
	} else if !fresh {
		metrics.logins.WithLabelValues("refused").Inc()
		h.logger.Info("SAML login refused", zap.String("reason", "replayed assertion"), zap.String("remote_ip", clientIP(r)))
		return h.page(w, r, http.StatusForbidden, "Sign-in failed", "This SAML response was already used.")
	}
	email, groups := h.sp.identity(assertion)
	groups = h.policy.filterGroups(groups)
	if email == "" {
		metrics.logins.WithLabelValues("refused").Inc()
		h.logger.Info("SAML login refused", zap.String("reason", "no email in the assertion"),
			zap.String("email_attribute", h.SAML.EmailAttribute))
		return h.page(w, r, http.StatusForbidden, "Sign-in failed",
			"The identity provider sent no email address for you. Ask your administrator to check email_attribute.")
	}
	jwt, exp, err := h.minter.Mint(email, groups, now)
	if err != nil {
		h.logger.Error("minting token", zap.Error(err))
		return h.page(w, r, http.StatusInternalServerError, "Sign-in failed", "The session could not be created.")
	}
	if len(h.CookieName)+1+len(jwt) > maxCookieSize {
		metrics.logins.WithLabelValues("refused").Inc()
		h.logger.Info("SAML login refused", zap.String("reason", "token too large for a cookie"),
			zap.String("user", email), zap.Int("groups", len(groups)))
		return h.page(w, r, http.StatusForbidden, "Too many groups", refuseTooLarge.text)
	}
	h.setSessionCookie(w, r, jwt, exp)
	metrics.logins.WithLabelValues("success").Inc()
	h.logger.Info("SAML login", zap.String("user", email), zap.Int("groups", len(groups)),
		zap.String("idp", assertion.Issuer.Value), zap.String("remote_ip", clientIP(r)))
	http.Redirect(w, r, safeReturnPath(state.ReturnPath), http.StatusSeeOther)
	return nil
}

// Limits of the SAML response's shape, checked before the SAML library
// parses it: real responses are a few levels deep and a few hundred
// elements long.
const (
	maxResponseDepth    = 48
	maxResponseElements = 20000
)

// checkResponseShape refuses what no honest IdP sends and what attacks
// need: a DTD (entity tricks), absurd nesting or size (parser time grows
// with depth), a root that is not a Response, and anything but exactly one
// assertion (signature-wrapping places a forged assertion beside the signed
// one). It is one linear pass of the standard XML tokenizer, which also
// collects the audiences of a plaintext assertion: crewjam/saml keeps only
// the last Audience of each AudienceRestriction, though SAML allows several
// (any one of which may name us).
func checkResponseShape(raw []byte) (*responseShape, error) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	shape := &responseShape{}
	depth, elements, assertions := 0, 0, 0
	inRestriction, inAudience := false, false
	var audience strings.Builder
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("invalid xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, errors.New("the response has a DOCTYPE or other directive")
		case xml.StartElement:
			depth++
			elements++
			if depth > maxResponseDepth || elements > maxResponseElements {
				return nil, errors.New("the response is nested too deeply or has too many elements")
			}
			switch t.Name.Local {
			case "Response":
			case "Assertion":
				assertions++
			case "EncryptedAssertion":
				assertions++
				shape.encrypted = true
			case "AudienceRestriction":
				inRestriction = true
				shape.restrictions = append(shape.restrictions, nil)
			case "Audience":
				inAudience = inRestriction
				audience.Reset()
			}
			if depth == 1 && t.Name.Local != "Response" {
				return nil, fmt.Errorf("the root element is %s, not a Response", t.Name.Local)
			}
		case xml.CharData:
			if inAudience {
				audience.Write(t)
			}
		case xml.EndElement:
			depth--
			switch t.Name.Local {
			case "AudienceRestriction":
				inRestriction = false
			case "Audience":
				if inAudience {
					last := len(shape.restrictions) - 1
					shape.restrictions[last] = append(shape.restrictions[last], strings.TrimSpace(audience.String()))
					inAudience = false
				}
			}
		}
	}
	if elements == 0 {
		return nil, errors.New("the response is empty")
	}
	if assertions != 1 {
		return nil, fmt.Errorf("the response has %d assertions, want exactly one", assertions)
	}
	return shape, nil
}

// responseShape is what checkResponseShape learnt of a response.
type responseShape struct {
	encrypted    bool       // the assertion is encrypted: its audiences were not seen
	restrictions [][]string // the audiences of each AudienceRestriction
}

// namesAudience reports whether every AudienceRestriction (there must be at
// least one) names audience among its Audience elements.
func namesAudience(restrictions [][]string, audience string) bool {
	if len(restrictions) == 0 {
		return false
	}
	for _, r := range restrictions {
		if !slices.Contains(r, audience) {
			return false
		}
	}
	return true
}

// parseResponse validates a decoded SAMLResponse for the login requestID:
// shape first, then crewjam/saml's checks (signatures, InResponseTo,
// Destination, Recipient, Audience, validity window), then what the Web
// SSO profile requires and the library lets pass: an audience naming us and
// a bearer subject confirmation. A panic in the library is a refusal.
func parseResponse(sp *saml.ServiceProvider, raw []byte, requestID string) (a *saml.Assertion, err error) {
	shape, err := checkResponseShape(raw)
	if err != nil {
		return nil, fmt.Errorf("assertion refused: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			a, err = nil, fmt.Errorf("assertion refused: the SAML library failed on it: %v", p)
		}
	}()
	a, err = sp.ParseXMLResponse(raw, []string{requestID}, sp.AcsURL)
	if err != nil {
		return nil, err
	}
	audience := sp.EntityID
	if audience == "" {
		audience = sp.MetadataURL.String()
	}
	restrictions := shape.restrictions
	if shape.encrypted && a.Conditions != nil {
		// Only the library saw inside: one Audience per restriction.
		restrictions = nil
		for _, ar := range a.Conditions.AudienceRestrictions {
			restrictions = append(restrictions, []string{ar.Audience.Value})
		}
	}
	if a.Conditions == nil || !namesAudience(restrictions, audience) {
		return nil, fmt.Errorf("assertion refused: AudienceRestriction does not name %q", audience)
	}
	if a.Subject == nil || !hasBearerConfirmation(a.Subject) {
		return nil, errors.New("assertion refused: no bearer SubjectConfirmation with data")
	}
	return a, nil
}

func hasBearerConfirmation(s *saml.Subject) bool {
	for _, sc := range s.SubjectConfirmations {
		if sc.Method == "urn:oasis:names:tc:SAML:2.0:cm:bearer" && sc.SubjectConfirmationData != nil {
			return true
		}
	}
	return false
}

// identity takes the email and groups out of an assertion.
func (sp *serviceProvider) identity(a *saml.Assertion) (string, []string) {
	var email string
	if sp.cfg.EmailAttribute == "" {
		if a.Subject != nil && a.Subject.NameID != nil {
			email = strings.TrimSpace(a.Subject.NameID.Value)
		}
	} else if vals := attributeValues(a, sp.cfg.EmailAttribute); len(vals) > 0 {
		email = strings.TrimSpace(vals[0])
	}
	groups := []string{}
	if sp.cfg.GroupsAttribute != "" {
		for _, g := range attributeValues(a, sp.cfg.GroupsAttribute) {
			if g = strings.TrimSpace(g); g != "" {
				groups = append(groups, g)
			}
		}
	}
	return email, groups
}

// attributeValues collects the values of every attribute whose Name or
// FriendlyName is name, across all attribute statements.
func attributeValues(a *saml.Assertion, name string) []string {
	var out []string
	for _, st := range a.AttributeStatements {
		for _, attr := range st.Attributes {
			if attr.Name != name && attr.FriendlyName != name {
				continue
			}
			for _, v := range attr.Values {
				out = append(out, v.Value)
			}
		}
	}
	return out
}

// setSessionCookie gives the browser the ConsoleMe cookie.
func (h *Handler) setSessionCookie(w http.ResponseWriter, r *http.Request, jwt string, exp time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:     h.CookieName,
		Value:    jwt,
		Path:     "/",
		Expires:  exp,
		MaxAge:   int(time.Until(exp).Seconds()),
		HttpOnly: true,
		Secure:   h.secure(r),
		SameSite: http.SameSiteLaxMode,
	})
}

// clearSessionCookie tells the browser to drop the ConsoleMe cookie.
func (h *Handler) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: h.CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
}

// secure reports whether cookies should be Secure: the site is https.
func (h *Handler) secure(r *http.Request) bool {
	if h.base != nil {
		return h.base.Scheme == "https"
	}
	return r.TLS != nil
}

// safeReturnPath allows only a local absolute path; anything else goes to /.
func safeReturnPath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") ||
		strings.ContainsAny(p, "\r\n\t\\") {
		return "/"
	}
	if u, err := url.Parse(p); err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return p
}

// decodeBase64Loose decodes standard base64, ignoring the line breaks and
// spaces some IdPs put into long values.
func decodeBase64Loose(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '\r', '\n', ' ', '\t':
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.DecodeString(s)
}

// randomID returns 128 random bits, base64url-encoded (22 characters).
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func loadCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", path)
		}
		if blk.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return cert, nil
		}
	}
}

// loadKey reads a PEM private key; the error never quotes the key.
func loadKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			return nil, fmt.Errorf("%s: no PEM private key block", path)
		}
		switch blk.Type {
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: invalid PKCS#1 key", path)
			}
			return k, nil
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: invalid SEC 1 key", path)
			}
			return k, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: invalid PKCS#8 key", path)
			}
			switch k := k.(type) {
			case *rsa.PrivateKey:
				return k, nil
			case *ecdsa.PrivateKey:
				return k, nil
			default:
				return nil, fmt.Errorf("%s: key type %T is not supported (want RSA or ECDSA)", path, k)
			}
		}
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}
