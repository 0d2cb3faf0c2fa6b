-- The position and the items on the ticker, read atomically.
-- KEYS: events items live
local newest = redis.call('XREVRANGE', events, '+', '-', 'COUNT', 1)
local pos = '0-0'
if newest[1] then pos = newest[1][1] end
local uris = redis.call('ZRANGE', live, 0, -1)
local out = {pos}
if #uris > 0 then
  for _, s in ipairs(redis.call('HMGET', items, unpack(uris))) do
    if s then out[#out + 1] = s end
  end
end
return out
