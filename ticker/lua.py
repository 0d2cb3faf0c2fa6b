"""The Lua scripts ``store.py`` runs: each one atomic, each naming keys of one hash slot
(``{channel}`` or ``{auth}``), so they run unchanged on Redis Cluster. The Python side,
key names included, is in ``store.py``.

Every script declares its KEYS and ARGV by name (``Script.keys``, ``Script.args``): the
header of ``local`` names is generated from those tuples, and ``Script.call`` orders the
caller's named values by the same tuples, so the two sides cannot drift apart (arq's
``lua.py`` names its keys the same way). Bodies use the names only, never ``KEYS[n]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Script:
    name: str
    keys: tuple[str, ...]
    args: tuple[str, ...]
    body: str

    @property
    def source(self) -> str:
        header = [f"local {k} = KEYS[{n}]" for n, k in enumerate(self.keys, 1)]
        header += [f"local {a} = ARGV[{n}]" for n, a in enumerate(self.args, 1)]
        return "\n".join(header) + "\n" + self.body

    def call(
        self, keys: Mapping[str, str], args: Mapping[str, Any] | None = None
    ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV in the script's order; a missing or unknown name is a bug."""
        args = args or {}
        if set(keys) != set(self.keys) or set(args) != set(self.args):
            raise TypeError(
                f"{self.name}: keys {sorted(keys)} / args {sorted(args)} do not match "
                f"{list(self.keys)} / {list(self.args)}"
            )
        return [keys[k] for k in self.keys], [args[a] for a in self.args]


# Appends an entry for ``uri``: the stream entry, plus the per-item index that purge and
# pruning use (which entries, and the newest one's time). Shared by COMMIT's two XADDs.
_APPEND = """
local function append(item_uri, entry_fields)
  local id = redis.call('XADD', events, 'MAXLEN', maxlen, '*', unpack(entry_fields))
  local known = redis.call('HGET', log, item_uri)
  redis.call('HSET', log, item_uri, known and (known .. ' ' .. id) or id)
  redis.call('ZADD', last, tonumber(string.match(id, '^(%d+)')), item_uri)
  return id
end
"""

# The channel's audit list: one entry per kill and purge (who, when, uri; a purge's reason),
# never text. Purges recorded before the list existed (only in ``purged``) go in first,
# oldest first, the first time the list is written or read, so it stays newest-last.
_AUDIT = """
local function audit_backfill()
  if redis.call('EXISTS', audit) == 1 then return end
  local old = {}
  local all = redis.call('HGETALL', purged)
  for i = 2, #all, 2 do
    local ok, rec = pcall(cjson.decode, all[i])
    if ok and type(rec) == 'table' then old[#old + 1] = rec end
  end
  table.sort(old, function(a, b) return tostring(a['purged_at']) < tostring(b['purged_at']) end)
  for _, rec in ipairs(old) do
    redis.call('XADD', audit, 'MAXLEN', audit_max, '*', 'action', 'purge',
      'uri', tostring(rec['uri']), 'by', tostring(rec['purged_by']),
      'at', tostring(rec['purged_at']), 'reason', tostring(rec['reason']))
  end
end
local function audit_add(action, item_uri, by, at, why)
  audit_backfill()
  local f = {'action', action, 'uri', item_uri, 'by', tostring(by), 'at', tostring(at)}
  if why then f[#f + 1] = 'reason'; f[#f + 1] = tostring(why) end
  redis.call('XADD', audit, 'MAXLEN', audit_max, '*', unpack(f))
end
"""

# The duplicate rule's index (dupes.py): ``dupes`` maps the digest of a normal headline to
# the uri of its newest post, ``dupes_at`` the digest to that post's ms. ``dupe_found``:
# the record of the item posted under ``dupe_digest`` within the window (but not
# ``dupe_ignore``), which the desk judges (``dupes.blocks``). ``dupe_note``: this post is
# the newest under its digest; entries older than the window leave (a hundred at a time).
_DUPES = """
local function dupe_found()
  if dupe_digest == '' or dupe_check ~= '1' then return nil end
  local at = redis.call('ZSCORE', dupes_at, dupe_digest)
  if not at or tonumber(at) <= tonumber(dupe_at_ms) - tonumber(dupe_window_ms) then return nil end
  local other = redis.call('HGET', dupes, dupe_digest)
  if not other or other == dupe_ignore then return nil end
  return redis.call('HGET', items, other) or nil
end
local function dupe_note()
  if dupe_digest == '' then return end
  local cutoff = tonumber(dupe_at_ms) - tonumber(dupe_window_ms)
  for _, old in ipairs(redis.call('ZRANGEBYSCORE', dupes_at, '-inf', cutoff, 'LIMIT', 0, 100)) do
    redis.call('HDEL', dupes, old)
    redis.call('ZREM', dupes_at, old)
  end
  redis.call('HSET', dupes, dupe_digest, uri)
  redis.call('ZADD', dupes_at, dupe_at_ms, dupe_digest)
end
"""

