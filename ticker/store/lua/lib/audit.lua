-- The channel's audit list: one entry per kill and purge (who, when, uri; a purge's reason),
-- never text. Purges recorded before the list existed (only in ``purged``) go in first,
-- oldest first, the first time the list is written or read, so it stays newest-last.
local function audit_backfill()
  if redis.call('EXISTS', audit) == 1 then return end
  local old = {}
  local all = redis.call('HGETALL', purged)
  for i = 2, #all, 2 do
    local ok, rec = pcall(cjson.decode, all[i])
    if ok and type(rec) == 'table' then old[#old + 1] = rec end
  end
  table.sort(old, function(a, b) return tostring(a['purged_at']) < tostring(b['purged_at']) end)
  for _, rec in ipairs(old) do
    redis.call('XADD', audit, 'MAXLEN', audit_max_items, '*', 'action', 'purge',
      'uri', tostring(rec['uri']), 'by', tostring(rec['purged_by']),
      'at', tostring(rec['purged_at']), 'reason', tostring(rec['reason']))
  end
end
local function audit_add(action, item_uri, by, at, why)
  audit_backfill()
  local f = {'action', action, 'uri', item_uri, 'by', tostring(by), 'at', tostring(at)}
  if why then f[#f + 1] = 'reason'; f[#f + 1] = tostring(why) end
  redis.call('XADD', audit, 'MAXLEN', audit_max_items, '*', unpack(f))
end
