package store

import (
	"encoding/hex"
	"slices"
	"time"
)

// challengeTable holds the memory store's challenges in a layout the garbage
// collector does not have to read: a benchmark or a busy site keeps millions
// of pending challenges alive, and with a pointer or a string in each, every
// collection cycle walked all of them. Here a challenge is a record without
// pointers in one slice, found through maps whose keys and values hold no
// pointers either; its user, IP and status are numbers in an interned set of
// strings (a site has few distinct ones), and what only the approval page
// sets lives apart, for the few challenges that have it.
//
// Records are dropped once their grace after expiry is over: swept in the
// order they were stored (challenges share one time to live, so that is
// their expiry order), and when looked up.
type challengeTable struct {
	max   int
	grace time.Duration
	count int

	pages []*page // the records, in pages so that growing never copies them
	slots uint32  // slots in use or free in the pages
	free  []uint32
	byID  map[[16]byte]uint32 // canonical uuid tokens, as the generator makes them
	strs  *interned           // users, IPs and statuses
	order []queued            // the records in the order stored; stale items are skipped

	// Tokens that are not canonical uuids, and the fields set after
	// creation, are kept by record number.
	byName map[string]uint32
	names  map[uint32]string
	extras map[uint32]*extra

	// soonest is no later than any record's drop time: a full scan before
	// it cannot free anything.
	soonest stamp
}

// pageSize is the number of records in a page.
const pageSize = 1024

// page is a block of records; with no pointers in it, the garbage collector
// does not read it.
type page [pageSize]record

// record is one challenge, or a free slot: 64 bytes, one cache line.
type record struct {
	id                  [16]byte
	createdSec          int64
	expiresSec          int64
	createdNsec         int32
	expiresNsec         int32
	user, ip, status    uint32
	gen                 uint32 // counts the slot's reuses, so that stale queue items are known
	live, named, viewed bool
}

func (r *record) created() stamp { return stamp{r.createdSec, r.createdNsec} }
func (r *record) expires() stamp { return stamp{r.expiresSec, r.expiresNsec} }

// rec returns the record in slot.
func (t *challengeTable) rec(slot uint32) *record { return &t.pages[slot/pageSize][slot%pageSize] }

// extra is what View and Approve add to a challenge.
type extra struct {
	nonce, approver string
	groups          []string
	authTime        time.Time
}

// queued is a record in the drop queue, as it was when queued.
type queued struct{ slot, gen uint32 }

// stamp is an instant without location or monotonic reading; it keeps every
// instant a time.Time can name, the zero time included.
type stamp struct {
	sec  int64
	nsec int32
}

func stampOf(t time.Time) stamp { return stamp{sec: t.Unix(), nsec: int32(t.Nanosecond())} }

func (s stamp) time() time.Time { return time.Unix(s.sec, int64(s.nsec)) }

func (s stamp) after(o stamp) bool { return s.sec > o.sec || s.sec == o.sec && s.nsec > o.nsec }

func newChallengeTable(maxEntries int, grace time.Duration) *challengeTable {
	return &challengeTable{
		max:    maxEntries,
		grace:  grace,
		byID:   make(map[[16]byte]uint32),
		strs:   newInterned(),
		byName: make(map[string]uint32),
		names:  make(map[uint32]string),
		extras: make(map[uint32]*extra),
	}
}

// uuidHex is where the 16 bytes of a canonical uuid start in its text.
var uuidHex = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// tokenKey is how the table finds a token: by its bytes when it is written
// as the generator writes a uuid (lowercase, hyphenated), by name
// otherwise, so that two distinct tokens never share a key.
type tokenKey struct {
	id     [16]byte
	isUUID bool
	name   string
}

// keyOf returns the key of tok.
func keyOf(tok string) tokenKey {
	if id, ok := uuidKey(tok); ok {
		return tokenKey{id: id, isUUID: true}
	}
	return tokenKey{name: tok}
}

// hexValue is the value of each lowercase hex digit, 0xff for other bytes.
var hexValue = func() (v [256]byte) {
	for i := range v {
		v[i] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		v[c] = byte(i)
	}
	return v
}()