# An item's entries in the duplicate index (they hold a digest of its headline), taken out
# when its data goes (purge, forget). The index holds about one window's posts.
_DUPES_FORGET = """
local function dupes_forget(item_uri)
  local noted = redis.call('HGETALL', dupes)
  for i = 1, #noted, 2 do
    if noted[i + 1] == item_uri then
      redis.call('HDEL', dupes, noted[i])
      redis.call('ZREM', dupes_at, noted[i])
    end
  end
end
"""

# One editorial change: the event, the item's state, its schedules, in one step.
COMMIT = Script(
    "commit",
    keys=(
        "events",
        "items",
        "live",
        "expiry",
        "idem",
        "embargo",
        "versions",
        "claim_set",
        "log",
        "last",
        "idem_of",
        "held",
        "pinned",
        "audit",
        "purged",
        "dupes",
        "dupes_at",
    ),
    args=(
        "uri",
        "expected_version",
        "event_type",
        "reason",
        "body",
        "live_score",
        "expires_ms",
        "idempotent",
        "fingerprint",
        "idempotency_ttl_s",
        "maxlen",
        "schema",
        "live_max",
        "embargo_ms",
        "claimed",
        "keep_state",
        "versions_ttl_ms",
        "held_ms",
        "pin",
        "pin_max",
        "audited",
        "audit_max",
        "dupe_digest",
        "dupe_check",
        "dupe_ignore",
        "dupe_at_ms",
        "dupe_window_ms",
        "public_notice",
    ),
    body=_APPEND
    + _AUDIT
    + _DUPES
    + """
if idempotent == '1' then
  local prior = redis.call('GET', idem)
  if prior then return {'dup', prior} end
end
local cur = redis.call('HGET', items, uri)
local curver = 0
if cur then curver = cjson.decode(cur)['version'] end
if curver ~= tonumber(expected_version) then return {'conflict', cur or ''} end
local other = dupe_found()
if other then return {'duplicate', other} end
-- At most pin_max pins per channel: a new pin over that writes nothing.
if pin == '1' and redis.call('SISMEMBER', pinned, uri) == 0
   and redis.call('SCARD', pinned) >= tonumber(pin_max) then
  return {'too_many_pins', ''}
end
-- A sweeper claims a due expiry or release by removing it; only one process wins.
if claimed == '1' and redis.call('ZREM', claim_set, uri) == 0 then
  return {'claimed', ''}
end
local fields = {'v', schema, 'type', event_type, 'uri', uri}
if reason ~= '' then
  fields[#fields + 1] = 'reason'; fields[#fields + 1] = reason
end
-- A kill's note for readers (notices.py decides when there is one).
if public_notice ~= '' then
  fields[#fields + 1] = 'notice'; fields[#fields + 1] = public_notice
end
fields[#fields + 1] = 'item'; fields[#fields + 1] = body
local id = append(uri, fields)
local state = cur
if keep_state ~= '1' then
  state = '{"id":"' .. id .. '",' .. string.sub(body, 2)
  redis.call('HSET', items, uri, state)
  redis.call('RPUSH', versions, state)
  redis.call('PEXPIRE', versions, versions_ttl_ms)
end
if live_score == '' then redis.call('ZREM', live, uri)
else redis.call('ZADD', live, live_score, uri) end
if expires_ms == '' then redis.call('ZREM', expiry, uri)
else redis.call('ZADD', expiry, expires_ms, uri) end
if embargo_ms == '' then redis.call('ZREM', embargo, uri)
else redis.call('ZADD', embargo, embargo_ms, uri) end
if held_ms == '' then redis.call('ZREM', held, uri)
else redis.call('ZADD', held, held_ms, uri) end
if pin == '1' then redis.call('SADD', pinned, uri) else redis.call('SREM', pinned, uri) end
local pushed = 0
-- live_max_items: the oldest unpinned items leave the ticker (they stay in history);
-- pins do not count.
if redis.call('ZCARD', live) > tonumber(live_max) then
  local unpinned = {}
  for _, member in ipairs(redis.call('ZRANGE', live, 0, -1)) do
    if redis.call('SISMEMBER', pinned, member) == 0 then unpinned[#unpinned + 1] = member end
  end
  for i = 1, #unpinned - tonumber(live_max) do
    local old = unpinned[i]
    redis.call('ZREM', live, old)
    redis.call('ZREM', expiry, old)
    append(old, {'v', schema, 'type', 'remove', 'uri', old, 'reason', 'expire',
      'item', redis.call('HGET', items, old) or '{}'})
    pushed = pushed + 1
  end
end
-- A kill, an approval and a rejection are audited: who (the version's author, approved_by
-- or rejected_by) and when (its time); a rejection's note is its reason.
if audited ~= '' then
  local done = cjson.decode(body)
  local by, why = done['author'], nil
  if audited == 'approve' then by = done['approved_by'] end
  if audited == 'reject' then by, why = done['rejected_by'], done['rejection_note'] end
  audit_add(audited, uri, by, done['updated_at'], why)
end
if idempotent == '1' then
  redis.call('SET', idem, fingerprint .. '\\n' .. state, 'EX', idempotency_ttl_s)
  redis.call('HSET', idem_of, uri, idem)
end
dupe_note()
return {'ok', state, pushed}
""",
)

