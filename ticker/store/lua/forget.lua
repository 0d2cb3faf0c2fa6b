-- Forget one aged-out item (aged_out.lua's rule, checked again atomically), its entries in
-- the duplicate index too.
-- KEYS: events items live expiry embargo versions log last idem_of idem reach held dupes
-- KEYS: dupes_at
-- ARGV: uri
-- USES: dupes_forget
local score = redis.call('ZSCORE', last, uri)
if not score then return 0 end
local first = redis.call('XRANGE', events, '-', '+', 'COUNT', 1)
if first[1] and tonumber(score) >= tonumber(string.match(first[1][1], '^(%d+)')) then
  return 0
end
if redis.call('ZSCORE', live, uri) or redis.call('ZSCORE', expiry, uri)
   or redis.call('ZSCORE', embargo, uri) then
  return 0
end
if redis.call('HGET', idem_of, uri) == idem then redis.call('DEL', idem) end
redis.call('HDEL', items, uri)
redis.call('HDEL', log, uri)
redis.call('HDEL', idem_of, uri)
redis.call('ZREM', last, uri)
redis.call('ZREM', held, uri)
redis.call('HDEL', reach, uri)
redis.call('DEL', versions)
dupes_forget(uri)
return 1
