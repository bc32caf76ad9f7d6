package store

import (
	"slices"
	"time"
)

// compactSlack is how many stale items a table's order list tolerates
// beyond twice its live entries before it is rebuilt.
const compactSlack = 1024

// entry is one value in a table, with the time after which it is dropped.
type entry[V any] struct {
	key    string
	dropAt time.Time
	val    V
}

// due reports whether e is to be dropped at now.
func (e *entry[V]) due(now time.Time) bool { return now.After(e.dropAt) }

// table is a map bounded to max entries whose entries are dropped once
// their drop time is past.
//
// Entries are swept in the order they were stored. Challenges all share one
// time to live, so that order is their expiry order and the sweep drops
// exactly what is due; an entry that outlives one stored after it (a
// longer-lived login or replay mark) only delays the sweep of the entries
// behind it. Such entries are still dropped when looked up, and a table that
// is full scans all its entries for due ones before it refuses one more
// (unless none can be due yet).
type table[V any] struct {
	max     int
	entries map[string]*entry[V]
	// order holds the entries in the order they were stored. It may also
	// hold entries since deleted or replaced, which the sweep skips.
	order []*entry[V]
	// soonest is no later than any entry's drop time: a full scan before
	// it cannot free anything.
	soonest time.Time
	// dropped, when set, is told of every entry that leaves the table.
	dropped func(*entry[V])
}

func newTable[V any](maxEntries int) *table[V] {
	return &table[V]{max: maxEntries, entries: make(map[string]*entry[V])}
}

// get returns the entry under key, dropping it if it is due at now.
func (t *table[V]) get(key string, now time.Time) (*entry[V], bool) {
	e, ok := t.entries[key]
	if ok && e.due(now) {
		t.delete(key)
		return nil, false
	}
	return e, ok
}

// sweep drops the entries due at now from the front of the order list.
func (t *table[V]) sweep(now time.Time) {
	for len(t.order) > 0 {
		e := t.order[0]
		live := t.entries[e.key] == e
		if live && !e.due(now) {
			return
		}
		t.order[0] = nil
		t.order = t.order[1:]
		if live {
			t.remove(e)
		}
	}
}

// hasRoom reports whether one more entry fits at now. When the table is
// full it first drops every due entry, wherever it is in the order list.
func (t *table[V]) hasRoom(now time.Time) bool {
	if len(t.entries) < t.max {
		return true
	}
	if !now.After(t.soonest) {
		return false
	}
	var soonest time.Time
	for _, e := range t.entries {
		switch {
		case e.due(now):
			t.remove(e)
		case soonest.IsZero() || e.dropAt.Before(soonest):
			soonest = e.dropAt
		}
	}
	t.soonest = soonest
	t.compact()
	return len(t.entries) < t.max
}

// put stores v under key until dropAt, replacing any entry under key; the
// caller has checked that there is room.
func (t *table[V]) put(key string, dropAt time.Time, v V) *entry[V] {
	if old, ok := t.entries[key]; ok {
		t.remove(old)
	}
	e := &entry[V]{key: key, dropAt: dropAt, val: v}
	t.entries[key] = e
	t.order = append(t.order, e)
	t.postpone(dropAt)
	t.compact()
	return e
}

// postpone keeps soonest a lower bound after an entry's drop time was set
// to dropAt.
func (t *table[V]) postpone(dropAt time.Time) {
	if dropAt.Before(t.soonest) {
		t.soonest = dropAt
	}
}

// delete drops the entry under key, if any.
func (t *table[V]) delete(key string) {
	if e, ok := t.entries[key]; ok {
		t.remove(e)
		t.compact()
	}
}

// remove takes e out of the map; its item in the order list becomes stale.
func (t *table[V]) remove(e *entry[V]) {
	delete(t.entries, e.key)
	if t.dropped != nil {
		t.dropped(e)
	}
}

// compact drops the stale items of the order list once they outnumber the
// live ones by far, so that entries deleted early cannot make it grow
// without bound. The cost is linear but amortised over as many deletions.
func (t *table[V]) compact() {
	if len(t.order) <= 2*len(t.entries)+compactSlack {
		return
	}
	t.order = slices.DeleteFunc(t.order, func(e *entry[V]) bool { return t.entries[e.key] != e })
	if cap(t.order) > 4*(len(t.order)+compactSlack) {
		t.order = slices.Clone(t.order)
	}
}

// len is the number of entries stored, due ones not yet dropped included.
func (t *table[V]) len() int { return len(t.entries) }
