package oidcauth

import "github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/internal/refusal"

// Refusal is Exchange's answer to a callback it does not accept: the
// provider refused or the user cancelled, the callback answers no login
// started here, the code is replayed or was not issued to this client, or
// the ID token is forged, expired, meant for another client or lacks what
// a login needs (see package refusal).
type Refusal = refusal.Refusal

// The Messages of the refusals.
const (
	// MessageNotStarted: the callback answers no login started here, or
	// comes back with another login's state.
	MessageNotStarted = "This sign-in was not started here. Open the challenge link from your terminal again."
	// MessageProviderError: the provider answered the authorization
	// request with an error, e.g. the user cancelled.
	MessageProviderError = "The identity provider did not sign you in. Start again, or ask your administrator if it keeps failing."
	// MessageCodeRejected: the token endpoint refused the code (already
	// used, expired, PKCE mismatch) or the client.
	MessageCodeRejected = "The identity provider refused to complete this sign-in; it may have been used already. Start again."
	// MessageNotAccepted: the ID token or userinfo failed a check.
	MessageNotAccepted = "The identity provider's answer was not accepted. Ask your administrator to check the server log."
	// MessageNoEmail: no email for the user.
	MessageNoEmail = "The identity provider sent no email address for you. Ask your administrator to check email_claim."
	// MessageEmailNotVerified: the provider says the email is not verified.
	MessageEmailNotVerified = "The identity provider says your email address is not verified."
)

// refuse makes a Refusal.
func refuse(reason, message string) *Refusal {
	return &Refusal{Reason: reason, Message: message}
}