// uuidKey returns the 16 bytes of a token written as the generator writes
// a uuid.
func uuidKey(tok string) (id [16]byte, ok bool) {
	if len(tok) != 36 || tok[8] != '-' || tok[13] != '-' || tok[18] != '-' || tok[23] != '-' {
		return id, false
	}
	bad := byte(0)
	for j, i := range uuidHex {
		hi, lo := hexValue[tok[i]], hexValue[tok[i+1]]
		bad |= hi | lo
		id[j] = hi<<4 | lo
	}
	return id, bad <= 15
}

// dropAt is when r is dropped: its grace after expiry is over.
func (t *challengeTable) dropAt(r *record) stamp {
	d := stamp{sec: r.expiresSec + int64(t.grace/time.Second), nsec: r.expiresNsec + int32(t.grace%time.Second)}
	if d.nsec >= int32(time.Second) {
		d.sec++
		d.nsec -= int32(time.Second)
	}
	return d
}

// due reports whether r is to be dropped at now.
func (t *challengeTable) due(r *record, now stamp) bool { return now.after(t.dropAt(r)) }

// lookup returns the slot of the record stored under tok, dropping it if
// it is due at now.
func (t *challengeTable) lookup(tok string, now time.Time) (uint32, bool) {
	return t.find(keyOf(tok), now)
}

// find returns the slot of the record stored under k, dropping it if it is
// due at now.
func (t *challengeTable) find(k tokenKey, now time.Time) (uint32, bool) {
	var (
		slot uint32
		ok   bool
	)
	if k.isUUID {
		slot, ok = t.byID[k.id]
	} else {
		slot, ok = t.byName[k.name]
	}
	if ok && t.due(t.rec(slot), stampOf(now)) {
		t.remove(slot)
		t.compact()
		return 0, false
	}
	return slot, ok
}

// sweep drops the records due at now from the front of the queue.
func (t *challengeTable) sweep(now time.Time) {
	at := stampOf(now)
	for len(t.order) > 0 {
		q := t.order[0]
		live := t.current(q)
		if live && !t.due(t.rec(q.slot), at) {
			return
		}
		t.order = t.order[1:]
		if live {
			t.remove(q.slot)
		}
	}
}

// hasRoom reports whether one more record fits at now. When the table is
// full it first drops every due record, wherever it is in the queue.
func (t *challengeTable) hasRoom(now time.Time) bool {
	if t.count < t.max {
		return true
	}
	at := stampOf(now)
	if !at.after(t.soonest) {
		return false
	}
	var soonest stamp
	first := true
	for i := range t.slots {
		r := t.rec(i)
		switch {
		case !r.live:
		case t.due(r, at):
			t.remove(i)
		case first || soonest.after(t.dropAt(r)):
			soonest, first = t.dropAt(r), false
		}
	}
	t.soonest = soonest
	t.compact()
	return t.count < t.max
}

// put stores c under k, the key of its token; the caller has checked that
// the token is free and that there is room.
func (t *challengeTable) put(k tokenKey, c *Challenge) {
	var slot uint32
	if k := len(t.free); k > 0 {
		slot = t.free[k-1]
		t.free = t.free[:k-1]
	} else {
		slot = t.slots
		if slot%pageSize == 0 {
			t.pages = append(t.pages, new(page))
		}
		t.slots++
	}
	r := t.rec(slot)
	created, expires := stampOf(c.Created), stampOf(c.Expires)
	*r = record{
		createdSec: created.sec, createdNsec: created.nsec, expiresSec: expires.sec, expiresNsec: expires.nsec,
		user: t.strs.add(c.User), ip: t.strs.add(c.IP), status: t.strs.add(string(c.Status)),
		gen: r.gen, live: true, viewed: c.Viewed,
	}
	if k.isUUID {
		r.id = k.id
		t.byID[k.id] = slot
	} else {
		r.named = true
		t.byName[c.Token] = slot
		t.names[slot] = c.Token
	}
	if c.Viewed || c.Nonce != "" || c.Approver != "" || len(c.Groups) > 0 || !c.AuthTime.IsZero() {
		t.extras[slot] = &extra{nonce: c.Nonce, approver: c.Approver, groups: slices.Clone(c.Groups), authTime: c.AuthTime}
	}
	t.count++
	t.order = append(t.order, queued{slot: slot, gen: r.gen})
	if d := t.dropAt(r); t.count == 1 || t.soonest.after(d) {
		t.soonest = d
	}
	t.compact()
}

