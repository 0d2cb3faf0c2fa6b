-- Once per channel, for data written before the desk's queue existed: put every held item
-- (status withheld, at its version's time) in ``held``. ``marker`` says it ran.
-- KEYS: items held marker
-- USES: records
if redis.call('EXISTS', marker) == 1 then return 0 end
each_record(function(uri, rec, ms)
  if rec and rec['status'] == 'withheld' then redis.call('ZADD', held, ms, uri) end
end)
redis.call('SET', marker, '1')
return 1
