package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// Create stores c as a new challenge whose key lives until c.Expires plus
// the grace, counted from now; an empty c.Token is set to a new uuid4. It
// answers store.ErrExists when the token is taken, and store.ErrFull when
// Redis is out of memory.
func (s *Store) Create(ctx context.Context, c *store.Challenge, now time.Time) error {
	if c == nil {
		return errors.New("redis store: create: nil challenge")
	}
	if c.Token == "" {
		c.Token = uuid.NewString()
	}
	args := make([]any, 0, 27)
	args = append(args, ttlMillis(c.Expires.Add(s.grace).Sub(now)),
		"u", c.User, "ip", c.IP, "s", string(c.Status))
	args = appendTime(args, "c", "cn", c.Created)
	args = appendTime(args, "e", "en", c.Expires)
	if c.Viewed {
		args = append(args, "v", "1")
	}
	if c.Nonce != "" {
		args = append(args, "n", c.Nonce)
	}
	if c.Approver != "" {
		args = append(args, "a", c.Approver)
	}
	g, err := encodeGroups(c.Groups)
	if err != nil {
		return fmt.Errorf("redis store: create: %w", err)
	}
	if g != "" {
		args = append(args, "g", g)
	}
	if !c.AuthTime.IsZero() {
		args = appendTime(args, "t", "tn", c.AuthTime)
	}
	n, err := s.creates.run(ctx, s.keys.challenge(c.Token), args)
	switch {
	case outOfMemory(err):
		return fmt.Errorf("redis store: create: %w: redis is out of memory", store.ErrFull)
	case err != nil:
		return unavailable("create", err)
	case n == 0:
		return store.ErrExists
	}
	return nil
}

// Get returns the challenge stored under token, or store.ErrNotFound once
// its grace is over at now.
func (s *Store) Get(ctx context.Context, token string, now time.Time) (*store.Challenge, error) {
	res, err := getScript.Run(ctx, s.rdb, []string{s.keys.challenge(token)}, s.clock(now, 0)...).Result()
	if err != nil {
		return nil, unavailable("get", err)
	}
	if fields, ok := res.([]any); ok {
		return decodeChallenge(token, fieldMap(fields))
	}
	if code(res) == codeNotFound {
		return nil, store.ErrNotFound
	}
	return nil, unexpected("get", res)
}

// View marks an unexpired challenge that was never viewed as viewed with
// nonce and returns it; see store.Store.
func (s *Store) View(ctx context.Context, token, nonce string, now time.Time) (*store.Challenge, error) {
	args := append(s.clock(now, 1), nonce)
	res, err := viewScript.Run(ctx, s.rdb, []string{s.keys.challenge(token)}, args...).Result()
	if err != nil {
		return nil, unavailable("view", err)
	}
	if fields, ok := res.([]any); ok {
		return decodeChallenge(token, fieldMap(fields))
	}
	switch code(res) {
	case codeNotFound:
		return nil, store.ErrNotFound
	case codeExpired:
		return nil, store.ErrExpired
	case codeRefused:
		return nil, store.ErrAlreadyViewed
	}
	return nil, unexpected("view", res)
}

// Approve marks a viewed, unexpired, pending challenge as a success for a
// when nonce is the one View recorded; see store.Store. A wrong nonce is
// reported as such even when the challenge is approved already.
func (s *Store) Approve(ctx context.Context, token, nonce string, a store.Approval, now time.Time) error {
	g, err := encodeGroups(a.Groups)
	if err != nil {
		return fmt.Errorf("redis store: approve: %w", err)
	}
	args := append(s.clock(now, 5), nonce, a.Approver, g)
	args = timeArgs(args, a.AuthTime)
	res, err := approveScript.Run(ctx, s.rdb, []string{s.keys.challenge(token)}, args...).Result()
	if err != nil {
		return unavailable("approve", err)
	}
	switch code(res) {
	case codeNotFound:
		return store.ErrNotFound
	case codeExpired:
		return store.ErrExpired
	case codeRefused:
		return store.ErrBadNonce
	case codeAlreadyApproved:
		return store.ErrAlreadyApproved
	case codeDone:
		return nil
	}
	return unexpected("approve", res)
}

// Cancel deletes the challenge stored under token, expired or not, unless
// its grace is over at now; see store.Store.
func (s *Store) Cancel(ctx context.Context, token string, now time.Time) error {
	res, err := cancelScript.Run(ctx, s.rdb, []string{s.keys.challenge(token)}, s.clock(now, 0)...).Result()
	if err != nil {
		return unavailable("cancel", err)
	}
	switch code(res) {
	case codeNotFound:
		return store.ErrNotFound
	case codeDone:
		return nil
	}
	return unexpected("cancel", res)
}

// Poll is the poller's atomic step; see store.Store. Only PollSuccess comes
// with a challenge, the one it has just taken. Unless ReplicaAcks is off,
// the success is handed out only once replicas have acknowledged that it is
// taken (see ack.go).
func (s *Store) Poll(ctx context.Context, token, ip string, checkIP bool, now time.Time) (store.PollOutcome, *store.Challenge, error) {
	check := "0"
	if checkIP {
		check = "1"
	}
	key := s.keys.challenge(token)
	args := append(s.clock(now, 6), ip, check)
	if s.acks != ReplicaAcksOff {
		return s.pollAcked(ctx, token, key, args, now)
	}
	res, err := pollScript.Run(ctx, s.rdb, []string{key}, append(args, ReplicaAcksOff, "", s.staleClaim())...).Result()
	if err != nil {
		return store.PollUnknown, nil, unavailable("poll", err)
	}
	out, c, _, err := pollOutcome(token, res)
	return out, c, err
}

// pollOutcome reads pollScript's reply, with the number of replica
// acknowledgements a claimed success waits for (0 when it was deleted).
func pollOutcome(token string, res any) (store.PollOutcome, *store.Challenge, int, error) {
	if fields, ok := res.([]any); ok {
		f := fieldMap(fields)
		c, err := decodeChallenge(token, f)
		if err != nil {
			return store.PollUnknown, nil, 0, err
		}
		c.Status = store.StatusSuccess // also when a claim was taken over
		need := 0
		if w, ok := f["w"]; ok {
			if need, err = strconv.Atoi(w); err != nil || need < 1 {
				return store.PollUnknown, nil, 0, unexpected("poll", res)
			}
		}
		return store.PollSuccess, c, need, nil
	}
	switch code(res) {
	case codeNotFound:
		return store.PollUnknown, nil, 0, nil
	case codeExpired:
		return store.PollExpired, nil, 0, nil
	case codeRefused:
		return store.PollUnauthorized, nil, 0, nil
	case codeDone:
		return store.PollPending, nil, 0, nil
	}
	return store.PollUnknown, nil, 0, unexpected("poll", res)
}

// clock returns the challenge scripts' first arguments: now, and now minus
// the grace (see prelude), with room for extra more.
func (s *Store) clock(now time.Time, extra int) []any {
	args := make([]any, 0, 4+extra)
	args = timeArgs(args, now)
	return timeArgs(args, now.Add(-s.grace))
}

// appendTime appends the fields msField and nsField holding t to a hash's
// fields and values.
func appendTime(args []any, msField, nsField string, t time.Time) []any {
	ms, ns := splitTime(t)
	return append(args, msField, ms, nsField, ns)
}
