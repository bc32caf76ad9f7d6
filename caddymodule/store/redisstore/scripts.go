package redisstore

import "github.com/redis/go-redis/v9"

// A challenge is one hash under prefix+"c:"+token with these fields:
//
//	u      user
//	ip     creator's client IP
//	s      status ("pending", "success", or "claimed" and "taken": see ack.go)
//	c, cn  Created: Unix milliseconds, and the nanoseconds below them
//	e, en  Expires: likewise
//	v      "1" once viewed
//	n      nonce recorded by View
//	a      approver
//	g      groups as a JSON list, absent when there are none
//	t, tn  the approver's AuthTime, like Created; absent until approved
//	x      the claim's id, while claimed or taken
//	xt     when it was claimed, Unix milliseconds by the poller's clock
//
// Every challenge script works on its one key (KEYS[1]) and takes the
// caller's clock as arguments instead of reading the server's: the outcome
// depends only on the stored state and the "now" it is given.
//
// Redis answers integers as status codes (see code); the scripts that return
// a challenge return its hash as a flat list of fields and values instead.

// prelude opens the scripts that take the current time: ARGV[1], ARGV[2]
// are "now" and ARGV[3], ARGV[4] are "now minus the grace", each in Unix
// milliseconds and the nanoseconds below them. load reads the expiry, the
// status and the given fields of the challenge (f[1], f[2], f[3], then the
// others); a claimed or taken challenge counts as missing, as one
// collected does, and one whose grace is over counts as missing and is
// deleted on the way, as the memory store drops it. (pollScript reads the
// challenge itself: it may take a claim over.)
const prelude = `
local key = KEYS[1]
local nm, nn = tonumber(ARGV[1]), tonumber(ARGV[2])
local dm, dn = tonumber(ARGV[3]), tonumber(ARGV[4])
local function after(am, an, bm, bn)
	return am > bm or (am == bm and an > bn)
end
local function load(...)
	local f = redis.call('HMGET', key, 'e', 'en', 's', ...)
	if not f[1] or f[3] == 'claimed' or f[3] == 'taken' then
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

// getScript returns the challenge, expired or not, until its grace is over.
var getScript = redis.NewScript(prelude + `
if not load() then
	return 0
end
return redis.call('HGETALL', key)
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
if f[4] then
	return 2
end
redis.call('HSET', key, 'v', '1', 'n', ARGV[5])
return redis.call('HGETALL', key)
`)

// approveScript marks a viewed, unexpired, pending challenge whose nonce is
// ARGV[5] as approved by ARGV[6] with the JSON groups ARGV[7] ("" for none),
// signed in at ARGV[8], ARGV[9]. An empty recorded nonce never matches; the
// nonce is checked before the status, so that only who holds it learns that
// the challenge is approved already. Redis does not undo a failed script's
// earlier writes, so the approval is one HSET: when Redis refuses it (out of
// memory) nothing has changed, and the HDEL after it cannot be refused.
var approveScript = redis.NewScript(prelude + `
local f, expired = load('v', 'n')
if not f then
	return 0
end
if expired then
	return 1
end
if not f[4] or not f[5] or f[5] == '' or f[5] ~= ARGV[5] then
	return 2
end
if f[3] == 'success' then
	return 4
end
if ARGV[7] == '' then
	redis.call('HSET', key, 's', 'success', 'a', ARGV[6], 't', ARGV[8], 'tn', ARGV[9])
	redis.call('HDEL', key, 'g')
else
	redis.call('HSET', key, 's', 'success', 'a', ARGV[6], 'g', ARGV[7], 't', ARGV[8], 'tn', ARGV[9])
end
return 3
`)

// cancelScript deletes a challenge still remembered, expired or not.
var cancelScript = redis.NewScript(prelude + `
if not load() then
	return 0
end
redis.call('DEL', key)
return 3
`)

// pollScript is the poller's step in ConsoleMe's order: missing, expired
// (deleted), other IP when ARGV[6] is "1" (compared with ARGV[5]), success,
// pending. A success is returned and taken in the same step, so only one
// caller ever sees it: deleted when no replica is to acknowledge it, else
// claimed with the id ARGV[8] at ARGV[1] and returned with the field "w",
// the number of replicas to wait for (see ack.go). ARGV[7] is that number,
// or 0 for every replica connected to this primary, or -1 for none.
//
// A claim younger than ARGV[9] milliseconds answers as missing, as a
// collected challenge does: its poll is still deciding. An older one was
// given up (its poll timed out, or its primary died before the give-back
// reached this server) and is taken over like a success: its poll can no
// longer take it (takeScript checks the id), and a claim that was handed out
// would be "taken" here (see ack.go). A taken challenge answers as missing.
var pollScript = redis.NewScript(prelude + `
local f = redis.call('HMGET', key, 'e', 'en', 's', 'ip', 'xt')
if not f[1] or f[3] == 'taken' then
	return 0
end
if f[3] == 'claimed' and tonumber(f[5] or '0') + tonumber(ARGV[9]) > nm then
	return 0
end
local em, en = tonumber(f[1]), tonumber(f[2])
if after(dm, dn, em, en) then
	redis.call('DEL', key)
	return 0
end
if after(nm, nn, em, en) then
	redis.call('DEL', key)
	return 1
end
if ARGV[6] == '1' and f[4] ~= ARGV[5] then
	return 2
end
if f[3] == 'success' or f[3] == 'claimed' then
	local all = redis.call('HGETALL', key)
	local need = tonumber(ARGV[7])
	if need == 0 then
		local info = redis.call('INFO', 'replication')
		need = tonumber(string.match(info, 'connected_slaves:(%d+)') or '0')
	end
	if need <= 0 then
		redis.call('DEL', key)
		return all
	end
	redis.call('HSET', key, 's', 'claimed', 'x', ARGV[8], 'xt', ARGV[1])
	all[#all + 1] = 'w'
	all[#all + 1] = tostring(need)
	return all
end
return 3
`)

// takeScript marks the challenge claimed with the id ARGV[1] as taken, once
// the replicas have acknowledged the claim, and has it expire within
// ARGV[2] milliseconds: the time left to give it back if the replicas do
// not acknowledge that it is taken. It answers 0 when the claim was taken
// over meanwhile.
var takeScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 's', 'x')
if f[1] ~= 'claimed' or f[2] ~= ARGV[1] then
	return 0
end
redis.call('HSET', KEYS[1], 's', 'taken')
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 or ttl > tonumber(ARGV[2]) then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`)

// releaseScript gives the challenge claimed or taken with the id ARGV[1]
// back as a success for a later poll, when the replicas did not acknowledge
// the claim or the taking in time, and has it expire in ARGV[2]
// milliseconds again.
var releaseScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 's', 'x')
if (f[1] == 'claimed' or f[1] == 'taken') and f[2] == ARGV[1] then
	redis.call('HDEL', KEYS[1], 'x', 'xt')
	redis.call('HSET', KEYS[1], 's', 'success')
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
	return 1
end
return 0
`)
