-- Appends an entry for ``item_uri``: the stream entry, plus the per-item index that purge and
-- pruning use (which entries, and the newest one's time). Shared by commit.lua's two XADDs.
local function append(item_uri, entry_fields)
  local id = redis.call('XADD', events, 'MAXLEN', history_max_items, '*', unpack(entry_fields))
  local known = redis.call('HGET', log, item_uri)
  redis.call('HSET', log, item_uri, known and (known .. ' ' .. id) or id)
  redis.call('ZADD', last, tonumber(string.match(id, '^(%d+)')), item_uri)
  return id
end
