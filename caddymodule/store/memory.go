package store

import (
	"container/heap"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// DefaultMaxPending is the bound NewMemory uses when it is given none.
const DefaultMaxPending = 10000

// sweepBatch is how many due entries one call drops at most on its way, so
// that a burst of expiries is spread over the following calls instead of
// stalling one of them. A call that needs room sweeps everything due.
const sweepBatch = 64

// compactSlack is how many stale queue items a table tolerates beyond twice
// its live entries before it rebuilds its queue.
const compactSlack = 1024

var (
	errClosed       = fmt.Errorf("%w: memory store is closed", ErrUnavailable)
	errNilChallenge = errors.New("storing challenge: nil challenge")
	errNilLogin     = errors.New("storing login: nil login state")
)

// Memory is the embedded Store: everything lives in the process, guarded by
// one mutex, so it suits a single Caddy instance. Each kind of state
// (challenges, SAML logins, MarkOnce keys) is bounded by maxPending entries.
//
// Expired state is dropped without scanning: each table keeps a min-heap of
// drop times, and calls that carry a time pop what is due. The times the
// callers pass in are the only clock, except for MarkOnce, which has no time
// parameter and uses the wall clock.
//
// A pending challenge costs about 160 bytes of heap with a million pending:
// a canonical uuid token is kept as its 16 bytes, and the challenge itself as
// one packed string (see record) of about 50 bytes.
//
// Times are kept as Unix nanoseconds, which is exact between the years 1678
// and 2262; the zero time is kept as such. Times come back in the local
// location, so compare them with time.Time.Equal.
type Memory struct {
	mu     sync.Mutex
	max    int
	closed bool

	// Challenges are split by the shape of their token: canonical
	// lowercase uuids (what the handler generates) are keyed by their 16
	// bytes, any other token by its string.
	uuids  table[uuidKey, record]
	others table[string, record]

	logins table[string, loginEntry]
	once   table[string, onceEntry]
}

// NewMemory returns an empty memory store holding at most maxPending
// challenges, maxPending logins and maxPending MarkOnce keys
// (DefaultMaxPending when maxPending <= 0). An expired challenge is still
// remembered, so that Poll answers PollExpired, until expiredGrace after its
// expiry; a negative grace counts as zero.
func NewMemory(maxPending int, expiredGrace time.Duration) *Memory {
	if maxPending <= 0 {
		maxPending = DefaultMaxPending
	}
	grace := max(int64(expiredGrace), 0)
	return &Memory{
		max:    maxPending,
		uuids:  newTable[uuidKey, record](grace),
		others: newTable[string, record](grace),
		logins: newTable[string, loginEntry](0),
		once:   newTable[string, onceEntry](0),
	}
}

// Create stores a copy of c under c.Token. It answers ErrExists when the
// token is taken and ErrFull when maxPending challenges are stored; c.Created
// serves as the current time for dropping what has outlived its grace.
func (m *Memory) Create(_ context.Context, c *Challenge) error {
	if c == nil {
		return errNilChallenge
	}
	ref := refOf(c.Token)
	created := nanos(c.Created)
	rec := packRecord(c)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	m.sweepChallenges(created, sweepBatch)
	if _, ok := m.lookup(ref, created); ok {
		return ErrExists
	}
	if m.challenges() >= m.max {
		m.sweepChallenges(created, -1)
		if m.challenges() >= m.max {
			return ErrFull
		}
	}
	if !ref.isUUID {
		// Do not retain whatever buffer the caller's token points into.
		ref.name = strings.Clone(ref.name)
	}
	m.add(ref, rec)
	return nil
}

// Get returns a copy of the challenge stored under token, or ErrNotFound.
func (m *Memory) Get(_ context.Context, token string) (*Challenge, error) {
	ref := refOf(token)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	rec, ok := m.lookup(ref, math.MinInt64)
	if !ok {
		return nil, ErrNotFound
	}
	return rec.challenge(token), nil
}

// View marks an unexpired challenge that was never viewed as viewed with
// nonce and returns a copy of it; see Store.View.
func (m *Memory) View(_ context.Context, token, nonce string, now time.Time) (*Challenge, error) {
	ref := refOf(token)
	t := nanos(now)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	m.sweepChallenges(t, sweepBatch)
	rec, ok := m.lookup(ref, t)
	switch {
	case !ok:
		return nil, ErrNotFound
	case t > rec.expires():
		return nil, ErrExpired
	case rec.flags()&flagViewed != 0:
		return nil, ErrAlreadyViewed
	}
	c := rec.challenge(token)
	c.Viewed = true
	c.Nonce = nonce
	m.update(ref, packRecord(c))
	return c, nil
}

// Approve marks a viewed, unexpired challenge as a success for approver with
// a copy of groups when nonce is the one View recorded; see Store.Approve.
// An empty recorded nonce never matches.
func (m *Memory) Approve(_ context.Context, token, nonce, approver string, groups []string, now time.Time) error {
	ref := refOf(token)
	t := nanos(now)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	m.sweepChallenges(t, sweepBatch)
	rec, ok := m.lookup(ref, t)
	if !ok {
		return ErrNotFound
	}
	if t > rec.expires() {
		return ErrExpired
	}
	c := rec.challenge(token)
	if !c.Viewed || c.Nonce == "" || subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(nonce)) != 1 {
		return ErrBadNonce
	}
	c.Status = StatusSuccess
	c.Approver = approver
	c.Groups = groups
	m.update(ref, packRecord(c))
	return nil
}

