package redisstore

import "github.com/redis/go-redis/v9"

// The session store of one site keeps every key under G = prefix+"{"+tag+"}"
// (see keys.go and sessionKeys), one Cluster slot per site, so that a
// revocation, the sessions it ends and the users' lists of sessions change
// together in one script:
//
//	G+"s:"+id     a session, a hash: u user, m method, ip client IP,
//	              c, cn Created (Unix milliseconds, nanoseconds below them),
//	              e, en Expires (likewise); its time to live ends with it
//	G+"u:"+user   the user's sessions, a sorted set: member "<cn>|<id>",
//	              cn as six digits, scored by Created's milliseconds, so
//	              that ZRANGE orders them by Created to the nanosecond; its
//	              time to live is that of its longest session
//	G+"r"         the revocations, a hash: field kind+":"+subject, value
//	              "<at ms>,<at ns>,<expiry ms>,<expiry ns>,<except>"
//	G+"rx"        their expiries, a sorted set: member the field in G+"r",
//	              scored by its expiry's milliseconds
//	G+"ev"        the pub/sub channel of the site's revocation events
//
// The scripts take the caller's clock ("now") and compare times exactly, as
// the memory store does; the keys' times to live only collect what nobody
// reads any more. Every write drops what it meets expired: Revoke the
// revocations expired by now (HDEL through G+"rx": Redis 7.0 cannot expire
// a hash's fields), RecordSession the user's expired sessions.
//
// An event is one JSON object, published by the script that stores the
// change, so that it leaves only once the change is stored and in the
// order of the changes: {"kind", "subject", "at", "at_ns", "expires",
// "expires_ns", "except"} (all strings; the times as in the hash) for a
// revocation as stored (merged), {"unblocked": user} for a lifted block.
// In a Cluster a PUBLISH reaches the subscribers of every node.

// sessionPrelude opens the session scripts: now in ARGV[1], ARGV[2].
const sessionPrelude = `
local nm, nn = tonumber(ARGV[1]), tonumber(ARGV[2])
local function after(am, an, bm, bn)
	return am > bm or (am == bm and an > bn)
end
local function member(ns, id)
	return string.format('%06d|', tonumber(ns)) .. id
end
-- drop forgets the session id (whose key is sk) and its place in its
-- user's set (whose name starts with up).
local function drop(sk, up, id)
	local f = redis.call('HMGET', sk, 'u', 'cn')
	if f[1] then
		redis.call('ZREM', up .. f[1], member(f[2], id))
		redis.call('DEL', sk)
	end
end
-- extend makes key live at least ttl milliseconds.
local function extend(key, ttl)
	if redis.call('PTTL', key) < ttl then
		redis.call('PEXPIRE', key, ttl)
	end
end
`

// recordScript stores a session under KEYS[1] and lists it in its user's
// set KEYS[2]. ARGV: 1, 2 now; 3 id; 4 user; 5 method; 6 IP; 7, 8 Created;
// 9, 10 Expires; 11 the key's time to live in milliseconds; 12 the bound
// per user (0: none); 13 the prefix of session keys (G+"s:"); 14 the prefix
// of the users' sets (G+"u:"). A session with the same id is dropped first,
// also when the new one has expired, which then is not stored (answer 0).
// The user's expired sessions go before the bound is applied; beyond it the
// oldest go. It answers 1.
var recordScript = redis.NewScript(sessionPrelude + `
local sk, uk, id = KEYS[1], KEYS[2], ARGV[3]
local sp, up = ARGV[13], ARGV[14]
drop(sk, up, id)
if not after(tonumber(ARGV[9]), tonumber(ARGV[10]), nm, nn) then
	return 0
end
for _, m in ipairs(redis.call('ZRANGE', uk, 0, -1)) do
	local other = string.sub(m, 8)
	local e = redis.call('HMGET', sp .. other, 'e', 'en')
	if not e[1] or not after(tonumber(e[1]), tonumber(e[2]), nm, nn) then
		redis.call('ZREM', uk, m)
		redis.call('DEL', sp .. other)
	end
end
local ttl = tonumber(ARGV[11])
redis.call('HSET', sk, 'u', ARGV[4], 'm', ARGV[5], 'ip', ARGV[6],
	'c', ARGV[7], 'cn', ARGV[8], 'e', ARGV[9], 'en', ARGV[10])
redis.call('PEXPIRE', sk, ttl)
redis.call('ZADD', uk, ARGV[7], member(ARGV[8], id))
local bound = tonumber(ARGV[12])
if bound > 0 then
	local over = redis.call('ZCARD', uk) - bound
	if over > 0 then
		for _, m in ipairs(redis.call('ZRANGE', uk, 0, over - 1)) do
			redis.call('DEL', sp .. string.sub(m, 8))
		end
		redis.call('ZREMRANGEBYRANK', uk, 0, over - 1)
	end
end
extend(uk, ttl)
return 1
`)

