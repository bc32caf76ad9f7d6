package redisstore

import "github.com/redis/go-redis/v9"

// A SAML login is one hash under prefix+"{"+tag+"}l:"+id (see keys.go) with
// these fields:
//
//	r      the AuthnRequest's ID
//	p      the return path
//	k      the client, "" for none
//	c, cn  Created: Unix milliseconds, and the nanoseconds below them
//	e, en  the login's expiry, likewise
//
// When logins are bounded per client, each client with logins has a sorted
// set under prefix+"{"+tag+"}lc:"+client: one member per login,
// "<en>|<id>" with the expiry's nanoseconds as six digits, scored by the
// expiry's milliseconds. The scripts drop the members whose login has
// expired by the given "now" before counting, and keep the set's time to
// live as long as its longest login. The login's key and its client's set
// share a hash tag (see keys.go); the scripts name the set of a login's
// client (or a replaced login's former client) from its "k" field and the
// prefix of those sets passed in, a key in the same slot as KEYS[1], which
// Redis Cluster accepts.
//
// A replay mark is one hash under prefix+"o:"+key whose fields e, en hold
// its expiry.

// loginHelpers opens the login scripts.
const loginHelpers = `
local function member(ns, id)
	return string.format('%06d|', tonumber(ns)) .. id
end
`

// saveLoginScript stores a login under KEYS[1] and, when KEYS[2] is given,
// counts it in that client set. ARGV[1], ARGV[2] are now, ARGV[3], ARGV[4]
// the login's expiry, ARGV[5] the key's time to live in milliseconds,
// ARGV[6] the bound, ARGV[7] the id, ARGV[8] the prefix of the client sets,
// ARGV[9] the client, ARGV[10] the request ID, ARGV[11] the return path,
// ARGV[12], ARGV[13] the creation time. It answers 2, and changes nothing,
// when the client already holds the bound of live logins, not counting the
// login being replaced.
//
// Redis refuses a write for lack of memory only while a script has written
// nothing yet, so the first write is one it may refuse (ZADD, or HSET
// without a client) and nothing has changed when it does; the clean-up of
// expired members and of the replaced login comes after.
var saveLoginScript = redis.NewScript(loginHelpers + `
local lkey, ckey = KEYS[1], KEYS[2]
local nm, nn = ARGV[1], tonumber(ARGV[2])
local ttl, bound, id = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local old = redis.call('HMGET', lkey, 'k', 'en')
local oldset, oldmember
if old[1] and old[1] ~= '' and old[2] then
	oldset, oldmember = ARGV[8] .. old[1], member(old[2], id)
end
local new = member(ARGV[4], id)
local expired = {}
if ckey then
	-- A login is live when it expires at or after now: in a later
	-- millisecond, or in this one at as many nanoseconds or more.
	local held = redis.call('ZCOUNT', ckey, '(' .. nm, '+inf')
	local oldscore = oldset == ckey and redis.call('ZSCORE', ckey, oldmember)
	if oldscore and tonumber(oldscore) > tonumber(nm) then
		held = held - 1
	end
	for _, m in ipairs(redis.call('ZRANGEBYSCORE', ckey, nm, nm)) do
		if tonumber(string.sub(m, 1, 6)) < nn then
			expired[#expired + 1] = m
		elseif m ~= oldmember then
			held = held + 1
		end
	end
	if held >= bound then
		return 2
	end
	redis.call('ZADD', ckey, ARGV[3], new)
end
redis.call('HSET', lkey, 'r', ARGV[10], 'p', ARGV[11], 'k', ARGV[9],
	'c', ARGV[12], 'cn', ARGV[13], 'e', ARGV[3], 'en', ARGV[4])
redis.call('PEXPIRE', lkey, ttl)
if oldset and (oldset ~= ckey or oldmember ~= new) then
	redis.call('ZREM', oldset, oldmember)
end
if ckey then
	redis.call('ZREMRANGEBYSCORE', ckey, '-inf', '(' .. nm)
	for _, m in ipairs(expired) do
		if m ~= new then
			redis.call('ZREM', ckey, m)
		end
	end
	if redis.call('PTTL', ckey) < ttl then
		redis.call('PEXPIRE', ckey, ttl)
	end
end
return 3
`)

// takeLoginScript returns and deletes the login under KEYS[1], whose id is
// ARGV[2], and takes it out of its client's set, whose name starts with
// ARGV[1]. It answers 0 when there is no such login.
var takeLoginScript = redis.NewScript(loginHelpers + `
local f = redis.call('HGETALL', KEYS[1])
if #f == 0 then
	return 0
end
redis.call('DEL', KEYS[1])
local k, en
for i = 1, #f, 2 do
	if f[i] == 'k' then
		k = f[i + 1]
	elseif f[i] == 'en' then
		en = f[i + 1]
	end
end
if k and k ~= '' and en then
	redis.call('ZREM', ARGV[1] .. k, member(en, ARGV[2]))
end
return f
`)

// markScript records KEYS[1] until ARGV[3], ARGV[4] unless it is recorded
// with an expiry at or after now (ARGV[1], ARGV[2]), in which case it keeps
// the later of the two expiries. ARGV[5] is the key's time to live in
// milliseconds. It answers 1 for a new key. A key whose expiry is already
// past is new unless recorded, and is not recorded. A mark an earlier
// version left as a plain string counts as recorded until Redis expires it.
var markScript = redis.NewScript(`
local key = KEYS[1]
local nm, nn = tonumber(ARGV[1]), tonumber(ARGV[2])
local em, en = tonumber(ARGV[3]), tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local function after(am, an, bm, bn)
	return am > bm or (am == bm and an > bn)
end
local kind = redis.call('TYPE', key).ok
if kind == 'string' then
	return 0
end
if kind == 'hash' then
	local f = redis.call('HMGET', key, 'e', 'en')
	local om, on = tonumber(f[1]), tonumber(f[2])
	if om and on and not after(nm, nn, om, on) then
		if after(em, en, om, on) then
			redis.call('HSET', key, 'e', ARGV[3], 'en', ARGV[4])
			if redis.call('PTTL', key) < ttl then
				redis.call('PEXPIRE', key, ttl)
			end
		end
		return 0
	end
end
if after(nm, nn, em, en) then
	if kind ~= 'none' then
		redis.call('DEL', key)
	end
	return 1
end
redis.call('HSET', key, 'e', ARGV[3], 'en', ARGV[4])
redis.call('PEXPIRE', key, ttl)
return 1
`)