# XDEL only flags an entry as deleted: its bytes stay in the stream's listpack node until
# every entry of that node is gone, and RDB files and AOF rewrites copy nodes whole. So a
# purge rebuilds the stream from its live entries into ``scratch`` (the same IDs, last ID
# and counters; the consumer groups with their positions, consumers and pending entries)
# and renames it over the old one. Blocked XREAD readers stay blocked, at the same IDs.
_REBUILD = """
local function fields_of(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end
local function rebuild_events()
  if redis.call('XLEN', events) == 0 then return end  -- no node left, no bytes left
  redis.call('DEL', scratch)
  local from = '-'
  while true do
    local batch = redis.call('XRANGE', events, from, '+', 'COUNT', 500)
    for _, e in ipairs(batch) do redis.call('XADD', scratch, e[1], unpack(e[2])) end
    if #batch < 500 then break end
    from = '(' .. batch[#batch][1]
  end
  local info = fields_of(redis.call('XINFO', 'STREAM', events))
  if info['entries-added'] then
    redis.call('XSETID', scratch, info['last-generated-id'], 'ENTRIESADDED',
      info['entries-added'], 'MAXDELETEDID', info['max-deleted-entry-id'])
  else
    redis.call('XSETID', scratch, info['last-generated-id'])
  end
  for _, raw in ipairs(redis.call('XINFO', 'GROUPS', events)) do
    local g = fields_of(raw)
    if g['entries-read'] then
      redis.call('XGROUP', 'CREATE', scratch, g['name'], g['last-delivered-id'],
        'ENTRIESREAD', g['entries-read'])
    else
      redis.call('XGROUP', 'CREATE', scratch, g['name'], g['last-delivered-id'])
    end
    for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', events, g['name'])) do
      redis.call('XGROUP', 'CREATECONSUMER', scratch, g['name'], fields_of(c)['name'])
    end
    local start = '-'
    while true do
      local pending = redis.call('XPENDING', events, g['name'], start, '+', 500)
      for _, p in ipairs(pending) do  -- the purged IDs are no longer there: dropped
        redis.call('XCLAIM', scratch, g['name'], p[2], 0, p[1], 'IDLE', p[3],
          'RETRYCOUNT', p[4], 'FORCE', 'JUSTID')
      end
      if #pending < 500 then break end
      start = '(' .. pending[#pending][1]
    end
  end
  redis.call('RENAME', scratch, events)
end
"""

