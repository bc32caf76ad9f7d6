package store

import (
	"strings"
	"testing"
	"time"
	"unsafe"
)

// TestRecordSize keeps a challenge record one cache line.
func TestRecordSize(t *testing.T) {
	if s := unsafe.Sizeof(record{}); s != 64 {
		t.Errorf("a record is %d bytes, want 64", s)
	}
}

// TestUUIDKey checks that exactly the tokens written as the generator
// writes uuids get a key, and that the key gives the token back.
func TestUUIDKey(t *testing.T) {
	for _, tok := range []string{
		"00000000-0000-0000-0000-000000000000",
		"79959600-0b69-4acc-ba36-7bcd30553db1",
		"ffffffff-ffff-ffff-ffff-ffffffffffff",
	} {
		id, ok := uuidKey(tok)
		if !ok || formatUUID(id) != tok {
			t.Errorf("uuidKey(%q) = %x, %v", tok, id, ok)
		}
	}
	for _, tok := range []string{
		"",
		"79959600-0B69-4acc-ba36-7bcd30553db1", // uppercase: another token
		"79959600-0b69-4acc-ba36-7bcd30553db",
		"79959600-0b69-4acc-ba36-7bcd30553db1 ",
		"{79959600-0b69-4acc-ba36-7bcd30553db1}",
		"799596000b694accba367bcd30553db1",
		"79959600+0b69-4acc-ba36-7bcd30553db1",
		"79959600-0b69-4acc-ba36_7bcd30553db1",
		"7995960g-0b69-4acc-ba36-7bcd30553db1",
		"79959600-0b69-4acc-ba3-67bcd30553db1",
		"urn:uuid:79959600-0b69-4acc-ba36-7bc",
	} {
		if id, ok := uuidKey(tok); ok {
			t.Errorf("uuidKey(%q) = %x, want no key", tok, id)
		}
	}
}

// TestChallengeTableRebuild checks that a table most of whose records were
// deleted is laid out again, smaller, and keeps the rest as they were: found
// by token, in their drop order, with what View and Approve set.
func TestChallengeTableRebuild(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tbl := newChallengeTable(1<<20, time.Minute)
	const n = 10_000
	tokens := make([]string, n)
	for i := range n {
		var id [16]byte
		id[0], id[1], id[15] = byte(i), byte(i>>8), 0x42
		tokens[i] = formatUUID(id)
		if i%1000 == 0 { // some kept by name
			tokens[i] = strings.ToUpper(tokens[i])
		}
		created := now.Add(time.Duration(i) * time.Millisecond)
		tbl.put(keyOf(tokens[i]), &Challenge{Token: tokens[i], User: "user" + string(rune('a'+i%7)), IP: "192.0.2.1",
			Created: created, Expires: created.Add(2 * time.Minute), Status: StatusPending})
	}
	kept := map[string]bool{}
	for i, tok := range tokens {
		slot, ok := tbl.lookup(tok, now)
		if !ok {
			t.Fatalf("token %d not found", i)
		}
		if i%97 == 0 {
			kept[tok] = true
			tbl.extra(slot).nonce = tok
			continue
		}
		tbl.delete(slot)
	}
	if tbl.count != len(kept) {
		t.Fatalf("%d records, want %d", tbl.count, len(kept))
	}
	if int(tbl.slots) > 4*(tbl.count+compactSlack) || len(tbl.order) > 2*tbl.count+compactSlack {
		t.Fatalf("%d slots and %d queued for %d records: not laid out again", tbl.slots, len(tbl.order), tbl.count)
	}
	if tbl.strs.len() != 9 { // seven users, one IP, one status
		t.Errorf("%d strings interned, want 9", tbl.strs.len())
	}
	for tok := range kept {
		slot, ok := tbl.lookup(tok, now)
		if !ok {
			t.Fatalf("%s lost", tok)
		}
		if c := tbl.load(slot); c.Token != tok || c.Nonce != tok || c.IP != "192.0.2.1" || c.Status != StatusPending {
			t.Fatalf("%s came back as %+v", tok, c)
		}
	}
	// The drop order survives: half-way through the drop times, half go.
	mid := now.Add(5*time.Second + 2*time.Minute + time.Minute)
	tbl.sweep(mid)
	for i, tok := range tokens {
		if !kept[tok] {
			continue
		}
		_, ok := tbl.lookup(tok, mid)
		if ok != (i >= 5000) {
			t.Errorf("token %d at the middle: found %v", i, ok)
		}
	}
}
