-- A new secret for a token. The one it replaces keeps working for ``grace_ms`` (0: not at
-- all), and is remembered after that, so that it is told "rotated" rather than "unknown";
-- the secret before it is dropped now (then it is unknown). Returns 0 when there is no token.
-- KEYS: tokens hashes
-- ARGV: name sha256 now_ms:int grace_ms:int rotated_at
local raw = redis.call('HGET', tokens, name)
if not raw then return 0 end
local rec = cjson.decode(raw)
if rec['previous_sha256'] then redis.call('HDEL', hashes, rec['previous_sha256']) end
rec['previous_sha256'] = rec['sha256']
-- No grace is 0, not "now": a process whose clock runs late must not take it either.
rec['previous_until_ms'] = 0
if tonumber(grace_ms) > 0 then rec['previous_until_ms'] = tonumber(now_ms) + tonumber(grace_ms) end
rec['sha256'] = sha256
rec['rotated_at'] = rotated_at
redis.call('HSET', tokens, name, cjson.encode(rec))
redis.call('HSET', hashes, sha256, name)
return 1
