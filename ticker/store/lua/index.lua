-- Once per channel, for data written before the per-item index existed: index every
-- entry still in the stream, and date every item the index does not know (at its
-- record's version), so purge and pruning reach old items too. ``marker`` says it ran.
-- KEYS: events items log last marker
-- USES: records
if redis.call('EXISTS', marker) == 1 then return 0 end
local seen = {}
for _, entry in ipairs(redis.call('XRANGE', events, '-', '+')) do
  local f = entry[2]
  for i = 1, #f, 2 do
    if f[i] == 'uri' then
      local uri = f[i + 1]
      seen[uri] = (seen[uri] and (seen[uri] .. ' ') or '') .. entry[1]
      redis.call('ZADD', last, tonumber(string.match(entry[1], '^(%d+)')), uri)
    end
  end
end
for uri, ids in pairs(seen) do redis.call('HSET', log, uri, ids) end
each_record(function(uri, _, ms)
  if not redis.call('ZSCORE', last, uri) then redis.call('ZADD', last, ms, uri) end
end)
redis.call('SET', marker, '1')
return 1
