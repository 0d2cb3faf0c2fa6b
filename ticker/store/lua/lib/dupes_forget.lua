-- An item's entries in the duplicate index (they hold a digest of its headline), taken out
-- when its data goes (purge, forget). The index holds about one window's posts.
local function dupes_forget(item_uri)
  local noted = redis.call('HGETALL', dupes)
  for i = 1, #noted, 2 do
    if noted[i + 1] == item_uri then
      redis.call('HDEL', dupes, noted[i])
      redis.call('ZREM', dupes_at, noted[i])
    end
  end
end
