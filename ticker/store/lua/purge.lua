-- A legal takedown: every text of the item leaves every key (its stream entries, its
-- record, its versions, its idempotency reply, its entries in the duplicate index, which
-- hold a digest of its headline); one record without text stays in ``purged`` and in the
-- audit list, and a ``remove`` (kill) entry with no text tells readers and other services
-- to drop their copy. ``idem`` is the key named in ``idem_of``
-- (or any key of the slot when there is none); the stream is rebuilt (lib/rebuild.lua).
-- Returns {'ok', record} | {'gone', record} | {'unknown'}.
-- KEYS: events items live expiry embargo versions log last idem_of idem purged held pinned reach
-- KEYS: audit scratch dupes dupes_at
-- ARGV: uri record notice schema_version history_max_items:int audit_max_items:int
-- USES: audit dupes_forget rebuild
if redis.call('HEXISTS', items, uri) == 0 then
  local done = redis.call('HGET', purged, uri)
  if done then return {'gone', done} end
  return {'unknown'}
end
local ids = {}
for id in string.gmatch(redis.call('HGET', log, uri) or '', '%S+') do ids[#ids + 1] = id end
for i = 1, #ids, 1000 do
  redis.call('XDEL', events, unpack(ids, i, math.min(i + 999, #ids)))
end
rebuild_events()
if redis.call('HGET', idem_of, uri) == idem then redis.call('DEL', idem) end
redis.call('HDEL', items, uri)
redis.call('HDEL', log, uri)
redis.call('HDEL', idem_of, uri)
redis.call('DEL', versions)
for _, key in ipairs({live, expiry, embargo, last, held}) do redis.call('ZREM', key, uri) end
redis.call('SREM', pinned, uri)
redis.call('HDEL', reach, uri)
dupes_forget(uri)
local rec = cjson.decode(record)
audit_add('purge', uri, rec['purged_by'], rec['purged_at'], rec['reason'])
redis.call('HSET', purged, uri, record)
redis.call('XADD', events, 'MAXLEN', history_max_items, '*', 'v', schema_version, 'type', 'remove', 'uri', uri,
  'reason', 'kill', 'item', notice)
return {'ok', record}