// Poll is the poller's atomic step; see Store.Poll. Only PollSuccess comes
// with a challenge, a copy of the one it has just deleted.
func (m *Memory) Poll(_ context.Context, token, ip string, checkIP bool, now time.Time) (PollOutcome, *Challenge, error) {
	ref := refOf(token)
	t := nanos(now)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return PollUnknown, nil, errClosed
	}
	m.sweepChallenges(t, sweepBatch)
	rec, ok := m.lookup(ref, t)
	switch {
	case !ok:
		return PollUnknown, nil, nil
	case t > rec.expires():
		m.remove(ref)
		return PollExpired, nil, nil
	case checkIP && !rec.hasIP(ip):
		return PollUnauthorized, nil, nil
	case rec.flags()&flagSuccess != 0:
		m.remove(ref)
		return PollSuccess, rec.challenge(token), nil
	}
	return PollPending, nil, nil
}

// SaveLogin stores a copy of l under id until expires, replacing any login
// saved under the same id. It answers ErrFull when maxPending logins are
// stored. l.Created (or the wall clock when it is zero) serves as the current
// time for dropping expired logins.
func (m *Memory) SaveLogin(_ context.Context, id string, l *LoginState, expires time.Time) error {
	if l == nil {
		return errNilLogin
	}
	now := l.Created
	if now.IsZero() {
		now = time.Now()
	}
	t := nanos(now)
	le := loginEntry{
		requestID:  strings.Clone(l.RequestID),
		returnPath: strings.Clone(l.ReturnPath),
		created:    nanos(l.Created),
		expires:    nanos(expires),
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	m.logins.sweep(t, sweepBatch)
	if _, ok := m.logins.m[id]; !ok && len(m.logins.m) >= m.max {
		m.logins.sweep(t, -1)
		if len(m.logins.m) >= m.max {
			return ErrFull
		}
	}
	m.logins.insert(strings.Clone(id), le)
	return nil
}

// TakeLogin returns and deletes the login state saved under id; it answers
// ErrNotFound when there is none or when it expired before now.
func (m *Memory) TakeLogin(_ context.Context, id string, now time.Time) (*LoginState, error) {
	t := nanos(now)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	m.logins.sweep(t, sweepBatch)
	le, ok := m.logins.m[id]
	if !ok {
		return nil, ErrNotFound
	}
	m.logins.remove(id)
	if t > le.expires {
		return nil, ErrNotFound
	}
	return &LoginState{
		RequestID:  le.requestID,
		ReturnPath: le.returnPath,
		Created:    unnanos(le.created),
	}, nil
}

// MarkOnce records key until expires and reports whether it was new, that
// is not recorded with an expiry at or after the current wall-clock time. A
// repeated key keeps the later of its two expiries. A key whose expires is
// already past is reported new and not recorded. It answers ErrFull when
// maxPending keys are recorded.
func (m *Memory) MarkOnce(_ context.Context, key string, expires time.Time) (bool, error) {
	t := nanos(time.Now())
	exp := onceEntry(nanos(expires))

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, errClosed
	}
	m.once.sweep(t, sweepBatch)
	if old, ok := m.once.m[key]; ok && int64(old) >= t {
		if exp > old {
			m.once.insert(strings.Clone(key), exp)
		}
		return false, nil
	}
	if int64(exp) < t {
		return true, nil
	}
	if _, ok := m.once.m[key]; !ok && len(m.once.m) >= m.max {
		m.once.sweep(t, -1)
		if len(m.once.m) >= m.max {
			return false, ErrFull
		}
	}
	m.once.insert(strings.Clone(key), exp)
	return true, nil
}

