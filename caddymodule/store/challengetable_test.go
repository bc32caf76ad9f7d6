package store

import (
	"encoding/binary"
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
// deleted gives back what they used (the pages after the last live record,
// the strings, the queue) and keeps the rest as they were: in their slots,
// found by token (given or chosen by the table), in their drop order, with
// what View set.
func TestChallengeTableRebuild(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tbl := newChallengeTable(1<<20, time.Minute)
	const n = 10_000
	tokens := make([]string, n)
	for i := range n {
		created := now.Add(time.Duration(i) * time.Millisecond)
		c := &Challenge{User: "user" + string(rune('a'+i%7)), IP: "192.0.2.1",
			Created: created, Expires: created.Add(2 * time.Minute), Status: StatusPending}
		switch i % 3 {
		case 0: // chosen by the table
			tbl.mintAndPut(c)
		case 1: // given, written as a uuid
			var id [16]byte
			id[0], id[1], id[15] = byte(i), byte(i>>8), 0x42
			c.Token = formatUUID(id)
			tbl.put(keyOf(c.Token), c)
		default: // given, kept by name
			c.Token = "token-" + string(rune('a'+i%26)) + time.Duration(i).String()
			tbl.put(keyOf(c.Token), c)
		}
		tokens[i] = c.Token
	}
	kept := map[string]uint32{}
	for i := n - 1; i >= 0; i-- { // the newest go first, as after a burst
		tok := tokens[i]
		slot, ok := tbl.lookup(tok, now)
		if !ok {
			t.Fatalf("token %d (%s) not found", i, tok)
		}
		if i < 100 || i < 2000 && i%97 == 0 {
			kept[tok] = slot
			tbl.extra(slot).nonce = tok
			continue
		}
		tbl.delete(slot)
	}
	if tbl.count != len(kept) {
		t.Fatalf("%d records, want %d", tbl.count, len(kept))
	}
	if tbl.slots > 2*pageSize || len(tbl.pages) > 2 || len(tbl.order) > 2*tbl.count+compactSlack {
		t.Fatalf("%d slots, %d pages and %d queued for %d records: not laid out again",
			tbl.slots, len(tbl.pages), len(tbl.order), tbl.count)
	}
	if tbl.strs.len() != 9 { // seven users, one IP, one status
		t.Errorf("%d strings interned, want 9", tbl.strs.len())
	}
	for tok, was := range kept {
		slot, ok := tbl.lookup(tok, now)
		if !ok || slot != was {
			t.Fatalf("%s: slot %d, %v; was %d", tok, slot, ok, was)
		}
		if c := tbl.load(slot); c.Token != tok || c.Nonce != tok || c.IP != "192.0.2.1" || c.Status != StatusPending {
			t.Fatalf("%s came back as %+v", tok, c)
		}
	}
	// New records take the free slots first, and are found.
	c := &Challenge{User: "new", Created: now, Expires: now.Add(time.Minute)}
	tbl.mintAndPut(c)
	if slot, ok := tbl.lookup(c.Token, now); !ok || slot >= 2000 {
		t.Errorf("a new record went to slot %d (found %v)", slot, ok)
	}
	// The drop order survives: a second past the first 50 drop times,
	// those go and the rest stay.
	mid := now.Add(50*time.Millisecond + 3*time.Minute)
	tbl.sweep(mid)
	for i, tok := range tokens {
		if _, isKept := kept[tok]; !isKept {
			continue
		}
		if _, ok := tbl.lookup(tok, mid); ok != (i >= 50) {
			t.Errorf("token %d a second past the first 50 drop times: found %v", i, ok)
		}
	}
}

// TestMintedTokens checks the tokens the table chooses: written as uuids,
// distinct, found, and never found once their record is gone, even when
// its slot holds another challenge; nor is a token whose slot is live but
// whose other bytes differ, nor one the table's key did not encipher.
func TestMintedTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tbl := newChallengeTable(1<<20, time.Minute)
	seen := map[string]bool{}
	var first *Challenge
	for i := range 5000 {
		c := &Challenge{User: "u", Created: now, Expires: now.Add(time.Minute)}
		tbl.mintAndPut(c)
		if _, ok := uuidKey(c.Token); !ok || seen[c.Token] {
			t.Fatalf("token %d: %q (seen before: %v)", i, c.Token, seen[c.Token])
		}
		seen[c.Token] = true
		if first == nil {
			first = c
		}
	}
	slot, ok := tbl.lookup(first.Token, now)
	if !ok {
		t.Fatal("first token not found")
	}
	// Another token for the same slot: other random bytes, the slot
	// masked as the table masks it.
	forged, _ := uuidKey(first.Token)
	forged[15] ^= 1
	binary.BigEndian.PutUint32(forged[:4], slot^tbl.slotMask(&forged))
	if _, ok := tbl.lookup(formatUUID(forged), now); ok {
		t.Error("a token naming a live slot with other random bytes was found")
	}
	// A token from another table (another key).
	other := newChallengeTable(10, time.Minute)
	oc := &Challenge{Created: now, Expires: now.Add(time.Minute)}
	other.mintAndPut(oc)
	if _, ok := tbl.lookup(oc.Token, now); ok {
		t.Error("another table's token was found")
	}
	// The slot is reused: the old token is not found, the new one is.
	tbl.delete(slot)
	c := &Challenge{User: "v", Created: now, Expires: now.Add(time.Minute)}
	tbl.mintAndPut(c)
	if got, ok := tbl.lookup(c.Token, now); !ok || got != slot {
		t.Fatalf("the new challenge went to slot %d (found %v), want the freed %d", got, ok, slot)
	}
	if _, ok := tbl.lookup(first.Token, now); ok {
		t.Error("a token was found after its record was deleted and its slot reused")
	}
	// A given token written as a uuid lives alongside.
	given := &Challenge{Token: "79959600-0b69-4acc-ba36-7bcd30553db1", Created: now, Expires: now.Add(time.Minute)}
	tbl.put(keyOf(given.Token), given)
	if s, ok := tbl.lookup(given.Token, now); !ok || tbl.load(s).Token != given.Token {
		t.Error("a given uuid token was not found")
	}
}
