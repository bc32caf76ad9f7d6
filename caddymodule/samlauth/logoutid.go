package samlauth

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// LogoutRequest IDs
//
// A LogoutResponse is accepted only in answer to a LogoutRequest this SP
// made: its InResponseTo must be an ID that Logout issued less than
// LogoutRoundTrip ago. The IDs carry their own proof, so that no state is
// kept and any instance sharing sp_key (which every instance of one SP
// does: the IdP encrypts to it) recognises them: "_", then in hex a
// 12-byte random nonce, the issue time in Unix seconds (8 bytes) and the
// first 16 bytes of an HMAC-SHA256 of both, keyed with a key derived from
// sp_key. An ID is not single-use: the IdP's signed answer to one logout
// could be replayed to this SP's /saml/slo within LogoutRoundTrip, which
// signs out whoever follows it (as a link to /logout would, after the
// confirmation page).

// LogoutRoundTrip is how long after a LogoutRequest its LogoutResponse is
// accepted.
const LogoutRoundTrip = 10 * time.Minute

// logoutIDLen is the length of the decoded ID: nonce, time, MAC.
const logoutIDLen = 12 + 8 + 16

// logoutIDKey derives the key of the logout request IDs from the SP key.
func logoutIDKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("sp_key: %w", err)
	}
	m := hmac.New(sha256.New, []byte("caddy-consoleme-auth SAML LogoutRequest ID"))
	m.Write(der)
	return m.Sum(nil), nil
}

// newLogoutID is a fresh LogoutRequest ID issued at now.
func (p *Provider) newLogoutID(now time.Time) string {
	var b [logoutIDLen]byte
	_, _ = rand.Read(b[:12])
	binary.BigEndian.PutUint64(b[12:20], uint64(now.Unix()))
	copy(b[20:], p.logoutMAC(b[:20]))
	return "_" + hex.EncodeToString(b[:])
}

// logoutMAC is the MAC of a logout ID's nonce and time.
func (p *Provider) logoutMAC(nonceTime []byte) []byte {
	m := hmac.New(sha256.New, p.logoutKey)
	m.Write(nonceTime)
	return m.Sum(nil)[:16]
}

// checkLogoutID checks that id is a LogoutRequest ID p issued (with this
// sp_key) less than LogoutRoundTrip before now, allowing skew either way.
func (p *Provider) checkLogoutID(id string, now time.Time, skew time.Duration) error {
	if id == "" {
		return errors.New("no InResponseTo: not the answer to a LogoutRequest of this SP")
	}
	b, err := hex.DecodeString(id[1:])
	if id[0] != '_' || err != nil || len(b) != logoutIDLen || !hmac.Equal(b[20:], p.logoutMAC(b[:20])) {
		return errors.New("InResponseTo does not name a LogoutRequest of this SP")
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(b[12:20])), 0)
	if issued.After(now.Add(skew)) || now.After(issued.Add(LogoutRoundTrip+skew)) {
		return fmt.Errorf("InResponseTo names a LogoutRequest of %s, not within the last %s", issued.UTC().Format(time.RFC3339), LogoutRoundTrip)
	}
	return nil
}