// listScript returns the sessions of the user set KEYS[1] unexpired at now
// (ARGV[1], ARGV[2]), newest first, each as a list: its id, then its hash's
// fields and values. ARGV[3] is the prefix of session keys.
var listScript = redis.NewScript(sessionPrelude + `
local out = {}
for _, m in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do
	local id = string.sub(m, 8)
	local f = redis.call('HGETALL', ARGV[3] .. id)
	local e, en
	for i = 1, #f, 2 do
		if f[i] == 'e' then e = tonumber(f[i + 1]) elseif f[i] == 'en' then en = tonumber(f[i + 1]) end
	end
	if e and en and after(e, en, nm, nn) then
		table.insert(f, 1, id)
		out[#out + 1] = f
	end
end
return out
`)

// revokeScript stores a revocation in the hash KEYS[1] and its expiry in
// KEYS[2], merged with an unexpired record of the same kind and subject,
// drops the sessions it ends, and publishes it. ARGV: 1, 2 now; 3 kind; 4
// subject; 5, 6 At; 7, 8 Expires; 9 the longest time to live in
// milliseconds; 10 the prefix of session keys; 11 the prefix of the users'
// sets; 12 the channel; 13 Except. The merge is Revocation.Merge's: the
// later At wins with its Except (the stored one on a tie), the later
// expiry wins. It answers 1.
var revokeScript = redis.NewScript(sessionPrelude + `
local rk, xk = KEYS[1], KEYS[2]
local kind, subject = ARGV[3], ARGV[4]
local sp, up = ARGV[10], ARGV[11]
local am, an, em, en, ex = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[13]
local field = kind .. ':' .. subject
local old = redis.call('HGET', rk, field)
if old then
	local oam, oan, oem, oen, oex = string.match(old, '^(%d+),(%d+),(%d+),(%d+),(.*)$')
	if oam and after(tonumber(oem), tonumber(oen), nm, nn) then
		if not after(tonumber(am), tonumber(an), tonumber(oam), tonumber(oan)) then
			am, an, ex = oam, oan, oex
		end
		if after(tonumber(oem), tonumber(oen), tonumber(em), tonumber(en)) then
			em, en = oem, oen
		end
	end
end
redis.call('HSET', rk, field, am .. ',' .. an .. ',' .. em .. ',' .. en .. ',' .. ex)
redis.call('ZADD', xk, em, field)
local expired = redis.call('ZRANGEBYSCORE', xk, '-inf', '(' .. ARGV[1])
if #expired > 0 then
	redis.call('HDEL', rk, unpack(expired))
	redis.call('ZREMRANGEBYSCORE', xk, '-inf', '(' .. ARGV[1])
end
local ttl = math.max(1, math.min(tonumber(ARGV[9]), tonumber(em) - nm + 1))
extend(rk, ttl)
extend(xk, ttl)
if kind == 'session' then
	drop(sp .. subject, up, subject)
elseif kind == 'user' then
	local uk = up .. subject
	local m = redis.call('ZRANGEBYSCORE', uk, '-inf', am, 'WITHSCORES')
	local atm, atn = tonumber(am), tonumber(an)
	for i = 1, #m, 2 do
		local cm, cn = tonumber(m[i + 1]), tonumber(string.sub(m[i], 1, 6))
		if after(atm, atn, cm, cn) and string.sub(m[i], 8) ~= ex then
			redis.call('ZREM', uk, m[i])
			redis.call('DEL', sp .. string.sub(m[i], 8))
		end
	end
end
redis.call('PUBLISH', ARGV[12], cjson.encode({kind = kind, subject = subject,
	at = am, at_ns = an, expires = em, expires_ns = en, except = ex}))
return 1
`)

// unblockScript removes the field ARGV[1] (the user's block) from the
// revocations KEYS[1] and their expiries KEYS[2], and publishes that the
// user ARGV[3] is unblocked on the channel ARGV[2]. It answers 1.
var unblockScript = redis.NewScript(`
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], cjson.encode({unblocked = ARGV[3]}))
return 1
`)