// Close forgets everything; every later call answers an error wrapping
// ErrUnavailable. Closing twice is harmless.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.uuids = table[uuidKey, record]{}
	m.others = table[string, record]{}
	m.logins = table[string, loginEntry]{}
	m.once = table[string, onceEntry]{}
	return nil
}

// challenges is the number of stored challenges, expired ones included.
// Len is the number of challenges held, expired ones not yet dropped
// included: what counts against the bound.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.challenges()
}

func (m *Memory) challenges() int { return len(m.uuids.m) + len(m.others.m) }

// sweepChallenges drops at most limit challenges (all if limit < 0) whose
// grace ended before now.
func (m *Memory) sweepChallenges(now int64, limit int) {
	n := m.uuids.sweep(now, limit)
	if limit >= 0 {
		limit = max(limit-n, 0)
	}
	m.others.sweep(now, limit)
}

// lookup finds the challenge ref names. One whose grace ended before now,
// but that no sweep has reached yet, is dropped and not found.
func (m *Memory) lookup(ref tokenRef, now int64) (record, bool) {
	if ref.isUUID {
		return m.uuids.get(ref.uuid, now)
	}
	return m.others.get(ref.name, now)
}

// add stores a new challenge and queues its drop.
func (m *Memory) add(ref tokenRef, rec record) {
	if ref.isUUID {
		m.uuids.insert(ref.uuid, rec)
	} else {
		m.others.insert(ref.name, rec)
	}
}

// update replaces a stored challenge by one with the same expiry.
func (m *Memory) update(ref tokenRef, rec record) {
	if ref.isUUID {
		m.uuids.m[ref.uuid] = rec
	} else {
		m.others.m[ref.name] = rec
	}
}

// remove deletes a stored challenge.
func (m *Memory) remove(ref tokenRef) {
	if ref.isUUID {
		m.uuids.remove(ref.uuid)
	} else {
		m.others.remove(ref.name)
	}
}

// record is a challenge packed into one immutable string, so that a pending
// challenge costs a map slot of a string header and a single allocation:
//
//	created   8 bytes, little-endian Unix nanoseconds (see nanos)
//	expires   8 bytes, likewise
//	flags     1 byte
//	user      uvarint length, bytes
//	ip        4 bytes if flagIPv4, else uvarint length, bytes
//	status    uvarint length, bytes; only if flagStatus
//	nonce     uvarint length, bytes; this and what follows only if flagExtra
//	approver  uvarint length, bytes
//	groups    uvarint count, then each as uvarint length, bytes
//
// A change makes a new record; strings decoded from a record share its bytes.
type record string

