-- Is an entry ID still in the stream (or the very last one)?
-- KEYS: events
-- ARGV: entry_id
local hit = redis.call('XRANGE', events, entry_id, entry_id)
if hit[1] then return 1 end
local newest = redis.call('XREVRANGE', events, '+', '-', 'COUNT', 1)
if newest[1] and newest[1][1] == entry_id then return 1 end
return 0
