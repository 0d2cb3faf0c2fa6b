-- One editorial change: the event, the item's state, its schedules, in one step.
-- Returns {status, stored JSON[, pushed]}: ok, dup, conflict, claimed, too_many_pins,
-- duplicate (Store.items.commit).
-- KEYS: events items live expiry idem embargo versions claim_set log last idem_of held pinned
-- KEYS: audit purged dupes dupes_at
-- ARGV: uri expected_version:int event_type reason body live_score:int? expires_ms:int?
-- ARGV: idempotency:bool fingerprint idempotency_ttl_s:int history_max_items:int schema_version
-- ARGV: live_max_items:int embargo_ms:int? claim keep_state:bool versions_ttl_ms:int held_ms:int?
-- ARGV: pin:bool pin_max:int audited audit_max_items:int digest check:bool ignore at_ms:int
-- ARGV: window_ms:int notice:str?
-- USES: append audit dupes
if idempotency == '1' then
  local prior = redis.call('GET', idem)
  if prior then return {'dup', prior} end
end
local cur = redis.call('HGET', items, uri)
local curver = 0
if cur then curver = cjson.decode(cur)['version'] end
if curver ~= tonumber(expected_version) then return {'conflict', cur or ''} end
local other = dupe_found()
if other then return {'duplicate', other} end
-- At most pin_max pins per channel: a new pin over that writes nothing.
if pin == '1' and redis.call('SISMEMBER', pinned, uri) == 0
   and redis.call('SCARD', pinned) >= tonumber(pin_max) then
  return {'too_many_pins', ''}
end
-- A sweeper claims a due expiry or release by removing it; only one process wins.
if claim ~= '' and redis.call('ZREM', claim_set, uri) == 0 then
  return {'claimed', ''}
end
local fields = {'v', schema_version, 'type', event_type, 'uri', uri}
if reason ~= '' then
  fields[#fields + 1] = 'reason'; fields[#fields + 1] = reason
end
-- A kill's note for readers (notices.py decides when there is one).
if notice ~= '' then
  fields[#fields + 1] = 'notice'; fields[#fields + 1] = notice
end
fields[#fields + 1] = 'item'; fields[#fields + 1] = body
local id = append(uri, fields)
local state = cur
if keep_state ~= '1' then
  state = '{"id":"' .. id .. '",' .. string.sub(body, 2)
  redis.call('HSET', items, uri, state)
  redis.call('RPUSH', versions, state)
  redis.call('PEXPIRE', versions, versions_ttl_ms)
end
if live_score == '' then redis.call('ZREM', live, uri)
else redis.call('ZADD', live, live_score, uri) end
if expires_ms == '' then redis.call('ZREM', expiry, uri)
else redis.call('ZADD', expiry, expires_ms, uri) end
if embargo_ms == '' then redis.call('ZREM', embargo, uri)
else redis.call('ZADD', embargo, embargo_ms, uri) end
if held_ms == '' then redis.call('ZREM', held, uri)
else redis.call('ZADD', held, held_ms, uri) end
if pin == '1' then redis.call('SADD', pinned, uri) else redis.call('SREM', pinned, uri) end
local pushed = 0
-- live_max_items: the oldest unpinned items leave the ticker (they stay in history);
-- pins do not count.
if redis.call('ZCARD', live) > tonumber(live_max_items) then
  local unpinned = {}
  for _, member in ipairs(redis.call('ZRANGE', live, 0, -1)) do
    if redis.call('SISMEMBER', pinned, member) == 0 then unpinned[#unpinned + 1] = member end
  end
  for i = 1, #unpinned - tonumber(live_max_items) do
    local old = unpinned[i]
    redis.call('ZREM', live, old)
    redis.call('ZREM', expiry, old)
    append(old, {'v', schema_version, 'type', 'remove', 'uri', old, 'reason', 'expire',
      'item', redis.call('HGET', items, old) or '{}'})
    pushed = pushed + 1
  end
end
-- A kill, an approval and a rejection are audited: who (the version's author, approved_by
-- or rejected_by) and when (its time); a rejection's note is its reason.
if audited ~= '' then
  local done = cjson.decode(body)
  local by, why = done['author'], nil
  if audited == 'approve' then by = done['approved_by'] end
  if audited == 'reject' then by, why = done['rejected_by'], done['rejection_note'] end
  audit_add(audited, uri, by, done['updated_at'], why)
end
if idempotency == '1' then
  redis.call('SET', idem, fingerprint .. '\n' .. state, 'EX', idempotency_ttl_s)
  redis.call('HSET', idem_of, uri, idem)
end
dupe_note()
return {'ok', state, pushed}