# A legal takedown: every text of the item leaves every key (its stream entries, its
# record, its versions, its idempotency reply, its entries in the duplicate index, which
# hold a digest of its headline); one record without text stays in ``purged`` and in the
# audit list, and a ``remove`` (kill) entry with no text tells readers and other services
# to drop their copy. ``idem`` is the key named in ``idem_of``
# (or any key of the slot when there is none); the stream is rebuilt (``_REBUILD``).
# Returns {'ok', record} | {'gone', record} | {'unknown'}.
PURGE = Script(
    "purge",
    keys=(
        "events",
        "items",
        "live",
        "expiry",
        "embargo",
        "versions",
        "log",
        "last",
        "idem_of",
        "idem",
        "purged",
        "held",
        "pinned",
        "reach",
        "audit",
        "scratch",
        "dupes",
        "dupes_at",
    ),
    args=("uri", "record", "notice", "schema", "maxlen", "audit_max"),
    body=_AUDIT
    + _REBUILD
    + _DUPES_FORGET
    + """
if redis.call('HEXISTS', items, uri) == 0 then
  local done = redis.call('HGET', purged, uri)
  if done then return {'gone', done} end
  return {'unknown'}
end
local ids = {}
for id in string.gmatch(redis.call('HGET', log, uri) or '', '%S+') do ids[#ids + 1] = id end
for i = 1, #ids, 1000 do
  redis.call('XDEL', events, unpack(ids, i, math.min(i + 999, #ids)))
end
rebuild_events()
if redis.call('HGET', idem_of, uri) == idem then redis.call('DEL', idem) end
redis.call('HDEL', items, uri)
redis.call('HDEL', log, uri)
redis.call('HDEL', idem_of, uri)
redis.call('DEL', versions)
for _, key in ipairs({live, expiry, embargo, last, held}) do redis.call('ZREM', key, uri) end
redis.call('SREM', pinned, uri)
redis.call('HDEL', reach, uri)
dupes_forget(uri)
local rec = cjson.decode(record)
audit_add('purge', uri, rec['purged_by'], rec['purged_at'], rec['reason'])
redis.call('HSET', purged, uri, record)
redis.call('XADD', events, 'MAXLEN', maxlen, '*', 'v', schema, 'type', 'remove', 'uri', uri,
  'reason', 'kill', 'item', notice)
return {'ok', record}
""",
)

# Items whose every stream entry has left the history (trimmed by age or count) and that
# are no longer on the ticker, scheduled or waiting: their data may go. Returns a flat
# list uri, idempotency key ('' if none), ... at most ``limit`` items.
AGED_OUT = Script(
    "aged_out",
    keys=("events", "last", "live", "expiry", "embargo", "idem_of"),
    args=("limit",),
    body="""
local first = redis.call('XRANGE', events, '-', '+', 'COUNT', 1)
local bound = '+inf'
if first[1] then bound = '(' .. string.match(first[1][1], '^(%d+)') end
local out = {}
for _, uri in ipairs(redis.call('ZRANGEBYSCORE', last, '-inf', bound, 'LIMIT', 0, limit)) do
  if not (redis.call('ZSCORE', live, uri) or redis.call('ZSCORE', expiry, uri)
          or redis.call('ZSCORE', embargo, uri)) then
    out[#out + 1] = uri
    out[#out + 1] = redis.call('HGET', idem_of, uri) or ''
  end
end
return out
""",
)

# Forget one aged-out item (AGED_OUT's rule, checked again atomically), its entries in the
# duplicate index too.
FORGET = Script(
    "forget",
    keys=(
        "events",
        "items",
        "live",
        "expiry",
        "embargo",
        "versions",
        "log",
        "last",
        "idem_of",
        "idem",
        "reach",
        "held",
        "dupes",
        "dupes_at",
    ),
    args=("uri",),
    body=_DUPES_FORGET
    + """
local score = redis.call('ZSCORE', last, uri)
if not score then return 0 end
local first = redis.call('XRANGE', events, '-', '+', 'COUNT', 1)
if first[1] and tonumber(score) >= tonumber(string.match(first[1][1], '^(%d+)')) then
  return 0
end
if redis.call('ZSCORE', live, uri) or redis.call('ZSCORE', expiry, uri)
   or redis.call('ZSCORE', embargo, uri) then
  return 0
end
if redis.call('HGET', idem_of, uri) == idem then redis.call('DEL', idem) end
redis.call('HDEL', items, uri)
redis.call('HDEL', log, uri)
redis.call('HDEL', idem_of, uri)
redis.call('ZREM', last, uri)
redis.call('ZREM', held, uri)
redis.call('HDEL', reach, uri)
redis.call('DEL', versions)
dupes_forget(uri)
return 1
""",
)