const (
	// flagViewed: the challenge was viewed.
	flagViewed = 1 << iota
	// flagSuccess: the status is StatusSuccess.
	flagSuccess
	// flagStatus: the status is neither pending nor success and is spelt out.
	flagStatus
	// flagIPv4: the IP is a dotted quad that netip formats back as given,
	// kept as its 4 bytes.
	flagIPv4
	// flagExtra: nonce, approver and groups follow.
	flagExtra
)

// recordHeader is the size of the fixed part of a record.
const recordHeader = 17

// packRecord packs c; the record shares no memory with c.
func packRecord(c *Challenge) record {
	var flags byte
	if c.Viewed {
		flags |= flagViewed
	}
	switch c.Status {
	case StatusPending:
	case StatusSuccess:
		flags |= flagSuccess
	default:
		flags |= flagStatus
	}
	ip4, isIP4 := parseIPv4(c.IP)
	size := recordHeader + strSize(c.User)
	if isIP4 {
		flags |= flagIPv4
		size += 4
	} else {
		size += strSize(c.IP)
	}
	if flags&flagStatus != 0 {
		size += strSize(string(c.Status))
	}
	if c.Nonce != "" || c.Approver != "" || len(c.Groups) > 0 {
		flags |= flagExtra
		size += strSize(c.Nonce) + strSize(c.Approver) + uvarintSize(uint64(len(c.Groups)))
		for _, g := range c.Groups {
			size += strSize(g)
		}
	}

	var b strings.Builder
	b.Grow(size)
	var buf [binary.MaxVarintLen64]byte
	b.Write(binary.LittleEndian.AppendUint64(buf[:0], uint64(nanos(c.Created))))
	b.Write(binary.LittleEndian.AppendUint64(buf[:0], uint64(nanos(c.Expires))))
	b.WriteByte(flags)
	writeStr := func(s string) {
		b.Write(binary.AppendUvarint(buf[:0], uint64(len(s))))
		b.WriteString(s)
	}
	writeStr(c.User)
	if isIP4 {
		b.Write(ip4[:])
	} else {
		writeStr(c.IP)
	}
	if flags&flagStatus != 0 {
		writeStr(string(c.Status))
	}
	if flags&flagExtra != 0 {
		writeStr(c.Nonce)
		writeStr(c.Approver)
		b.Write(binary.AppendUvarint(buf[:0], uint64(len(c.Groups))))
		for _, g := range c.Groups {
			writeStr(g)
		}
	}
	return record(b.String())
}

func (r record) created() int64 { return int64(r.uint64At(0)) }
func (r record) expires() int64 { return int64(r.uint64At(8)) }
func (r record) flags() byte    { return r[16] }

// deadline makes records storable in a table.
func (r record) deadline() int64 { return r.expires() }

func (r record) uint64At(i int) uint64 {
	var v uint64
	for j := 7; j >= 0; j-- {
		v = v<<8 | uint64(r[i+j])
	}
	return v
}

// hasIP reports whether the challenge was made from ip, compared as strings,
// without allocating.
func (r record) hasIP(ip string) bool {
	d := decoder{r: r, i: recordHeader}
	d.str() // user
	if r.flags()&flagIPv4 == 0 {
		return d.str() == ip
	}
	var buf [15]byte
	return string(d.ip4().AppendTo(buf[:0])) == ip
}

