-- Before the audit list is read: purges recorded before it existed go in (once).
-- KEYS: audit purged
-- ARGV: audit_max_items:int
-- USES: audit
if redis.call('EXISTS', audit) == 1 or redis.call('HLEN', purged) == 0 then return 0 end
audit_backfill()
return 1
