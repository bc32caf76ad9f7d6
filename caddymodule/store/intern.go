package store

// interned numbers the distinct strings a table holds, counting the holders
// of each, so that a record can name a string with a number and hold no
// pointer. A string is kept once however many records hold it and dropped
// with its last holder.
type interned struct {
	ids  map[string]uint32
	vals []string
	refs []uint32
	free []uint32
}

func newInterned() *interned {
	return &interned{ids: make(map[string]uint32)}
}

// add counts one more holder of s and returns its number.
func (n *interned) add(s string) uint32 {
	if i, ok := n.ids[s]; ok {
		n.refs[i]++
		return i
	}
	var i uint32
	if k := len(n.free); k > 0 {
		i = n.free[k-1]
		n.free = n.free[:k-1]
		n.vals[i], n.refs[i] = s, 1
	} else {
		i = uint32(len(n.vals))
		n.vals = append(n.vals, s)
		n.refs = append(n.refs, 1)
	}
	n.ids[s] = i
	return i
}

// get returns the string numbered i.
func (n *interned) get(i uint32) string { return n.vals[i] }

// release counts one holder of string i less, dropping it after the last.
func (n *interned) release(i uint32) {
	if n.refs[i]--; n.refs[i] > 0 {
		return
	}
	delete(n.ids, n.vals[i])
	n.vals[i] = ""
	n.free = append(n.free, i)
}

// len is the number of distinct strings held.
func (n *interned) len() int { return len(n.ids) }
