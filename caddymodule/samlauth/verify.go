package samlauth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crewjam/saml"
)

// ReplayGuard remembers consumed assertion IDs so that each is accepted
// once, across every instance that shares it. MarkOnce records key until
// expires and reports whether it was new; an error means the guard could
// not tell (e.g. its store is down). The store of caddymodule/store
// satisfies it.
type ReplayGuard interface {
	MarkOnce(ctx context.Context, key string, expires, now time.Time) (bool, error)
}

// Verify checks a decoded SAMLResponse posted to <base>/saml/acs for the
// login whose AuthnRequest had the ID requestID (taken back, once, from the
// relay state), consumes its assertion in replay, and returns who it logs
// in. In order:
//
//  1. requestID must not be empty: unsolicited (IdP-initiated) responses
//     are refused.
//  2. The shape pre-check, before any SAML parsing: no DTD, bounded depth
//     and size, a Response root, exactly one (possibly encrypted) assertion.
//  3. Decryption and rewriting (see prepareResponse): the Response must be
//     in the SAML protocol namespace; a signed Response has its signature
//     verified over the bytes as received before anything is decrypted; an
//     EncryptedAssertion is decrypted with the SP key (algorithms in
//     decryptAssertion; rsa-1_5 key transport only with AllowRSA15); the
//     copy handed to the library has one prefix per namespace.
//  4. The SAML library's checks on that copy: well-formed XML, signature of
//     the response or else of the assertion by a key in the IdP metadata
//     (verified on the original elements), Destination and Recipient naming
//     <base>/saml/acs, InResponseTo naming requestID, the issuers, a success
//     status and the validity window (IssueInstant, NotBefore,
//     NotOnOrAfter) within p's tolerances (see Provider.Tolerances). Every
//     AudienceRestriction names the SP's entity ID (all its Audiences are
//     read, for an encrypted assertion from the decrypted copy).
//  5. A bearer SubjectConfirmation with data.
//  6. The assertion ID is new: replay.MarkOnce(ctx, "assertion:"+ID, until,
//     now), where until is the assertion's Conditions NotOnOrAfter plus the
//     clock skew, or now plus twice the clock skew without one.
//  7. An email is present (see Identity).
//
// A panic of the SAML library on a hostile response is a refusal.
//
// A refused response gives a *Refusal. ErrNoMetadata (no IdP metadata yet)
// and a failing ReplayGuard (wrapped, so errors.Is finds its error) mean no
// decision was made: answer 503, the browser may start over later.
//
// now is this host's time for the replay bookkeeping. The validity window
// of step 4 is checked against the library's own process-wide clock
// (saml.TimeNow), which has no per-call setting.
func (p *Provider) Verify(ctx context.Context, raw []byte, base, requestID string, replay ReplayGuard, now time.Time) (*Identity, error) {
	if requestID == "" {
		return nil, refuse("no login in progress (IdP-initiated or missing RelayState)", MessageNotStarted)
	}
	sp, err := p.forBase(base)
	if err != nil {
		return nil, err
	}
	assertion, err := p.verifyAssertion(sp, raw, requestID)
	if err != nil {
		reason := err.Error()
		var ire *saml.InvalidResponseError
		if errors.As(err, &ire) && ire.PrivateErr != nil {
			reason = ire.PrivateErr.Error()
		}
		return nil, refuse(reason, MessageNotAccepted)
	}
	skew, _ := p.Tolerances()
	until := now.Add(2 * skew)
	if c := assertion.Conditions; c != nil && !c.NotOnOrAfter.IsZero() {
		until = c.NotOnOrAfter.Add(skew)
	}
	fresh, err := replay.MarkOnce(ctx, "assertion:"+assertion.ID, until, now)
	if err != nil {
		return nil, fmt.Errorf("recording the assertion ID: %w", err)
	}
	if !fresh {
		return nil, refuse("replayed assertion", MessageReplayed)
	}
	id := p.identity(assertion)
	if id.Email == "" {
		return nil, refuse("no email in the assertion", MessageNoEmail)
	}
	return id, nil
}

// verifyAssertion runs steps 2 to 5 of Verify and returns the assertion.
// Its errors are the reasons of the refusal; the library's are
// *saml.InvalidResponseError, whose PrivateErr says what failed.
func (p *Provider) verifyAssertion(sp *saml.ServiceProvider, raw []byte, requestID string) (a *saml.Assertion, err error) {
	if _, err := checkResponseShape(raw); err != nil {
		return nil, fmt.Errorf("assertion refused: %w", err)
	}
	defer func() {
		if r := recover(); r != nil {
			a, err = nil, fmt.Errorf("assertion refused: the SAML library failed on it: %v", r)
		}
	}()
	prepared, err := p.prepareResponse(sp, raw)
	if err != nil {
		return nil, err
	}
	// The rewritten copy shows the audiences of an encrypted assertion too.
	shape, err := checkResponseShape(prepared.xml)
	if err != nil {
		return nil, fmt.Errorf("assertion refused: %w", err)
	}
	sp.SignatureVerifier = prepared.checker
	a, err = sp.ParseXMLResponse(prepared.xml, []string{requestID}, sp.AcsURL)
	if err != nil {
		return nil, err
	}
	// The library checked the times with the widest tolerances of all.
	if err := p.checkWindow(prepared.issueInstant, a); err != nil {
		return nil, fmt.Errorf("assertion refused: %w", err)
	}
	audience := sp.EntityID
	if audience == "" {
		audience = sp.MetadataURL.String()
	}
	if a.Conditions == nil || !namesAudience(shape.restrictions, audience) {
		return nil, fmt.Errorf("assertion refused: AudienceRestriction does not name %q", audience)
	}
	if a.Subject == nil || !hasBearerConfirmation(a.Subject) {
		return nil, errors.New("assertion refused: no bearer SubjectConfirmation with data")
	}
	return a, nil
}

// bearerMethod is the SubjectConfirmation method of the Web SSO profile.
const bearerMethod = "urn:oasis:names:tc:SAML:2.0:cm:bearer"

// hasBearerConfirmation reports whether s has a bearer confirmation with
// SubjectConfirmationData (whose Recipient, InResponseTo and NotOnOrAfter
// the library checked).
func hasBearerConfirmation(s *saml.Subject) bool {
	for _, sc := range s.SubjectConfirmations {
		if sc.Method == bearerMethod && sc.SubjectConfirmationData != nil {
			return true
		}
	}
	return false
}
