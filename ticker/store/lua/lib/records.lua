-- Every record of ``items``, for the once-per-channel indexes of older data (INDEX,
-- HELD_INDEX): ``visit(uri, rec, ms)``, ``rec`` the decoded record (nil when it is not a
-- JSON object), ``ms`` the time of its version's entry ID (0 when it has none).
local function each_record(visit)
  local all = redis.call('HGETALL', items)
  for i = 1, #all, 2 do
    local ok, rec = pcall(cjson.decode, all[i + 1])
    if not (ok and type(rec) == 'table') then rec = nil end
    local ms = 0
    if rec and type(rec['id']) == 'string' then
      ms = tonumber(string.match(rec['id'], '^(%d+)')) or 0
    end
    visit(all[i], rec, ms)
  end
end