# Once per channel, for data written before the per-item index existed: index every
# entry still in the stream, and date every item the index does not know (at its
# record's version), so purge and pruning reach old items too. ``marker`` says it ran.
INDEX = Script(
    "index",
    keys=("events", "items", "log", "last", "marker"),
    args=(),
    body="""
if redis.call('EXISTS', marker) == 1 then return 0 end
local seen = {}
for _, entry in ipairs(redis.call('XRANGE', events, '-', '+')) do
  local f = entry[2]
  for i = 1, #f, 2 do
    if f[i] == 'uri' then
      local uri = f[i + 1]
      seen[uri] = (seen[uri] and (seen[uri] .. ' ') or '') .. entry[1]
      redis.call('ZADD', last, tonumber(string.match(entry[1], '^(%d+)')), uri)
    end
  end
end
for uri, ids in pairs(seen) do redis.call('HSET', log, uri, ids) end
local all = redis.call('HGETALL', items)
for i = 1, #all, 2 do
  if not redis.call('ZSCORE', last, all[i]) then
    local ok, rec = pcall(cjson.decode, all[i + 1])
    local ms = 0
    if ok and type(rec) == 'table' and type(rec['id']) == 'string' then
      ms = tonumber(string.match(rec['id'], '^(%d+)')) or 0
    end
    redis.call('ZADD', last, ms, all[i])
  end
end
redis.call('SET', marker, '1')
return 1
""",
)

# Once per channel, for data written before the desk's queue existed: put every held item
# (status withheld, at its version's time) in ``held``. ``marker`` says it ran.
HELD_INDEX = Script(
    "held_index",
    keys=("items", "held", "marker"),
    args=(),
    body="""
if redis.call('EXISTS', marker) == 1 then return 0 end
local all = redis.call('HGETALL', items)
for i = 1, #all, 2 do
  local ok, rec = pcall(cjson.decode, all[i + 1])
  if ok and type(rec) == 'table' and rec['status'] == 'withheld' then
    local ms = 0
    if type(rec['id']) == 'string' then ms = tonumber(string.match(rec['id'], '^(%d+)')) or 0 end
    redis.call('ZADD', held, ms, all[i])
  end
end
redis.call('SET', marker, '1')
return 1
""",
)

# Before the audit list is read: purges recorded before it existed go in (once).
AUDIT_INDEX = Script(
    "audit_index",
    keys=("audit", "purged"),
    args=("audit_max",),
    body=_AUDIT
    + """
if redis.call('EXISTS', audit) == 1 or redis.call('HLEN', purged) == 0 then return 0 end
audit_backfill()
return 1
""",
)

# The position and the items on the ticker, read atomically.
SNAPSHOT = Script(
    "snapshot",
    keys=("events", "items", "live"),
    args=(),
    body="""
local newest = redis.call('XREVRANGE', events, '+', '-', 'COUNT', 1)
local pos = '0-0'
if newest[1] then pos = newest[1][1] end
local uris = redis.call('ZRANGE', live, 0, -1)
local out = {pos}
if #uris > 0 then
  for _, s in ipairs(redis.call('HMGET', items, unpack(uris))) do
    if s then out[#out + 1] = s end
  end
end
return out
""",
)

# Is an entry ID still in the stream (or the very last one)?
KNOWS = Script(
    "knows",
    keys=("events",),
    args=("entry_id",),
    body="""
local hit = redis.call('XRANGE', events, entry_id, entry_id)
if hit[1] then return 1 end
local newest = redis.call('XREVRANGE', events, '+', '-', 'COUNT', 1)
if newest[1] and newest[1][1] == entry_id then return 1 end
return 0
""",
)

# "Last used", kept cheaply: the ``used`` hash (name -> ms) is written at most once a
# minute per token, inside the script that looked the token up anyway. And whether a
# secret is still good: the token has not expired, and the secret is the current one, or
# the one a rotation replaced while its grace lasts. Checked here, in Redis, so an expiry
# or a rotation holds on every process at once. A secret the record still knows but no
# longer takes is "lapsed" (status 4, with the record): ``auth.lapsed`` says why and when,
# by the same two rules (``auth.expired``, ``auth.in_grace``).
_TOKEN_RULES = """
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
"""

