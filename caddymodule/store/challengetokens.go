package store

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
)

// Tokens: how the challenge table finds a token, and the tokens it chooses.

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

// slotMask is what masks the slot in a chosen token whose random part is
// the last 12 bytes of id.
func (t *challengeTable) slotMask(id *[16]byte) uint32 {
	copy(t.in[:12], id[4:])
	t.mint.Encrypt(t.out[:], t.in[:])
	return binary.BigEndian.Uint32(t.out[:4])
}

// minted returns the slot of the record whose token the table chose and
// wrote as id.
func (t *challengeTable) minted(id [16]byte) (uint32, bool) {
	slot := binary.BigEndian.Uint32(id[:4]) ^ t.slotMask(&id)
	if slot >= t.slots {
		return 0, false
	}
	r := t.rec(slot)
	if !r.live || !r.minted || subtle.ConstantTimeCompare(r.id[:], id[:]) != 1 {
		return 0, false
	}
	return slot, true
}

// mintAndPut chooses c's token and stores c under it; the caller has
// checked that there is room.
func (t *challengeTable) mintAndPut(c *Challenge) {
	slot := t.alloc()
	id := &t.fresh            // a field, not a local, so that nothing escapes to the heap
	_, _ = rand.Read(id[4:])  // never fails: crypto/rand crashes the program instead
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // variant 10
	binary.BigEndian.PutUint32(id[:4], slot^t.slotMask(id))
	c.Token = formatUUID(*id)
	t.fill(slot, tokenKey{id: *id, isUUID: true}, c, true)
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
