package redisstore

import "github.com/redis/go-redis/v9"

// A challenge is one hash under prefix+"c:"+token with these fields:
//
//	u      user
//	ip     creator's client IP
//	s      status ("pending", "success")
//	c, cn  Created: Unix milliseconds, and the nanoseconds below them
//	e, en  Expires: Unix milliseconds, and the nanoseconds below them
//	v      "1" once viewed
//	n      nonce recorded by View
//	a      approver
//	g      groups as a JSON list, absent when there are none
//
// Splitting a time in milliseconds and the nanoseconds below them keeps it
// exact while every part stays well inside the integers a Lua number holds,
// so the scripts compare times exactly as the memory store does.
//
// Every script works on its one key (KEYS[1]), so a cluster could route it,
// and takes the caller's clock as arguments instead of reading the server's:
// the outcome depends only on the stored state and the "now" it is given.
//
// Redis answers integers as status codes; the scripts that return a
// challenge return its hash as a flat list of fields and values instead.

// Status codes the scripts answer with.
const (
	codeNotFound = iota
	codeExpired
	codeRefused // Poll: other IP; View: already viewed; Approve: bad nonce
	codeDone    // Poll: pending; Approve: approved
)

// prelude opens the scripts that take the current time: ARGV[1], ARGV[2]
// are "now" and ARGV[3], ARGV[4] are "now minus the grace", each in Unix
// milliseconds and the nanoseconds below them. load reads the expiry and the
// given fields of the challenge; a challenge whose grace is over counts as
// missing and is deleted on the way, as the memory store drops it.
const prelude = `
local key = KEYS[1]
local nm, nn = tonumber(ARGV[1]), tonumber(ARGV[2])
local dm, dn = tonumber(ARGV[3]), tonumber(ARGV[4])
local function after(am, an, bm, bn)
	return am > bm or (am == bm and an > bn)
end
local function load(...)
	local f = redis.call('HMGET', key, 'e', 'en', ...)
	if not f[1] then
		return nil
	end
	local em, en = tonumber(f[1]), tonumber(f[2])
	if after(dm, dn, em, en) then
		redis.call('DEL', key)
		return nil
	end
	return f, after(nm, nn, em, en)
end
`

// createScript stores a new challenge unless the key exists. ARGV[1] is the
// key's time to live in milliseconds, the rest are the hash's fields and
// values.
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
	return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`)

// viewScript marks an unexpired, never viewed challenge as viewed with the
// nonce ARGV[5] and returns it. HSET leaves the key's expiry alone.
var viewScript = redis.NewScript(prelude + `
local f, expired = load('v')
if not f then
	return 0
end
if expired then
	return 1
end
if f[3] then
	return 2
end
redis.call('HSET', key, 'v', '1', 'n', ARGV[5])
return redis.call('HGETALL', key)
`)

// approveScript marks a viewed, unexpired challenge whose nonce is ARGV[5]
// as approved by ARGV[6] with the JSON groups ARGV[7] ("" for none). An empty
// recorded nonce never matches. Redis does not undo a failed script's earlier
// writes, so the approval is one HSET: when Redis refuses it (out of memory)
// nothing has changed, and the HDEL after it cannot be refused.
var approveScript = redis.NewScript(prelude + `
local f, expired = load('v', 'n')
if not f then
	return 0
end
if expired then
	return 1
end
if not f[3] or not f[4] or f[4] == '' or f[4] ~= ARGV[5] then
	return 2
end
if ARGV[7] == '' then
	redis.call('HSET', key, 's', 'success', 'a', ARGV[6])
	redis.call('HDEL', key, 'g')
else
	redis.call('HSET', key, 's', 'success', 'a', ARGV[6], 'g', ARGV[7])
end
return 3
`)

// pollScript is the poller's step in ConsoleMe's order: missing, expired
// (deleted), other IP when ARGV[6] is "1" (compared with ARGV[5]), success
// (returned and deleted in the same step, so only one caller ever sees it),
// pending.
var pollScript = redis.NewScript(prelude + `
local f, expired = load('ip', 's')
if not f then
	return 0
end
if expired then
	redis.call('DEL', key)
	return 1
end
if ARGV[6] == '1' and f[3] ~= ARGV[5] then
	return 2
end
if f[4] == 'success' then
	local all = redis.call('HGETALL', key)
	redis.call('DEL', key)
	return all
end
return 3
`)

// takeScript returns and deletes a string key; GETDEL would need Redis 6.2.
var takeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
	redis.call('DEL', KEYS[1])
end
return v
`)

// markScript records KEYS[1] for ARGV[1] milliseconds unless it is there
// already, in which case it keeps the later of the two expiries. It answers
// 1 for a new key. A key whose time is already up (ARGV[1] <= 0) is new when
// it is not there, and is not recorded.
var markScript = redis.NewScript(`
local ms = tonumber(ARGV[1])
if ms <= 0 then
	if redis.call('EXISTS', KEYS[1]) == 1 then
		return 0
	end
	return 1
end
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ms) then
	return 1
end
local left = redis.call('PTTL', KEYS[1])
if left >= 0 and left < ms then
	redis.call('PEXPIRE', KEYS[1], ms)
end
return 0
`)