// challenge unpacks r as the challenge stored under token.
func (r record) challenge(token string) *Challenge {
	flags := r.flags()
	d := decoder{r: r, i: recordHeader}
	c := &Challenge{
		Token:   token,
		Created: unnanos(r.created()),
		Expires: unnanos(r.expires()),
		Status:  StatusPending,
		Viewed:  flags&flagViewed != 0,
		User:    d.str(),
	}
	if flags&flagIPv4 != 0 {
		c.IP = d.ip4().String()
	} else {
		c.IP = d.str()
	}
	switch {
	case flags&flagSuccess != 0:
		c.Status = StatusSuccess
	case flags&flagStatus != 0:
		c.Status = Status(d.str())
	}
	if flags&flagExtra != 0 {
		c.Nonce = d.str()
		c.Approver = d.str()
		if n := d.uvarint(); n > 0 {
			c.Groups = make([]string, n)
			for i := range c.Groups {
				c.Groups[i] = d.str()
			}
		}
	}
	return c
}

// decoder reads the variable part of a record. Records are only ever made
// by packRecord, so it does not check bounds beyond what Go does.
type decoder struct {
	r record
	i int
}

func (d *decoder) uvarint() uint64 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		b := d.r[d.i]
		d.i++
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v
		}
	}
}

func (d *decoder) str() string {
	n := int(d.uvarint())
	s := string(d.r[d.i : d.i+n])
	d.i += n
	return s
}

func (d *decoder) ip4() netip.Addr {
	a := netip.AddrFrom4([4]byte{d.r[d.i], d.r[d.i+1], d.r[d.i+2], d.r[d.i+3]})
	d.i += 4
	return a
}

// parseIPv4 returns the 4 bytes of s if s is an IPv4 address in exactly the
// form netip formats it, so that the bytes give s back.
func parseIPv4(s string) (b [4]byte, ok bool) {
	if len(s) > 15 {
		return b, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return b, false
	}
	var buf [15]byte
	if string(a.AppendTo(buf[:0])) != s {
		return b, false
	}
	return a.As4(), true
}

func strSize(s string) int { return uvarintSize(uint64(len(s))) + len(s) }

