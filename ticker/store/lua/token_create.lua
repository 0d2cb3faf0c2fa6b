-- A new token: its record by name, its name by the secret's digest. 0 when the name exists.
-- KEYS: tokens hashes
-- ARGV: name sha256 record
if redis.call('HEXISTS', tokens, name) == 1 then return 0 end
redis.call('HSET', tokens, name, record)
redis.call('HSET', hashes, sha256, name)
return 1
