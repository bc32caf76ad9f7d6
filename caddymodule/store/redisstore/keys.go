package redisstore

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// keys lays out the keys of one site. Every key starts with the prefix, so
// stores with different prefixes share nothing:
//
//	prefix+"c:"+token           challenge, a hash (see scripts.go)
//	prefix+"{"+tag+"}l:"+id     SAML login state, a hash (see login_scripts.go)
//	prefix+"{"+tag+"}lc:"+client live logins of one client, a sorted set
//	prefix+"o:"+key             replay mark, a hash holding its expiry
//
// tag is the first 16 hex digits of the SHA-256 of the prefix. A login and
// its client's set change together in one script, so in a Redis Cluster
// they must live in one slot: Redis hashes only the part of a key between
// its first "{" and the first "}" after it (the hash tag), and both keys
// read the same up to and including "{"+tag+"}", whatever the prefix holds.
// (New refuses the one prefix that defeats this: one whose first "{" is
// followed at once by "}", as Redis then hashes whole keys.)
// Without braces in the prefix that part is tag itself, so every site (every
// prefix) has its own slot for its logins and no two sites share one; a
// prefix that holds a hash tag of its own ("app:{eu}:") puts all its keys,
// challenges included, in that tag's slot instead. Every other script works
// on one key, so a site's challenges and replay marks spread over the
// cluster's slots.
//
// A site's sessions and revocations (Store.Sessions) have a prefix of their
// own, independent of this one, and keep all their keys, and their pub/sub
// channel, under that prefix+"{"+tag+"}", tag made likewise from it: one
// slot per site, so that a revocation and the sessions it ends change in one
// script:
//
//	G+"s:"+id      session, a hash
//	G+"u:"+user    a user's sessions, a sorted set
//	G+"r"          revocations, a hash; G+"rx" their expiries, a sorted set
//	G+"ev"         pub/sub channel of the revocation events (JSON)
//
// with G = prefix+"{"+tag+"}" (sessions_scripts.go has the fields).
type keys struct {
	prefix string
	group  string // prefix+"{"+tag+"}", the start of the login keys
}

// checkPrefix refuses a prefix whose first "{" is followed at once by "}":
// Redis would hash each key whole, and a login and its client's set could
// land in different slots of a cluster.
func checkPrefix(prefix string) error {
	if i := strings.IndexByte(prefix, '{'); i >= 0 && strings.HasPrefix(prefix[i:], "{}") {
		return fmt.Errorf("redis store: key prefix %q: its first \"{\" is followed at once by \"}\", which keeps a Redis Cluster from keeping a login and its client's logins in one slot", prefix)
	}
	return nil
}

func newKeys(prefix string) keys {
	sum := sha256.Sum256([]byte(prefix))
	return keys{prefix: prefix, group: prefix + "{" + hex.EncodeToString(sum[:8]) + "}"}
}

func (k keys) challenge(token string) string { return k.prefix + "c:" + token }
func (k keys) login(id string) string        { return k.group + "l:" + id }
func (k keys) clientLogins() string          { return k.group + "lc:" }
func (k keys) mark(key string) string        { return k.prefix + "o:" + key }

// client is the key of the set of logins client holds.
func (k keys) client(client string) string { return k.clientLogins() + client }
