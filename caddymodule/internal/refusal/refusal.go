// Package refusal is the error type with which the sign-in packages
// (samlauth, oidcauth) refuse what an identity provider, or somebody
// pretending to be one, sent: a reason for the log and a message for the
// user, kept apart so that the log's detail never reaches the browser.
package refusal

// Refusal is a refused sign-in. The browser should see a "sign-in failed"
// page (403) with Message; the log gets Reason.
type Refusal struct {
	// Reason says for the log why the sign-in was refused, and may name
	// details (IDs, URLs, claims, the library's own diagnosis). Do not show
	// it to the user.
	Reason string

	// Message is a sentence that is safe to show the user.
	Message string
}

// Error returns the Reason.
func (r *Refusal) Error() string { return r.Reason }
