-- Items whose every stream entry has left the history (trimmed by age or count) and that
-- are no longer on the ticker, scheduled or waiting: their data may go. Returns a flat
-- list uri, idempotency key ('' if none), ... at most ``limit`` items.
-- KEYS: events last live expiry embargo idem_of
-- ARGV: limit:int
local first = redis.call('XRANGE', events, '-', '+', 'COUNT', 1)
local bound = '+inf'
if first[1] then bound = '(' .. string.match(first[1][1], '^(%d+)') end
local out = {}
for _, uri in ipairs(redis.call('ZRANGEBYSCORE', last, '-inf', bound, 'LIMIT', 0, limit)) do
  if not (redis.call('ZSCORE', live, uri) or redis.call('ZSCORE', expiry, uri)
          or redis.call('ZSCORE', embargo, uri)) then
    out[#out + 1] = uri
    out[#out + 1] = redis.call('HGET', idem_of, uri) or ''
  end
end
return out
