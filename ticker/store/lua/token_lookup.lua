-- The token behind a digest, for the desk's reads (and "last used"). Returns {0} unknown,
-- {1, record} good, {4, record} lapsed.
-- KEYS: tokens hashes used
-- ARGV: sha256 now_ms:int
-- USES: token_rules
local name = redis.call('HGET', hashes, sha256)
if not name then return {0} end
local record = redis.call('HGET', tokens, name)
if not record then return {0} end
local now = tonumber(now_ms)
local status = standing(cjson.decode(record), sha256, now)
if status ~= 1 then return status == 4 and {4, record} or {0} end
touch(name, now)
return {1, record}
