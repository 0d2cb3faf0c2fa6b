-- Give back one write (a replayed Idempotency-Key wrote nothing); the key keeps its expiry.
-- KEYS: rate
-- ARGV: interval_ms:num
local tat = tonumber(redis.call('GET', rate))
if not tat then return 0 end
redis.call('SET', rate, tostring(tat - tonumber(interval_ms)), 'KEEPTTL')
return 1
