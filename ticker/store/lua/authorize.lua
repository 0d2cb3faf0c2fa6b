-- One round trip per write for "who is this, may they write here, and is it within their
-- rate" (GCRA). Returns {0} unknown token, {1, record} allowed, {2, record} not this
-- channel or not a writing role (not counted), {3, record, ms to wait}, {4, record} lapsed
-- (expired, or rotated out and past its grace; not counted).
-- KEYS: tokens hashes rate used
-- ARGV: sha256 channel now_ms:int interval_ms:num burst_ms:num
-- USES: token_rules
local name = redis.call('HGET', hashes, sha256)
if not name then return {0} end
local record = redis.call('HGET', tokens, name)
if not record then return {0} end
local rec = cjson.decode(record)
local now = tonumber(now_ms)
local status = standing(rec, sha256, now)
if status ~= 1 then return status == 4 and {4, record} or {0} end
touch(name, now)
local allowed = false
for _, ch in ipairs(rec['channels']) do
  if ch == '*' or ch == channel then allowed = true end
end
-- Contributors, editors and chiefs write (auth.WRITE_ROLE and up; a viewer reads, an ops
-- token reads /metrics and /stats): others are refused before their rate is counted.
local role = rec['role'] or 'editor'
if not allowed or (role ~= 'contributor' and role ~= 'editor' and role ~= 'chief') then
  return {2, record}
end
local tat = tonumber(redis.call('GET', rate) or now_ms)
if tat < now then tat = now end
local new_tat = tat + tonumber(interval_ms)
local wait = new_tat - tonumber(burst_ms) - now
if wait > 0 then return {3, record, math.ceil(wait)} end
redis.call('SET', rate, tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return {1, record}
