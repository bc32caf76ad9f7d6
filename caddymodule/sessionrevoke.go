package consolemeauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// maxSessionsPerUser bounds the sessions recorded per user (the sessions
// page lists them); beyond it the oldest record is dropped. A dropped
// record's token still works until it expires, and "sign out everywhere
// else" still ends it (it revokes by sign-in time, not by record).
const maxSessionsPerUser = 50

// recordTimeout bounds the store write that records a new session.
const recordTimeout = 2 * time.Second

// newSessionID returns a random session id (128 bits, base64url).
func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validSessionID reports whether id can be one of ours.
func validSessionID(id string) bool {
	if len(id) != 22 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil
}

// record stores a live session for the sessions page. A failure is logged
// and does not fail the sign-in: the session is still revocable by id.
func (s *sessions) record(r *http.Request, ss *store.Session, now time.Time) {
	if s.records == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), recordTimeout)
	defer cancel()
	if err := s.records.RecordSession(ctx, ss, maxSessionsPerUser, now); err != nil {
		s.logger.Warn("recording a session failed; it is still revocable, but not listed", zap.String("user", ss.User), zap.Error(err))
	}
}

// How a revocation was made, in the audit line and the metric label.
const (
	revokedByLogout   = "logout"
	revokedByAdmin    = "admin"
	revokedBySessions = "sessions_page"
)

// revocationFor returns how long a revocation must be kept: until every
// token it can concern has expired.
func (h *Handler) revocationFor(now time.Time) time.Time {
	longest := time.Duration(h.JWTExpiration)
	if h.MTLS != nil && time.Duration(h.MTLS.TokenLifetime) > longest {
		longest = time.Duration(h.MTLS.TokenLifetime)
	}
	return now.Add(longest + time.Minute)
}

// revoke stores a revocation and enforces it on this instance at once,
// even when the store cannot be reached (the error is returned then, and
// the other instances learn of it only if it was stored).
func (h *Handler) revoke(ctx context.Context, rv store.Revocation, by string, fields ...zap.Field) error {
	h.sessions.revoked.Apply(rv)
	metrics.revoked.WithLabelValues(by).Inc()
	h.logger.Info("sessions revoked", append([]zap.Field{zap.String("kind", rv.Kind), zap.String("subject", rv.Subject),
		zap.String("by", by), zap.Time("at", rv.At)}, fields...)...)
	if err := h.sessions.records.Revoke(ctx, rv, rv.At); err != nil {
		return fmt.Errorf("storing the revocation: %w", err)
	}
	return nil
}

// revokeSession ends one session everywhere.
func (h *Handler) revokeSession(ctx context.Context, id, by string, now time.Time, fields ...zap.Field) error {
	return h.revoke(ctx, store.Revocation{Kind: store.RevokeSession, Subject: id, At: now, Expires: h.revocationFor(now)},
		by, fields...)
}

// revokeUser ends every session of user begun before now, but except
// (when set). The sessions begun in the same second before now are revoked
// by id too, since a token's auth_time is a whole second.
func (h *Handler) revokeUser(ctx context.Context, user, except, by string, now time.Time, fields ...zap.Field) error {
	// Listed first: the user's revocation drops the records it ends.
	list, lerr := h.sessions.records.ListSessions(ctx, user, now)
	err := h.revoke(ctx, store.Revocation{Kind: store.RevokeUser, Subject: user, At: now, Expires: h.revocationFor(now), Except: except},
		by, fields...)
	if lerr != nil {
		return errors.Join(err, fmt.Errorf("listing the sessions begun in the second of the revocation: %w", lerr))
	}
	for _, ss := range list {
		if ss.ID != except && !ss.Created.Before(now.Truncate(time.Second)) && ss.Created.Before(now) {
			err = errors.Join(err, h.revokeSession(ctx, ss.ID, by, now))
		}
	}
	return err
}

// block refuses user every new token until now+d.
func (h *Handler) block(ctx context.Context, user, by string, now time.Time, d time.Duration) error {
	return h.revoke(ctx, store.Revocation{Kind: store.RevokeBlock, Subject: user, At: now, Expires: now.Add(d)}, by)
}

// unblock lifts a block.
func (h *Handler) unblock(ctx context.Context, user, by string, now time.Time) error {
	h.sessions.revoked.Unblock(user)
	h.logger.Info("block lifted", zap.String("user", user), zap.String("by", by))
	if err := h.sessions.records.Unblock(ctx, user, now); err != nil {
		return fmt.Errorf("storing the unblock: %w", err)
	}
	return nil
}
