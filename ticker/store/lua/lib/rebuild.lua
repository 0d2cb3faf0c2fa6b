-- XDEL only flags an entry as deleted: its bytes stay in the stream's listpack node until
-- every entry of that node is gone, and RDB files and AOF rewrites copy nodes whole. So a
-- purge rebuilds the stream from its live entries into ``scratch`` (the same IDs, last ID
-- and counters; the consumer groups with their positions, consumers and pending entries)
-- and renames it over the old one. Blocked XREAD readers stay blocked, at the same IDs.
local function fields_of(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end
local function rebuild_events()
  if redis.call('XLEN', events) == 0 then return end  -- no node left, no bytes left
  redis.call('DEL', scratch)
  local from = '-'
  while true do
    local batch = redis.call('XRANGE', events, from, '+', 'COUNT', 500)
    for _, e in ipairs(batch) do redis.call('XADD', scratch, e[1], unpack(e[2])) end
    if #batch < 500 then break end
    from = '(' .. batch[#batch][1]
  end
  local info = fields_of(redis.call('XINFO', 'STREAM', events))
  if info['entries-added'] then
    redis.call('XSETID', scratch, info['last-generated-id'], 'ENTRIESADDED',
      info['entries-added'], 'MAXDELETEDID', info['max-deleted-entry-id'])
  else
    redis.call('XSETID', scratch, info['last-generated-id'])
  end
  for _, raw in ipairs(redis.call('XINFO', 'GROUPS', events)) do
    local g = fields_of(raw)
    if g['entries-read'] then
      redis.call('XGROUP', 'CREATE', scratch, g['name'], g['last-delivered-id'],
        'ENTRIESREAD', g['entries-read'])
    else
      redis.call('XGROUP', 'CREATE', scratch, g['name'], g['last-delivered-id'])
    end
    for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', events, g['name'])) do
      redis.call('XGROUP', 'CREATECONSUMER', scratch, g['name'], fields_of(c)['name'])
    end
    local start = '-'
    while true do
      local pending = redis.call('XPENDING', events, g['name'], start, '+', 500)
      for _, p in ipairs(pending) do  -- the purged IDs are no longer there: dropped
        redis.call('XCLAIM', scratch, g['name'], p[2], 0, p[1], 'IDLE', p[3],
          'RETRYCOUNT', p[4], 'FORCE', 'JUSTID')
      end
      if #pending < 500 then break end
      start = '(' .. pending[#pending][1]
    end
  end
  redis.call('RENAME', scratch, events)
end
