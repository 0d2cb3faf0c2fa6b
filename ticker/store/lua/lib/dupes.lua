-- The duplicate rule's index (dupes.py): ``dupes`` maps the digest of a normal headline to
-- the uri of its newest post, ``dupes_at`` the digest to that post's ms. ``dupe_found``:
-- the record of the item posted under ``digest`` within the window (but not ``ignore``),
-- which the desk judges (``dupes.blocks``). ``dupe_note``: this post is the newest under its
-- digest; entries older than the window leave (a hundred at a time).
local function dupe_found()
  if digest == '' or check ~= '1' then return nil end
  local at = redis.call('ZSCORE', dupes_at, digest)
  if not at or tonumber(at) <= tonumber(at_ms) - tonumber(window_ms) then return nil end
  local other = redis.call('HGET', dupes, digest)
  if not other or other == ignore then return nil end
  return redis.call('HGET', items, other) or nil
end
local function dupe_note()
  if digest == '' then return end
  local cutoff = tonumber(at_ms) - tonumber(window_ms)
  for _, old in ipairs(redis.call('ZRANGEBYSCORE', dupes_at, '-inf', cutoff, 'LIMIT', 0, 100)) do
    redis.call('HDEL', dupes, old)
    redis.call('ZREM', dupes_at, old)
  end
  redis.call('HSET', dupes, digest, uri)
  redis.call('ZADD', dupes_at, at_ms, digest)
end