// load returns a copy of the challenge in slot.
func (t *challengeTable) load(slot uint32) Challenge {
	r := t.rec(slot)
	c := Challenge{
		User:    t.strs.get(r.user),
		IP:      t.strs.get(r.ip),
		Status:  Status(t.strs.get(r.status)),
		Created: r.created().time(),
		Expires: r.expires().time(),
		Viewed:  r.viewed,
	}
	if r.named {
		c.Token = t.names[slot]
	} else {
		c.Token = formatUUID(r.id)
	}
	if x := t.extras[slot]; x != nil {
		c.Nonce, c.Approver, c.Groups, c.AuthTime = x.nonce, x.approver, slices.Clone(x.groups), x.authTime
	}
	return c
}

// extra returns what View and Approve set on slot, made empty if need be.
func (t *challengeTable) extra(slot uint32) *extra {
	x := t.extras[slot]
	if x == nil {
		x = &extra{}
		t.extras[slot] = x
	}
	return x
}

// setStatus records s as the status of slot.
func (t *challengeTable) setStatus(slot uint32, s Status) {
	r := t.rec(slot)
	t.strs.release(r.status)
	r.status = t.strs.add(string(s))
}

// delete drops the record in slot.
func (t *challengeTable) delete(slot uint32) {
	t.remove(slot)
	t.compact()
}

// remove frees slot; its queue item becomes stale.
func (t *challengeTable) remove(slot uint32) {
	r := t.rec(slot)
	if r.named {
		delete(t.byName, t.names[slot])
		delete(t.names, slot)
	} else {
		delete(t.byID, r.id)
	}
	delete(t.extras, slot)
	t.strs.release(r.user)
	t.strs.release(r.ip)
	t.strs.release(r.status)
	*r = record{gen: r.gen + 1}
	t.free = append(t.free, slot)
	t.count--
}

// compact drops the stale items of the queue once they outnumber the live
// ones by far, so that records deleted early cannot make it grow without
// bound; and once most slots or strings are free, it lays the table out
// again, so that the memory of a burst goes back. The cost is linear but
// amortised over as many deletions.
func (t *challengeTable) compact() {
	if int(t.slots) > 4*(t.count+compactSlack) || len(t.strs.vals) > 4*(t.strs.len()+compactSlack) {
		t.rebuild()
		return
	}
	if len(t.order) <= 2*t.count+compactSlack {
		return
	}
	t.order = slices.DeleteFunc(t.order, func(q queued) bool { return !t.current(q) })
	if cap(t.order) > 4*(len(t.order)+compactSlack) {
		t.order = slices.Clone(t.order)
	}
}

// current reports whether q still stands for a stored record.
func (t *challengeTable) current(q queued) bool {
	r := t.rec(q.slot)
	return r.live && r.gen == q.gen
}

// rebuild lays the live records out again in queue order, in slices and
// maps just large enough for them.
func (t *challengeTable) rebuild() {
	n := newChallengeTable(t.max, t.grace)
	n.order = make([]queued, 0, t.count)
	n.byID = make(map[[16]byte]uint32, t.count)
	for _, q := range t.order {
		if !t.current(q) {
			continue
		}
		r := *t.rec(q.slot)
		slot := n.slots
		if slot%pageSize == 0 {
			n.pages = append(n.pages, new(page))
		}
		n.slots++
		r.gen = 0
		r.user, r.ip, r.status = n.strs.add(t.strs.get(r.user)), n.strs.add(t.strs.get(r.ip)), n.strs.add(t.strs.get(r.status))
		*n.rec(slot) = r
		n.order = append(n.order, queued{slot: slot})
		if r.named {
			name := t.names[q.slot]
			n.byName[name], n.names[slot] = slot, name
		} else {
			n.byID[r.id] = slot
		}
		if x := t.extras[q.slot]; x != nil {
			n.extras[slot] = x
		}
	}
	n.count, n.soonest = int(n.slots), t.soonest
	*t = *n
}

// formatUUID writes id as the generator writes a uuid.
func formatUUID(id [16]byte) string {
	var s [36]byte
	hex.Encode(s[0:8], id[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], id[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], id[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], id[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], id[10:16])
	return string(s[:])
}
