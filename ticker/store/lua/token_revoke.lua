-- Drop a token, its digests and its "last used". 0 when there is no token.
-- KEYS: tokens hashes used
-- ARGV: name
local rec = redis.call('HGET', tokens, name)
if not rec then return 0 end
local old = cjson.decode(rec)
redis.call('HDEL', hashes, old['sha256'])
if old['previous_sha256'] then redis.call('HDEL', hashes, old['previous_sha256']) end
redis.call('HDEL', tokens, name)
redis.call('HDEL', used, name)
return 1
