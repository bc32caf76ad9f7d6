package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"slices"
	"time"
)

// challengeTable holds the memory store's challenges in a layout the garbage
// collector does not have to read: a benchmark or a busy site keeps millions
// of pending challenges alive, and with a pointer or a string in each, every
// collection cycle walked all of them. Here a challenge is a record without
// pointers in pages of records; its user, IP and status are numbers in an
// interned set of strings (a site has few distinct ones), and what only the
// approval page sets lives apart, for the few challenges that have it.
//
// A token the table chooses itself (mintAndPut) names its record's slot: it
// is a uuid4 whose last 12 bytes are random (90 bits, the version and
// variant aside) and whose first 4 are the slot masked with the AES of the
// random bytes under the table's own key, so that it gives away neither the
// slot nor the number of challenges. Finding it is one AES block and one
// record, and storing it writes the record only, where a hash index reads
// a random line of a large map on every generator call. Tokens given by the
// caller are found through maps.
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
	byID  map[[16]byte]uint32 // tokens given written as uuids
	mint  cipher.Block        // masks the slots in the tokens the table chooses
	in    [aes.BlockSize]byte // scratch for slotMask
	out   [aes.BlockSize]byte
	fresh [16]byte  // scratch for mintAndPut
	strs  *interned // users, IPs and statuses
	order []queued  // the records in the order stored; stale items are skipped

	// Tokens that are not canonical uuids, and the fields set after
	// creation, are kept by record number.
	byName map[string]uint32
	names  map[uint32]string
	extras map[uint32]*extra

	// soonest is no later than any record's drop time: a full scan before
	// it cannot free anything.
	soonest stamp
	// removed counts the records removed since the last rebuild, which pay
	// for the next. A rebuild leaves the lowest free slots to be taken
	// first, so that after a burst the live records gather at the bottom
	// and the pages above them can go.
	removed int
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
	minted              bool // the token names the slot; in no map
}

func (r *record) created() stamp { return stamp{r.createdSec, r.createdNsec} }
func (r *record) expires() stamp { return stamp{r.expiresSec, r.expiresNsec} }

// expired reports whether r is past its expiry at now, as
// Challenge.Expired does.
func (r *record) expired(now time.Time) bool { return stampOf(now).after(r.expires()) }

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
	key := make([]byte, 16)
	_, _ = rand.Read(key) // never fails: crypto/rand crashes the program instead
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // a 16-byte key is always valid
	}
	return emptyTable(maxEntries, grace, block)
}

// emptyTable returns a table without records whose chosen tokens are
// masked with mint.
func emptyTable(maxEntries int, grace time.Duration, mint cipher.Block) *challengeTable {
	return &challengeTable{
		mint:   mint,
		max:    maxEntries,
		grace:  grace,
		byID:   make(map[[16]byte]uint32),
		strs:   newInterned(),
		byName: make(map[string]uint32),
		names:  make(map[uint32]string),
		extras: make(map[uint32]*extra),
	}
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
	switch {
	case !k.isUUID:
		slot, ok = t.byName[k.name]
	default:
		if slot, ok = t.minted(k.id); !ok && len(t.byID) > 0 {
			slot, ok = t.byID[k.id]
		}
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
func (t *challengeTable) put(k tokenKey, c *Challenge) { t.fill(t.alloc(), k, c, false) }

// alloc returns a free slot.
func (t *challengeTable) alloc() uint32 {
	if k := len(t.free); k > 0 {
		slot := t.free[k-1]
		t.free = t.free[:k-1]
		return slot
	}
	slot := t.slots
	if slot%pageSize == 0 {
		t.pages = append(t.pages, new(page))
	}
	t.slots++
	return slot
}

// fill stores c in slot under k.
func (t *challengeTable) fill(slot uint32, k tokenKey, c *Challenge, minted bool) {
	r := t.rec(slot)
	created, expires := stampOf(c.Created), stampOf(c.Expires)
	*r = record{
		createdSec: created.sec, createdNsec: created.nsec, expiresSec: expires.sec, expiresNsec: expires.nsec,
		user: t.strs.add(c.User), ip: t.strs.add(c.IP), status: t.strs.add(string(c.Status)),
		gen: r.gen, live: true, viewed: c.Viewed, minted: minted,
	}
	switch {
	case minted:
		r.id = k.id
	case k.isUUID:
		r.id = k.id
		t.byID[k.id] = slot
	default:
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
	switch {
	case r.named:
		delete(t.byName, t.names[slot])
		delete(t.names, slot)
	case !r.minted:
		delete(t.byID, r.id)
	}
	delete(t.extras, slot)
	t.strs.release(r.user)
	t.strs.release(r.ip)
	t.strs.release(r.status)
	*r = record{gen: r.gen + 1}
	t.free = append(t.free, slot)
	t.count--
	t.removed++
}

// compact drops the stale items of the queue once they outnumber the live
// ones by far, so that records deleted early cannot make it grow without
// bound; and once most slots or strings are free, it lays the table out
// again, so that the memory of a burst goes back. The cost is linear but
// amortised over as many deletions.
func (t *challengeTable) compact() {
	if t.removed > int(t.slots)/4 &&
		(int(t.slots) > 4*(t.count+compactSlack) || len(t.strs.vals) > 4*(t.strs.len()+compactSlack)) {
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

// rebuild lays out again, just large enough, what the live records use:
// the maps, the interned strings, and the pages after the last live
// record. Records stay in their slots, which minted tokens name.
func (t *challengeTable) rebuild() {
	n := emptyTable(t.max, t.grace, t.mint)
	n.order, n.count, n.soonest = t.order, t.count, t.soonest
	top := uint32(0)
	for slot := range t.slots {
		r := t.rec(slot)
		if !r.live {
			continue
		}
		top = slot + 1
		r.user, r.ip, r.status = n.strs.add(t.strs.get(r.user)), n.strs.add(t.strs.get(r.ip)), n.strs.add(t.strs.get(r.status))
		switch {
		case r.named:
			name := t.names[slot]
			n.byName[name], n.names[slot] = slot, name
		case !r.minted:
			n.byID[r.id] = slot
		}
		if x := t.extras[slot]; x != nil {
			n.extras[slot] = x
		}
	}
	n.pages = slices.Clone(t.pages[:(top+pageSize-1)/pageSize])
	n.slots = top
	for slot := top; slot > 0; slot-- {
		if !n.rec(slot - 1).live {
			n.free = append(n.free, slot-1)
		}
	}
	n.order = slices.DeleteFunc(n.order, func(q queued) bool { return q.slot >= top || !n.current(q) })
	n.order = slices.Clip(n.order)
	*t = *n
}
