-- "Last used", kept cheaply: the ``used`` hash (name -> ms) is written at most once a
-- minute per token, inside the script that looked the token up anyway. And whether a
-- secret is still good: the token has not expired, and the secret is the current one, or
-- the one a rotation replaced while its grace lasts. Checked here, in Redis, so an expiry
-- or a rotation holds on every process at once. A secret the record still knows but no
-- longer takes is "lapsed" (status 4, with the record): ``auth.lapsed`` says why and when,
-- by the same two rules (``auth.expired``, ``auth.in_grace``).
local function touch(token_name, now)
  local seen = tonumber(redis.call('HGET', used, token_name) or '0')
  if now - seen >= 60000 then redis.call('HSET', used, token_name, tostring(now)) end
end
-- 0: not this record's secret; 1: good; 4: this record's secret, lapsed.
local function standing(rec, secret_sha, now)
  local current = rec['sha256'] == secret_sha
  if not (current or rec['previous_sha256'] == secret_sha) then return 0 end
  if rec['expires_ms'] and now >= tonumber(rec['expires_ms']) then return 4 end
  if current or now < tonumber(rec['previous_until_ms']) then return 1 end
  return 4
end