# One round trip per write for "who is this, may they write here, and is it within their
# rate" (GCRA). Returns {0} unknown token, {1, record} allowed, {2, record} not this
# channel or not a writing role (not counted), {3, record, ms to wait}, {4, record} lapsed
# (expired, or rotated out and past its grace; not counted).
AUTHORIZE = Script(
    "authorize",
    keys=("tokens", "hashes", "rate", "used"),
    args=("sha256", "channel", "now_ms", "interval_ms", "burst_ms"),
    body=_TOKEN_RULES
    + """
local name = redis.call('HGET', hashes, sha256)
if not name then return {0} end
local record = redis.call('HGET', tokens, name)
if not record then return {0} end
local rec = cjson.decode(record)
local now = tonumber(now_ms)
local status = standing(rec, sha256, now)
if status ~= 1 then return status == 4 and {4, record} or {0} end
touch(name, now)
local allowed = false
for _, ch in ipairs(rec['channels']) do
  if ch == '*' or ch == channel then allowed = true end
end
-- Contributors, editors and chiefs write (auth.WRITE_ROLE and up; a viewer reads, an ops
-- token reads /metrics and /stats): others are refused before their rate is counted.
local role = rec['role'] or 'editor'
if not allowed or (role ~= 'contributor' and role ~= 'editor' and role ~= 'chief') then
  return {2, record}
end
local tat = tonumber(redis.call('GET', rate) or now_ms)
if tat < now then tat = now end
local new_tat = tat + tonumber(interval_ms)
local wait = new_tat - tonumber(burst_ms) - now
if wait > 0 then return {3, record, math.ceil(wait)} end
redis.call('SET', rate, tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return {1, record}
""",
)

# The token behind a digest, for the desk's reads (and "last used"). Returns {0} unknown,
# {1, record} good, {4, record} lapsed.
TOKEN_LOOKUP = Script(
    "token_lookup",
    keys=("tokens", "hashes", "used"),
    args=("sha256", "now_ms"),
    body=_TOKEN_RULES
    + """
local name = redis.call('HGET', hashes, sha256)
if not name then return {0} end
local record = redis.call('HGET', tokens, name)
if not record then return {0} end
local now = tonumber(now_ms)
local status = standing(cjson.decode(record), sha256, now)
if status ~= 1 then return status == 4 and {4, record} or {0} end
touch(name, now)
return {1, record}
""",
)

TOKEN_CREATE = Script(
    "token_create",
    keys=("tokens", "hashes"),
    args=("name", "sha256", "record"),
    body="""
if redis.call('HEXISTS', tokens, name) == 1 then return 0 end
redis.call('HSET', tokens, name, record)
redis.call('HSET', hashes, sha256, name)
return 1
""",
)

TOKEN_REVOKE = Script(
    "token_revoke",
    keys=("tokens", "hashes", "used"),
    args=("name",),
    body="""
local rec = redis.call('HGET', tokens, name)
if not rec then return 0 end
local old = cjson.decode(rec)
redis.call('HDEL', hashes, old['sha256'])
if old['previous_sha256'] then redis.call('HDEL', hashes, old['previous_sha256']) end
redis.call('HDEL', tokens, name)
redis.call('HDEL', used, name)
return 1
""",
)

# A new secret for a token. The one it replaces keeps working for ``grace_ms`` (0: not at
# all), and is remembered after that, so that it is told "rotated" rather than "unknown";
# the secret before it is dropped now (then it is unknown). Returns 0 when there is no token.
TOKEN_ROTATE = Script(
    "token_rotate",
    keys=("tokens", "hashes"),
    args=("name", "sha256", "now_ms", "grace_ms", "rotated_at"),
    body="""
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
""",
)

# Give back one write (a replayed Idempotency-Key wrote nothing); the key keeps its expiry.
REFUND = Script(
    "refund",
    keys=("rate",),
    args=("interval_ms",),
    body="""
local tat = tonumber(redis.call('GET', rate))
if not tat then return 0 end
redis.call('SET', rate, tostring(tat - tonumber(interval_ms)), 'KEEPTTL')
return 1
""",
)

SCRIPTS = (
    COMMIT,
    PURGE,
    AGED_OUT,
    FORGET,
    INDEX,
    HELD_INDEX,
    AUDIT_INDEX,
    SNAPSHOT,
    KNOWS,
    AUTHORIZE,
    TOKEN_LOOKUP,
    TOKEN_CREATE,
    TOKEN_REVOKE,
    TOKEN_ROTATE,
    REFUND,
)
