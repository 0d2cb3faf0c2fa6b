"""The Lua scripts ``store.py`` runs: each one atomic, each naming keys of one hash slot
(``{channel}`` or ``{auth}``), so they run unchanged on Redis Cluster. The Python side,
key names included, is in ``store.py``."""

# KEYS: events, items, live, expiry, idem, embargo, versions, claim.  ARGV: see Store.commit.
COMMIT = """
if ARGV[8] == '1' then
  local prior = redis.call('GET', KEYS[5])
  if prior then return {'dup', prior} end
end
local cur = redis.call('HGET', KEYS[2], ARGV[1])
local curver = 0
if cur then curver = cjson.decode(cur)['version'] end
if curver ~= tonumber(ARGV[2]) then return {'conflict', cur or ''} end
-- A sweeper claims a due expiry or release by removing it; only one process wins.
if ARGV[15] == '1' and redis.call('ZREM', KEYS[8], ARGV[1]) == 0 then
  return {'claimed', ''}
end
local fields = {'v', ARGV[12], 'type', ARGV[3], 'uri', ARGV[1]}
if ARGV[4] ~= '' then
  fields[#fields + 1] = 'reason'; fields[#fields + 1] = ARGV[4]
end
fields[#fields + 1] = 'item'; fields[#fields + 1] = ARGV[5]
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[11], '*', unpack(fields))
local state = cur
if ARGV[16] ~= '1' then
  state = '{"id":"' .. id .. '",' .. string.sub(ARGV[5], 2)
  redis.call('HSET', KEYS[2], ARGV[1], state)
  redis.call('RPUSH', KEYS[7], state)
  redis.call('PEXPIRE', KEYS[7], ARGV[17])
end
if ARGV[6] == '' then redis.call('ZREM', KEYS[3], ARGV[1])
else redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1]) end
if ARGV[7] == '' then redis.call('ZREM', KEYS[4], ARGV[1])
else redis.call('ZADD', KEYS[4], ARGV[7], ARGV[1]) end
if ARGV[14] == '' then redis.call('ZREM', KEYS[6], ARGV[1])
else redis.call('ZADD', KEYS[6], ARGV[14], ARGV[1]) end
-- live_max_items: the oldest items leave the ticker (they stay in history).
local over = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[13])
if over > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[3], 0, over - 1)) do
    redis.call('ZREM', KEYS[3], old)
    redis.call('ZREM', KEYS[4], old)
    redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[11], '*', 'v', ARGV[12], 'type', 'remove',
      'uri', old, 'reason', 'expire', 'item', redis.call('HGET', KEYS[2], old) or '{}')
  end
end
if ARGV[8] == '1' then
  redis.call('SET', KEYS[5], ARGV[9] .. '\\n' .. state, 'EX', ARGV[10])
end
return {'ok', state}
"""

# KEYS: events, items, live.  The position and the items on the ticker, read atomically.
SNAPSHOT = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local pos = '0-0'
if last[1] then pos = last[1][1] end
local uris = redis.call('ZRANGE', KEYS[3], 0, -1)
local out = {pos}
if #uris > 0 then
  for _, s in ipairs(redis.call('HMGET', KEYS[2], unpack(uris))) do
    if s then out[#out + 1] = s end
  end
end
return out
"""

# KEYS: events.  ARGV: an entry ID.  Is it still in the stream (or the very last one)?
KNOWS = """
local hit = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if hit[1] then return 1 end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if last[1] and last[1][1] == ARGV[1] then return 1 end
return 0
"""

# KEYS: tokens, hashes, rate key.  ARGV: sha256, channel, now ms, emission interval
# ms, burst tolerance ms. One round trip per write for "who is this, may they write
# here, and is it within their rate" (GCRA). Returns {0} unknown token, {1, record}
# allowed, {2, record} not this channel (not counted), {3, record, ms to wait}.
AUTHORIZE = """
local name = redis.call('HGET', KEYS[2], ARGV[1])
if not name then return {0} end
local record = redis.call('HGET', KEYS[1], name)
if not record then return {0} end
local allowed = false
for _, ch in ipairs(cjson.decode(record)['channels']) do
  if ch == '*' or ch == ARGV[2] then allowed = true end
end
if not allowed then return {2, record} end
local now = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[3]) or ARGV[3])
if tat < now then tat = now end
local new_tat = tat + tonumber(ARGV[4])
local wait = new_tat - tonumber(ARGV[5]) - now
if wait > 0 then return {3, record, math.ceil(wait)} end
redis.call('SET', KEYS[3], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return {1, record}
"""

# KEYS: tokens, hashes.  ARGV: name, sha256, record.
TOKEN_CREATE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 1
"""

# KEYS: tokens, hashes.  ARGV: name.
TOKEN_REVOKE = """
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if not rec then return 0 end
redis.call('HDEL', KEYS[2], cjson.decode(rec)['sha256'])
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
"""

# KEYS: rate key.  ARGV: emission interval ms.  Give back one write (a replayed
# Idempotency-Key wrote nothing); the key keeps its expiry.
REFUND = """
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
redis.call('SET', KEYS[1], tostring(tat - tonumber(ARGV[1])), 'KEEPTTL')
return 1
"""
