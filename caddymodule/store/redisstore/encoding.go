package redisstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/consoleme-auth/caddy-consoleme-auth/caddymodule/store"
)

// maxTTL bounds the lifetime given to a key, far beyond any sensible
// challenge, so that absurd times cannot make Redis refuse the expiry.
const maxTTL = 100 * 365 * 24 * time.Hour

// Times are kept and passed to the scripts as Unix milliseconds (rounded
// down) and the nanoseconds below them. That keeps them exact while every
// part stays well inside the integers a Lua number holds, so the scripts
// compare times exactly as the memory store does.

// splitTime returns t as Unix milliseconds and the nanoseconds below them,
// which order times exactly when compared in turn.
func splitTime(t time.Time) (ms, ns int64) {
	return t.UnixMilli(), int64(t.Nanosecond() % int(time.Millisecond))
}

// joinTime is the inverse of splitTime.
func joinTime(ms, ns int64) time.Time {
	return time.UnixMilli(ms).Add(time.Duration(ns))
}

// ttlMillis is d in whole milliseconds, rounded up, at least 1 and at most
// maxTTL, as PEXPIRE accepts it.
func ttlMillis(d time.Duration) int64 {
	d = min(max(d, time.Millisecond), maxTTL)
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// encodeGroups is the "g" field of a challenge: a JSON list, or "" for none.
func encodeGroups(groups []string) (string, error) {
	if len(groups) == 0 {
		return "", nil
	}
	b, err := json.Marshal(groups)
	if err != nil {
		return "", fmt.Errorf("encoding groups: %w", err)
	}
	return string(b), nil
}

// fieldMap turns a script's flat list of fields and values into a map.
func fieldMap(fields []any) map[string]string {
	m := make(map[string]string, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		m[k] = v
	}
	return m
}

// fieldReader reads typed values out of a hash's fields, remembering the
// first malformed one.
type fieldReader struct {
	f   map[string]string
	err error
}

func (r *fieldReader) int(k string) int64 {
	v, ok := r.f[k]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("field %s: %w", k, err)
	}
	return n
}

// time reads the time kept in the fields ms and ns; the zero time when the
// fields are absent.
func (r *fieldReader) time(ms, ns string) time.Time {
	if _, ok := r.f[ms]; !ok {
		return time.Time{}
	}
	return joinTime(r.int(ms), r.int(ns))
}

// decodeChallenge decodes the challenge stored under token from its hash
// fields (see scripts.go for the layout).
func decodeChallenge(token string, f map[string]string) (*store.Challenge, error) {
	r := fieldReader{f: f}
	c := &store.Challenge{
		Token:    token,
		User:     f["u"],
		IP:       f["ip"],
		Status:   store.Status(f["s"]),
		Viewed:   f["v"] == "1",
		Nonce:    f["n"],
		Approver: f["a"],
		Created:  r.time("c", "cn"),
		Expires:  r.time("e", "en"),
		AuthTime: r.time("t", "tn"),
	}
	if g := f["g"]; g != "" && r.err == nil {
		if err := json.Unmarshal([]byte(g), &c.Groups); err != nil {
			r.err = fmt.Errorf("field g: %w", err)
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("redis store: %w: corrupt challenge: %w", store.ErrUnavailable, r.err)
	}
	return c, nil
}

// decodeLogin decodes a login state and its expiry from its hash fields
// (see login_scripts.go for the layout).
func decodeLogin(f map[string]string) (*store.LoginState, time.Time, error) {
	r := fieldReader{f: f}
	l := &store.LoginState{
		RequestID:  f["r"],
		ReturnPath: f["p"],
		Client:     f["k"],
		Created:    r.time("c", "cn"),
	}
	expires := r.time("e", "en")
	if r.err != nil {
		return nil, time.Time{}, fmt.Errorf("redis store: %w: corrupt login state: %w", store.ErrUnavailable, r.err)
	}
	return l, expires, nil
}

// timeArgs appends t to args as the scripts take it: milliseconds, then
// nanoseconds.
func timeArgs(args []any, t time.Time) []any {
	ms, ns := splitTime(t)
	return append(args, ms, ns)
}
