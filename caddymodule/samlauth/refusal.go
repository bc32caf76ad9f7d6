package samlauth

import "github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/internal/refusal"

// Refusal is Verify's answer to a SAML response it does not accept: the
// response is forged, tampered with, meant for someone else, stale,
// replayed or lacks what a login needs (see package refusal).
type Refusal = refusal.Refusal

// The Messages of the refusals.
const (
	// MessageNotStarted: the response answers no login started here.
	MessageNotStarted = "This sign-in was not started here. Open the challenge link from your terminal again."
	// MessageNotAccepted: the response failed a check.
	MessageNotAccepted = "The identity provider's answer was not accepted. Ask your administrator to check the server log."
	// MessageReplayed: the assertion was already used.
	MessageReplayed = "This SAML response was already used."
	// MessageNoEmail: the assertion names no email address.
	MessageNoEmail = "The identity provider sent no email address for you. Ask your administrator to check email_attribute."
)

// refuse makes a Refusal.
func refuse(reason, message string) *Refusal {
	return &Refusal{Reason: reason, Message: message}
}