func uvarintSize(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// loginEntry is one stored SAML login.
type loginEntry struct {
	requestID  string
	returnPath string
	created    int64
	expires    int64
}

func (l loginEntry) deadline() int64 { return l.expires }

// onceEntry is the expiry of a MarkOnce key.
type onceEntry int64

func (o onceEntry) deadline() int64 { return int64(o) }

// uuidKey is a canonical uuid token in binary.
type uuidKey [16]byte

// tokenRef is a token resolved to the table that holds it.
type tokenRef struct {
	uuid   uuidKey
	isUUID bool
	name   string
}

// refOf resolves token: the canonical lowercase 8-4-4-4-12 hex form maps to
// its 16 bytes, and only that form, so distinct strings stay distinct keys.
func refOf(token string) tokenRef {
	if k, ok := parseUUID(token); ok {
		return tokenRef{uuid: k, isUUID: true}
	}
	return tokenRef{name: token}
}

// uuidHexAt are the offsets of the 16 hex pairs in a canonical uuid.
var uuidHexAt = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

func parseUUID(s string) (k uuidKey, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return k, false
	}
	for i, at := range uuidHexAt {
		hi, ok1 := lowerHex(s[at])
		lo, ok2 := lowerHex(s[at+1])
		if !ok1 || !ok2 {
			return k, false
		}
		k[i] = hi<<4 | lo
	}
	return k, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// nanos converts t to Unix nanoseconds, keeping the zero time apart and
// clamping times outside int64's range.
func nanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return math.MinInt64
	case t.Before(minTime):
		return math.MinInt64 + 1
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// unnanos is the inverse of nanos.
func unnanos(n int64) time.Time {
	if n == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

var (
	minTime = time.Unix(0, math.MinInt64+1)
	maxTime = time.Unix(0, math.MaxInt64)
)

// deadliner is a stored value with an expiry in Unix nanoseconds.
type deadliner interface{ deadline() int64 }

// table is a map whose entries are dropped some time after their deadline,
// tracked by a min-heap of drop times. The heap may hold stale items, for
// keys deleted or stored again since; an item only drops the entry whose
// drop time it carries.
type table[K comparable, V deadliner] struct {
	m     map[K]V
	q     dropQueue[K]
	grace int64
}

func newTable[K comparable, V deadliner](grace int64) table[K, V] {
	return table[K, V]{m: make(map[K]V), grace: grace}
}

// dropAt is when v is dropped: its deadline plus the grace.
func (t *table[K, V]) dropAt(v V) int64 {
	d := v.deadline()
	if d > math.MaxInt64-t.grace {
		return math.MaxInt64
	}
	return d + t.grace
}

// get returns the value under k unless its drop time is before now, in
// which case it is dropped. Pass math.MinInt64 to ignore drop times.
func (t *table[K, V]) get(k K, now int64) (V, bool) {
	v, ok := t.m[k]
	if ok && t.dropAt(v) < now {
		t.remove(k)
		var zero V
		return zero, false
	}
	return v, ok
}

// insert stores v under k and queues its drop.
func (t *table[K, V]) insert(k K, v V) {
	t.m[k] = v
	t.q.push(dropItem[K]{at: t.dropAt(v), key: k})
	t.compact()
}

// remove deletes k; its queue item becomes stale.
func (t *table[K, V]) remove(k K) {
	delete(t.m, k)
	t.compact()
}

// sweep pops at most limit queue items (all if limit < 0) whose drop time is
// before now, deleting the entries they still stand for, and returns how
// many items it popped.
func (t *table[K, V]) sweep(now int64, limit int) int {
	n := 0
	for len(t.q) > 0 && t.q[0].at < now && (limit < 0 || n < limit) {
		it := t.q.popMin()
		n++
		if v, ok := t.m[it.key]; ok && t.dropAt(v) == it.at {
			delete(t.m, it.key)
		}
	}
	return n
}

// compact rebuilds the queue from the map once stale items outnumber the
// live ones by far, so that keys deleted early cannot make it grow without
// bound. The cost is linear but amortised over as many deletions.
func (t *table[K, V]) compact() {
	if len(t.q) <= 2*len(t.m)+compactSlack {
		return
	}
	q := t.q[:0]
	if cap(q) > 4*(len(t.m)+compactSlack) {
		q = make(dropQueue[K], 0, 2*len(t.m)+compactSlack)
	} else {
		clear(t.q)
	}
	for k, v := range t.m {
		q = append(q, dropItem[K]{at: t.dropAt(v), key: k})
	}
	t.q = q
	heap.Init(&t.q)
}

// dropItem says that the entry under key is due to be dropped at at, if it
// is still the one that was queued.
type dropItem[K comparable] struct {
	at  int64
	key K
}

// dropQueue is a min-heap of drop items ordered by time.
type dropQueue[K comparable] []dropItem[K]

func (q dropQueue[K]) Len() int           { return len(q) }
func (q dropQueue[K]) Less(i, j int) bool { return q[i].at < q[j].at }
func (q dropQueue[K]) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }

// Push implements heap.Interface.
func (q *dropQueue[K]) Push(x any) { *q = append(*q, x.(dropItem[K])) }

// Pop implements heap.Interface.
func (q *dropQueue[K]) Pop() any {
	old := *q
	n := len(old) - 1
	it := old[n]
	old[n] = dropItem[K]{}
	*q = old[:n]
	return it
}

// push adds it without boxing it in an interface.
func (q *dropQueue[K]) push(it dropItem[K]) {
	*q = append(*q, it)
	heap.Fix(q, len(*q)-1)
}

// popMin removes and returns the earliest item without boxing it.
func (q *dropQueue[K]) popMin() dropItem[K] {
	old := *q
	n := len(old) - 1
	it := old[0]
	old[0] = old[n]
	old[n] = dropItem[K]{}
	*q = old[:n]
	if n > 0 {
		heap.Fix(q, 0)
	}
	return it
}

// Interface guards
var _ Store = (*Memory)(nil)
