package redisstore

// keys lays out the keys of one site. Every key starts with the prefix, so
// stores with different prefixes share nothing:
//
//	prefix+"c:"+token        challenge, a hash (see scripts.go)
//	prefix+"{l}:"+id         SAML login state, a hash (see login_scripts.go)
//	prefix+"{l}c:"+client    live logins of one client, a sorted set
//	prefix+"o:"+key          replay mark, a hash holding its expiry
//
// A login and its client's set change together in one script, so their
// keys share the hash tag "{l}" (or whatever tag the prefix itself holds):
// a Redis Cluster would keep them in one slot. Every other script works on
// one key.
type keys struct{ prefix string }

func (k keys) challenge(token string) string { return k.prefix + "c:" + token }
func (k keys) login(id string) string        { return k.prefix + "{l}:" + id }
func (k keys) clientLogins() string          { return k.prefix + "{l}c:" }
func (k keys) mark(key string) string        { return k.prefix + "o:" + key }

// client is the key of the set of logins client holds.
func (k keys) client(client string) string { return k.clientLogins() + client }
