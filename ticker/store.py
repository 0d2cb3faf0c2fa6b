"""The only module that speaks Redis: key names, the scripts of lua.py, append, read, trim.

Key layout (docs/streams.md is the contract; every key of a channel shares the ``{channel}``
hash tag, so a channel's multi-key scripts stay in one Redis Cluster slot):

    {prefix}:{ch}:events    stream, one entry per event (fields v, type, uri, reason, item)
    {prefix}:{ch}:items     hash uri -> latest version of every item, as JSON
    {prefix}:{ch}:live      zset uri -> created ms, the items on the ticker now
    {prefix}:{ch}:expiry    zset uri -> expires ms, the expiry schedule
    {prefix}:{ch}:embargo   zset uri -> release ms, items waiting for their embargo
    {prefix}:{ch}:held      zset uri -> ms of the hold, items withheld (the desk's queue)
    {prefix}:{ch}:pinned    set of uris: pinned items (no live_max_items push-out)
    {prefix}:{ch}:story:{slug}  set of uris: the channel's editions of a story
    {prefix}:{ch}:reach     hash uri -> readers the item was delivered to (every process)
    {prefix}:{ch}:versions:{uri}  list, every version of an item (the audit trail)
    {prefix}:{ch}:idem:{k}  string, the first reply to an Idempotency-Key (with a TTL)
    {prefix}:{ch}:log       hash uri -> the IDs of the item's stream entries (for purge)
    {prefix}:{ch}:last      zset uri -> ms of the item's newest entry (for pruning)
    {prefix}:{ch}:idem-of   hash uri -> the Idempotency-Key entry that holds its reply
    {prefix}:{ch}:purged    hash uri -> the audit record of a purge (no text)
    {prefix}:{ch}:audit     stream, one entry per kill, purge, approval and rejection
    {prefix}:{ch}:dupes     hash digest of a normal headline -> uri of its newest post
    {prefix}:{ch}:dupes-at  zset digest -> ms of that post (the duplicate window, dupes.py)
    {prefix}:{ch}:indexed   string, set once the per-item index covers older data
    {prefix}:{ch}:held-indexed  string, set once ``held`` covers items held before it existed
    {prefix}:{ch}:ack       string, rewritten before each WAIT (TICKER_ACK_*; see ``_durably``)
    {prefix}:{auth}:tokens  hash name -> token record (JSON, with the SHA-256 of the secret)
    {prefix}:{auth}:hashes  hash sha256 -> name
    {prefix}:{auth}:used    hash name -> ms the token was last used (at most once a minute)
    {prefix}:{auth}:rate:{sha256}  string, the token's write-rate state (GCRA, with a TTL)
    {prefix}:{auth}:ack     string, as {ch}:ack, for the token writes
    {prefix}:{fleet}:procs  zset process id -> ms of its last report (fleet.py)
    {prefix}:{fleet}:proc:{id}  string, the process's last report (JSON, with a TTL)
    {prefix}:{aof}:wanted   string, purges not yet covered by an AOF rewrite (aof.py)
    {prefix}:{aof}:lock     string, ms of the last rewrite asked, for one interval (PX)
    {prefix}:{aof}:asked    string, ms of the last rewrite ticker asked for

Deliberate choices:
- Redis errors become ``StoreUnavailable`` here; nothing above sees ``redis.RedisError``.
- The write client never retries on its own: a retried script after a lost reply could
  commit twice. Clients retry with their Idempotency-Key instead.
- Trimming is exact (``MAXLEN`` without ``~``): a ticker writes a few entries a minute, so
  exactness costs nothing and the replay rules need no second guess.
- Entries other services write are read leniently: the clients decode replies with
  ``errors="replace"`` (redisconn.py), so bytes that are not UTF-8 arrive as U+FFFD instead
  of failing the whole reply (which stalled a channel's reader on one entry). Whether an
  entry is an item is then decided by ``sse.entry_item``.
- Redis Cluster and Sentinel (the clients are built in redisconn.py): every script, pipeline
  and XREAD names keys of one slot (``{channel}`` or ``{auth}``; tests/test_cluster_slots.py
  checks each), and nothing lists keys (no SCAN, no KEYS).
- Acknowledged means durable when ``Ack`` asks (ack.py): an editor's write runs in one
  pipeline with ``WAIT``/``WAITAOF``, on one connection (they count that connection's
  writes), on a cluster on the node of the channel's slot. The sweeper's claimed commits
  do not wait: one lost in a failover left its schedule entry behind, so it is redone.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from redis.exceptions import (
    AskError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
)

from ticker import lua
from ticker.ack import APPLIED, Ack, fsync_problem
from ticker.errors import StoreUnavailable
from ticker.redisconn import RedisConn, open_redis

SCHEMA_VERSION = "1"
# A stream entry's ``type`` and its ``reason`` (docs/streams.md): a removal's, or
# ``release`` on the ``item`` entry of an embargo release (the same version, told apart).
EventType = Literal["item", "remove"]
Reason = Literal["kill", "withhold", "expire", "release"]
# The changes the channel's audit list records besides purges.
Audited = Literal["", "kill", "approve", "reject"]
# The two schedules a sweeper claims from.
Schedule = Literal["expiry", "embargo"]
# The audit list keeps this many records per channel (kills, purges and sign-offs: years).
AUDIT_MAX_ITEMS = 100_000
# The largest stream ID Redis can hold (each part is an unsigned 64-bit number).
_LAST_ID = f"{2**64 - 1}-{2**64 - 1}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry as read from Redis."""

    id: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class HeadlineNote:
    """A post's part in the duplicate rule (dupes.py): ``digest`` (of its normal headline)
    is noted as posted at ``at_ms``; with ``check``, the post is refused instead when an
    item was noted under the same digest within ``window_ms`` (``ignore``: that one's uri
    does not count)."""

    digest: str
    at_ms: int
    window_ms: int
    check: bool = True
    ignore: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    """One atomic write: the event to append and what it does to the item's state."""

    uri: str
    expected_version: int
    event_type: EventType
    body: str  # the item's JSON without ``id``
    history_max_items: int
    live_max_items: int
    versions_ttl_ms: int
    reason: Reason | Literal[""] = ""
    live_score: int | None = None  # on the ticker (created ms), or off it
    expires_ms: int | None = None  # in the expiry schedule, or not
    embargo_ms: int | None = None  # waiting for release, or not
    held_ms: int | None = None  # withheld (in the queue), or not
    pinned: bool = False  # holds one of the channel's pins, or not
    pin_max: int = 3
    idempotency: tuple[str, str] | None = None  # (key, request fingerprint)
    idempotency_ttl_s: int = 86400
    claim: Schedule | Literal[""] = ""  # only commit if this process wins the claim
    keep_state: bool = False  # an event about the item that makes no new version
    audited: Audited = ""  # recorded in the channel's audit list
    headline: HeadlineNote | None = None  # a post's duplicate check and note (dupes.py)
    notice: str | None = None  # a kill's note for readers: the entry's ``notice`` field


@dataclass(frozen=True, slots=True)
class Keys:
    events: str
    items: str
    live: str
    expiry: str
    embargo: str
    held: str
    pinned: str
    story_prefix: str
    reach: str
    idem_prefix: str
    versions_prefix: str
    log: str
    last: str
    idem_of: str
    purged: str
    audit: str
    dupes: str
    dupes_at: str
    indexed: str
    held_indexed: str
    ack: str

    def of(self, script: lua.Script, **given: str) -> dict[str, str]:
        """The KEYS of a channel script by name: a key named like a field is that field;
        the per-item and per-call ones (``versions``, ``idem``, ``marker``...) are given."""
        return {name: given[name] if name in given else getattr(self, name) for name in script.keys}


# How long a request waits for a free Redis connection before it is answered 503.
POOL_WAIT_S = 5.0


class _Call:
    """Around every command: Redis errors become ``StoreUnavailable``; with a ``gate``
    (cluster, Sentinel), wait up to ``POOL_WAIT_S`` for one of the connections first.
    A class, reused, because a generator-based context manager per command showed up
    in the publish profile."""

    __slots__ = ("_gate",)

    def __init__(self, gate: asyncio.Semaphore | None) -> None:
        self._gate = gate

    async def __aenter__(self) -> None:
        if self._gate is not None:
            try:
                async with asyncio.timeout(POOL_WAIT_S):
                    await self._gate.acquire()
            except TimeoutError:
                raise StoreUnavailable("Redis is unavailable (no free connection)") from None

    async def __aexit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if self._gate is not None:
            self._gate.release()
        # RedisClusterException (no slot map yet, no node reachable) is not a RedisError.
        if isinstance(exc, (RedisError, RedisClusterException, OSError)):
            raise StoreUnavailable(f"Redis is unavailable ({type(exc).__name__})") from exc


_wrapped = _Call(None)


class Store:
    """Typed access to a channel's keys; one per process, shared by every request."""

    def __init__(
        self, url: str, *, prefix: str, max_connections: int = 64, ack: Ack = APPLIED
    ) -> None:
        self._url = url
        self.prefix = prefix
        self.ack = ack
        # One server: a client over a blocking pool. A cluster (redis+cluster://): one
        # RedisCluster, max_connections per node. Sentinel: the primary's client.
        self._conn: RedisConn = open_redis(url, max_connections=max_connections)
        self.redis: Any = self._conn.client
        # Cluster and Sentinel pools raise at once when they are exhausted; this queues
        # callers instead, as the blocking pool does (a command holds at most one
        # connection per node, so the per-node cap is never reached).
        self._calls = _Call(None if self._conn.queues else asyncio.Semaphore(max_connections))
        for script in lua.SCRIPTS:
            setattr(self, f"_{script.name}", self.redis.register_script(script.source))

    async def _run(
        self,
        script: lua.Script,
        keys: dict[str, str],
        args: dict[str, Any] | None = None,
        *,
        barrier: str | None = None,
    ) -> Any:
        """Run one of lua.py's scripts with named KEYS and ARGV. With a ``barrier`` key (of
        the same slot), a write that is answered only once ``self.ack`` is met."""
        key_list, arg_list = script.call(keys, args)
        runner = getattr(self, f"_{script.name}")
        if barrier is None or not self.ack.wanted:
            async with self._call():
                return await runner(keys=key_list, args=arg_list)
        evalsha = ("EVALSHA", runner.sha, len(key_list), *key_list, *arg_list)
        return (await self._durably(barrier, evalsha, source=script.source))[0]

    async def _durably(
        self, barrier: str, *commands: tuple[Any, ...], source: str | None = None
    ) -> list[Any]:
        """``commands``, then a write of ``barrier`` and ``WAIT``/``WAITAOF`` in one
        pipeline: one connection, so the wait covers these writes (a cluster pipeline
        sends a node's commands on one connection; each is sent to the barrier's node).
        The barrier write makes the wait cover everything the primary had before it,
        also when ``commands`` wrote nothing (a replayed Idempotency-Key, a kill of a
        killed item): such an answer is then as durable as the first. Returns their
        replies; ``NotDurable`` when ``self.ack`` is not met. ``source``: the script
        that an ``EVALSHA`` among ``commands`` runs, loaded when Redis lacks it."""
        for _ in range(3):
            replies = await self._pipeline_and_wait(barrier, commands)
            # NOSCRIPT, or a cluster redirection (MOVED is an AskError): nothing ran.
            missing = any(isinstance(r, NoScriptError) for r in replies)
            moved = any(isinstance(r, AskError) for r in replies)
            if not (missing or moved):
                break
            async with self._call():
                if missing and source is not None:
                    await self.redis.script_load(source)
                if moved:
                    await self.redis.aclose()  # reconnects and re-reads the slot map
        else:
            raise StoreUnavailable("Redis is unavailable (the channel's slot is moving)")
        for reply in replies[:-1]:
            if isinstance(reply, Exception):
                async with _wrapped:
                    raise reply  # a command failed: StoreUnavailable, as for any command
        self.ack.check(replies[-1])
        return list(replies[: len(commands)])

    async def _pipeline_and_wait(
        self, barrier: str, commands: Sequence[tuple[Any, ...]]
    ) -> list[Any]:
        async with self._call():
            target: dict[str, Any] = {}
            if self._conn.cluster:
                await self.redis.initialize()
                target = {"target_nodes": self.redis.get_node_from_key(barrier)}
            async with self.redis.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command, **target)
                pipe.execute_command("SET", barrier, "1", **target)
                pipe.execute_command(*self.ack.command(), **target)
                if self._conn.cluster:
                    # A redirected command would be sent again on another connection,
                    # out of the wait's reach: _durably sends them all again instead.
                    return list(await pipe.execute(raise_on_error=False, allow_redirections=False))
                return list(await pipe.execute(raise_on_error=False))

    async def settle(self, channel: str) -> None:
        """Wait until what the primary has now meets ``self.ack`` (nothing when it asks for
        nothing): for an answer that writes nothing, so rests on an earlier write."""
        if self.ack.wanted:
            await self._durably(self.keys(channel).ack)

    async def close(self) -> None:
        await self._conn.aclose()

    def _call(self) -> _Call:
        return self._calls

    def keys(self, channel: str) -> Keys:
        base = f"{self.prefix}:{{{channel}}}"
        return Keys(
            events=f"{base}:events",
            items=f"{base}:items",
            live=f"{base}:live",
            expiry=f"{base}:expiry",
            embargo=f"{base}:embargo",
            held=f"{base}:held",
            pinned=f"{base}:pinned",
            story_prefix=f"{base}:story:",
            reach=f"{base}:reach",
            idem_prefix=f"{base}:idem:",
            versions_prefix=f"{base}:versions:",
            log=f"{base}:log",
            last=f"{base}:last",
            idem_of=f"{base}:idem-of",
            purged=f"{base}:purged",
            audit=f"{base}:audit",
            dupes=f"{base}:dupes",
            dupes_at=f"{base}:dupes-at",
            indexed=f"{base}:indexed",
            held_indexed=f"{base}:held-indexed",
            ack=f"{base}:ack",
        )

    def _rate_key(self, sha256: str) -> str:
        return f"{self.prefix}:{{auth}}:rate:{sha256}"

    def _auth_keys(self) -> tuple[str, str]:
        base = f"{self.prefix}:{{auth}}"
        return f"{base}:tokens", f"{base}:hashes"

    def _fleet_keys(self) -> tuple[str, str]:
        base = f"{self.prefix}:{{fleet}}"
        return f"{base}:procs", f"{base}:proc:"

    def _auth_barrier(self) -> str:
        return f"{self.prefix}:{{auth}}:ack"

    def _used_key(self) -> str:
        return f"{self.prefix}:{{auth}}:used"

    async def ping(self) -> None:
        async with self._call():
            await self.redis.ping()

    async def ack_problem(self) -> str | None:
        """Why this Redis cannot give what ``self.ack`` asks for, for a start-up error;
        None when it can (replicas are counted per write: they may be reconnecting)."""
        if not self.ack.fsync:
            return None
        async with self._call():
            info = await self.redis.info()
        # A cluster answers for each node; every primary must have WAITAOF and an AOF.
        nodes = [info] if "redis_version" in info else list(info.values())
        for node in nodes:
            problem = fsync_problem(node)
            if problem:
                return problem
        return None

    # -- writes --------------------------------------------------------------------------

    async def commit(self, channel: str, change: Change) -> tuple[str, str, int]:
        """Append one event and update the item's state atomically.

        Returns (``ok`` | ``dup`` | ``conflict`` | ``claimed`` | ``too_many_pins`` |
        ``duplicate``, the stored JSON (``duplicate``: the other item's), how many
        ``remove`` entries ``live_max_items`` pushed out besides the event).
        """
        c = change
        if not c.body.startswith("{") or c.body == "{}":
            raise ValueError("body must be a non-empty JSON object")
        k = self.keys(channel)
        idem_key, fingerprint = c.idempotency if c.idempotency else ("-", "")
        claim_key = {"expiry": k.expiry, "embargo": k.embargo}.get(c.claim, k.expiry)
        note = c.headline

        def opt(value: int | None) -> int | str:
            return "" if value is None else value

        reply = await self._run(
            lua.COMMIT,
            keys=k.of(
                lua.COMMIT,
                idem=k.idem_prefix + idem_key,
                versions=k.versions_prefix + c.uri,
                claim_set=claim_key,
            ),
            args={
                "uri": c.uri,
                "expected_version": c.expected_version,
                "event_type": c.event_type,
                "reason": c.reason,
                "body": c.body,
                "live_score": opt(c.live_score),
                "expires_ms": opt(c.expires_ms),
                "idempotent": "1" if c.idempotency else "0",
                "fingerprint": fingerprint,
                "idempotency_ttl_s": c.idempotency_ttl_s,
                "maxlen": c.history_max_items,
                "schema": SCHEMA_VERSION,
                "live_max": c.live_max_items,
                "embargo_ms": opt(c.embargo_ms),
                "claimed": "1" if c.claim else "0",
                "keep_state": "1" if c.keep_state else "0",
                "versions_ttl_ms": c.versions_ttl_ms,
                "held_ms": opt(c.held_ms),
                "pin": "1" if c.pinned else "0",
                "pin_max": c.pin_max,
                "audited": c.audited,
                "audit_max": AUDIT_MAX_ITEMS,
                "dupe_digest": note.digest if note else "",
                "dupe_check": "1" if note and note.check else "0",
                "dupe_ignore": note.ignore if note else "",
                "dupe_at_ms": note.at_ms if note else 0,
                "dupe_window_ms": note.window_ms if note else 0,
                "public_notice": c.notice or "",
            },
            # A claimed commit (the sweeper's) lost in a failover is redone: no wait.
            barrier=None if c.claim else k.ack,
        )
        return str(reply[0]), str(reply[1]), int(reply[2]) if len(reply) > 2 else 0

    async def due(
        self, channel: str, schedule: Schedule, now_ms: int, limit: int = 100
    ) -> list[str]:
        """Items whose expiry (or embargo) time has come, oldest first."""
        k = self.keys(channel)
        key = k.expiry if schedule == "expiry" else k.embargo
        async with self._call():
            uris: list[str] = await self.redis.zrangebyscore(
                key, "-inf", now_ms, start=0, num=limit
            )
        return uris

    async def trim_before(self, channel: str, min_id: str) -> int:
        """Exact ``XTRIM MINID``: the history age rule."""
        async with self._call():
            removed: int = await self.redis.xtrim(
                self.keys(channel).events, minid=min_id, approximate=False
            )
        return removed

    async def stats(self, channel: str) -> dict[str, Any]:
        """Sizes and ends of a channel's keys, for ``ticker stats``."""
        k = self.keys(channel)
        async with self._call(), self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(k.live)
            pipe.xlen(k.events)
            pipe.xrange(k.events, count=1)
            pipe.xrevrange(k.events, count=1)
            live, length, first, last = await pipe.execute()
        return {
            "live": live,
            "history": length,
            "oldest_id": first[0][0] if first else None,
            "last_id": last[0][0] if last else None,
        }

    async def audit(self, channel: str, *, before: str | None, count: int) -> list[Entry]:
        """The audit list (kills, purges, approvals, rejections), newest first, strictly
        before ``before``."""
        if before == "0-0":
            return []
        k = self.keys(channel)
        await self._run(lua.AUDIT_INDEX, k.of(lua.AUDIT_INDEX), {"audit_max": AUDIT_MAX_ITEMS})
        async with self._call():
            rows = await self.redis.xrevrange(
                k.audit, max=f"({before}" if before else "+", count=count
            )
        return [Entry(i, f) for i, f in rows]

    async def versions(self, channel: str, uri: str) -> list[str]:
        async with self._call():
            rows: list[str] = await self.redis.lrange(
                self.keys(channel).versions_prefix + uri, 0, -1
            )
        return rows

    async def history(self, channel: str, *, before: str | None, count: int) -> list[Entry]:
        """Entries newest first, strictly before ``before``."""
        if before == "0-0":
            return []  # nothing is older (and Redis refuses the interval)
        async with self._call():
            rows = await self.redis.xrevrange(
                self.keys(channel).events, max=f"({before}" if before else "+", count=count
            )
        return [Entry(i, f) for i, f in rows]

    async def purge(
        self, channel: str, uri: str, *, audit: dict[str, Any], history_max_items: int
    ) -> tuple[str, dict[str, Any] | None]:
        """Remove every text of an item from Redis (``lua.PURGE``). Returns (``ok`` |
        ``gone`` (purged before) | ``unknown``, the audit record)."""
        k = self.keys(channel)
        async with self._call():
            idem = await self.redis.hget(k.idem_of, uri)
        notice = json.dumps({"uri": uri, "channel": channel, "status": "canceled", "purged": True})
        reply = await self._run(
            lua.PURGE,
            k.of(
                lua.PURGE,
                versions=k.versions_prefix + uri,
                idem=idem or k.idem_prefix + "-",
                scratch=k.events + ":rebuild",
            ),
            {
                "uri": uri,
                "record": json.dumps(audit),
                "notice": notice,
                "schema": SCHEMA_VERSION,
                "maxlen": history_max_items,
                "audit_max": AUDIT_MAX_ITEMS,
            },
            barrier=k.ack,
        )
        return str(reply[0]), json.loads(reply[1]) if len(reply) > 1 else None

    async def prune(self, channel: str, *, limit: int = 100) -> int:
        """Forget items whose every stream entry has left the history: record, versions,
        index and idempotency reply. Returns how many went. (First, once per channel, the
        indexes of data written before they existed.)"""
        k = self.keys(channel)
        await self._run(lua.INDEX, k.of(lua.INDEX, marker=k.indexed))
        await self._run(lua.HELD_INDEX, k.of(lua.HELD_INDEX, marker=k.held_indexed))
        found: list[str] = await self._run(lua.AGED_OUT, k.of(lua.AGED_OUT), {"limit": limit})
        forgotten = 0
        for uri, idem in zip(found[::2], found[1::2], strict=True):
            forgotten += await self._run(
                lua.FORGET,
                k.of(
                    lua.FORGET, versions=k.versions_prefix + uri, idem=idem or k.idem_prefix + "-"
                ),
                {"uri": uri},
            )
        return forgotten

    async def items(self, channel: str, uris: Sequence[str]) -> dict[str, str]:
        """The latest version of each of ``uris`` that has a record."""
        if not uris:
            return {}
        async with self._call():
            rows: list[str | None] = await self.redis.hmget(self.keys(channel).items, uris)
        return {u: r for u, r in zip(uris, rows, strict=True) if r is not None}

    async def link_story(self, channel: str, story: str, uri: str, *, ttl_ms: int) -> None:
        """Add an item to its story's editions on this channel; the set lasts as long as
        the history (each new edition extends it)."""
        k = self.keys(channel)
        key = k.story_prefix + story
        if self.ack.wanted:
            await self._durably(k.ack, ("SADD", key, uri), ("PEXPIRE", key, ttl_ms))
            return
        async with self._call(), self.redis.pipeline(transaction=False) as pipe:
            pipe.sadd(key, uri)
            pipe.pexpire(key, ttl_ms)
            await pipe.execute()

    async def add_reach(self, channel: str, counts: dict[str, int]) -> None:
        """Add deliveries to items' reach: one round trip for a whole batch of items."""
        key = self.keys(channel).reach
        async with self._call(), self.redis.pipeline(transaction=False) as pipe:
            for uri, count in counts.items():
                pipe.hincrby(key, uri, count)
            await pipe.execute()

    # -- reads ---------------------------------------------------------------------------

    async def reach(self, channel: str, uris: Sequence[str]) -> dict[str, int]:
        """How many readers each item was delivered to (0: none yet)."""
        if not uris:
            return {}
        async with self._call():
            rows: list[str | None] = await self.redis.hmget(self.keys(channel).reach, uris)
        return {u: int(r or 0) for u, r in zip(uris, rows, strict=True)}

    async def story(self, channel: str, story: str) -> list[str]:
        """The JSON of this channel's editions of a story (records still held)."""
        async with self._call():
            uris: set[str] = await self.redis.smembers(self.keys(channel).story_prefix + story)
        return list((await self.items(channel, sorted(uris))).values())

    async def queue(self, channel: str) -> list[str]:
        """The JSON of every item that is held or waiting for its embargo."""
        k = self.keys(channel)
        async with self._call(), self.redis.pipeline(transaction=False) as pipe:
            pipe.zrange(k.held, 0, -1)
            pipe.zrange(k.embargo, 0, -1)
            held, waiting = await pipe.execute()
        uris = sorted(set(held) | set(waiting))
        return list((await self.items(channel, uris)).values())

    async def item(self, channel: str, uri: str) -> str | None:
        async with self._call():
            value: str | None = await self.redis.hget(self.keys(channel).items, uri)
        return value

    async def idempotent_reply(self, channel: str, scope: str) -> str | None:
        """The stored first reply to an Idempotency-Key (fingerprint, newline, item)."""
        async with self._call():
            value: str | None = await self.redis.get(self.keys(channel).idem_prefix + scope)
        return value

    async def snapshot(self, channel: str) -> tuple[str, list[str]]:
        """The stream position and the JSON of every item on the ticker, read atomically."""
        k = self.keys(channel)
        out: list[str] = await self._run(lua.SNAPSHOT, k.of(lua.SNAPSHOT))
        return out[0], out[1:]

    async def alive(self, channel: str) -> tuple[str, list[str]]:
        """The stream position and the JSON of every item in the expiry schedule (every
        item not yet expired or killed, on the ticker or not), read atomically: the
        snapshot script over the schedule instead of the ticker."""
        k = self.keys(channel)
        out: list[str] = await self._run(lua.SNAPSHOT, k.of(lua.SNAPSHOT, live=k.expiry))
        return out[0], out[1:]

    async def knows(self, channel: str, entry_id: str) -> bool:
        """True when resuming after ``entry_id`` cannot skip anything the stream had."""
        events = self.keys(channel).events
        return bool(await self._run(lua.KNOWS, {"events": events}, {"entry_id": entry_id}))

    async def last_id(self, channel: str) -> str:
        async with self._call():
            last = await self.redis.xrevrange(self.keys(channel).events, count=1)
        return str(last[0][0]) if last else "0-0"

    async def range_after(self, channel: str, after: str, count: int) -> list[Entry]:
        """Entries strictly after ``after``, oldest first."""
        if after == _LAST_ID:
            return []  # nothing is newer (and Redis refuses the interval)
        async with self._call():
            rows = await self.redis.xrange(self.keys(channel).events, min=f"({after}", count=count)
        return [Entry(i, f) for i, f in rows]

    @asynccontextmanager
    async def tail(self, channel: str, *, block_ms: int) -> AsyncIterator[Tail]:
        """A dedicated connection for one channel's blocking reader."""
        # The socket timeout outlasts one BLOCK, so a half-open connection is still noticed.
        # On a cluster this is a client of its own (one connection per node it reads from):
        # after a failover its read fails, the hub's reader opens a new tail, and the new
        # client learns the slot map afresh.
        conn = open_redis(
            self._url,
            socket_timeout=block_ms / 1000 + 5,
            # CLIENT LIST tells apart the readers of deployments that share a Redis.
            name=f"ticker-reader:{self.prefix}:{channel}",
            max_connections=1,
        )
        try:
            yield Tail(conn, self.keys(channel).events)
        finally:
            await conn.aclose()

    # -- the fleet (fleet.py) -------------------------------------------------------------

    async def fleet_report(self, member: str, record: str, *, now_ms: int, ttl_ms: int) -> None:
        """A process's report: its own key with a TTL, and its time in the index."""
        procs, proc = self._fleet_keys()
        async with self._call(), self.redis.pipeline(transaction=False) as pipe:
            pipe.set(proc + member, record, px=ttl_ms)
            pipe.zadd(procs, {member: now_ms})
            pipe.zremrangebyscore(procs, "-inf", now_ms - ttl_ms)
            await pipe.execute()

    async def fleet_members(self, *, now_ms: int, ttl_ms: int) -> list[str]:
        """The reports of the processes seen within ``ttl_ms``; the index is pruned of
        the rest (the index is read, never listed keys: SCAN does not span a cluster)."""
        procs, proc = self._fleet_keys()
        async with self._call():
            await self.redis.zremrangebyscore(procs, "-inf", now_ms - ttl_ms)
            members: list[str] = await self.redis.zrange(procs, 0, -1)
        if not members:
            return []
        async with self._call(), self.redis.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.get(proc + member)
            rows: list[str | None] = await pipe.execute()
        gone = [m for m, row in zip(members, rows, strict=True) if row is None]
        if gone:
            async with self._call():
                await self.redis.zrem(procs, *gone)
        return [row for row in rows if row is not None]

    async def fleet_leave(self, member: str) -> None:
        procs, proc = self._fleet_keys()
        async with self._call(), self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(proc + member)
            pipe.zrem(procs, member)
            await pipe.execute()

    # -- the append-only file (aof.py) ----------------------------------------------------

    def _aof_keys(self) -> tuple[str, str, str]:
        base = f"{self.prefix}:{{aof}}"
        return f"{base}:wanted", f"{base}:lock", f"{base}:asked"

    def _every_primary(self) -> dict[str, Any]:
        # Each primary of a cluster has its own AOF; one server or Sentinel: the primary.
        return {"target_nodes": "primaries"} if self._conn.cluster else {}

    async def aof_info(self) -> list[dict[str, Any]] | None:
        """``INFO persistence`` of the server (of each primary, on a cluster), or ``None``
        where Redis refuses INFO (some managed services)."""
        try:
            async with self._call():
                reply: dict[str, Any] = await self.redis.info(
                    "persistence", **self._every_primary()
                )
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, ResponseError):
                return None
            raise
        # A cluster answers one reply per node, by node name.
        if reply and all(isinstance(v, dict) for v in reply.values()):
            return list(reply.values())
        return [reply]

    async def rewrite_request(self, now_ms: int) -> int:
        """Count one more purge waiting for a rewrite; the ms when it is due (now, or when
        the current interval's lock ends)."""
        wanted, lock, _ = self._aof_keys()
        async with self._call(), self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(wanted)
            pipe.pttl(lock)
            _, left = await pipe.execute()
        return now_ms + max(0, int(left))

    async def rewrite_state(self) -> tuple[int, int, int | None]:
        """(purges waiting, ms left on the interval's lock (0: none), ms of the last
        rewrite asked for or ``None``)."""
        wanted, lock, asked = self._aof_keys()
        async with self._call(), self.redis.pipeline(transaction=False) as pipe:
            pipe.get(wanted)
            pipe.pttl(lock)
            pipe.get(asked)
            count, left, when = await pipe.execute()
        return int(count or 0), max(0, int(left)), int(when) if when else None

    async def rewrite_lock(self, now_ms: int, ttl_ms: int) -> bool:
        """Take the interval's lock (one rewrite per interval, across the fleet)."""
        async with self._call():
            return bool(await self.redis.set(self._aof_keys()[1], now_ms, nx=True, px=ttl_ms))

    async def rewrite_unlock(self) -> None:
        async with self._call():
            await self.redis.delete(self._aof_keys()[1])

    async def bgrewriteaof(self) -> str:
        """``started``, ``busy`` (a rewrite already runs), or why Redis refused."""
        try:
            async with self._call():
                await self.redis.bgrewriteaof(**self._every_primary())
        except StoreUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ResponseError):
                return "busy" if "in progress" in str(cause) else f"refused: {cause}"
            raise
        return "started"

    async def rewrite_covered(self, count: int, *, asked_ms: int | None) -> None:
        """``count`` purges are covered (by a rewrite asked at ``asked_ms``, or by none
        being needed); purges counted since stay waiting."""
        wanted, _, asked = self._aof_keys()
        async with self._call(), self.redis.pipeline(transaction=False) as pipe:
            pipe.decrby(wanted, count)
            if asked_ms is not None:
                pipe.set(asked, asked_ms)
            await pipe.execute()

    # -- tokens --------------------------------------------------------------------------

    async def token_create(self, name: str, sha256: str, record: dict[str, Any]) -> bool:
        tokens, hashes = self._auth_keys()
        return bool(
            await self._run(
                lua.TOKEN_CREATE,
                {"tokens": tokens, "hashes": hashes},
                {"name": name, "sha256": sha256, "record": json.dumps(record)},
                barrier=self._auth_barrier(),
            )
        )

    async def token_revoke(self, name: str) -> bool:
        tokens, hashes = self._auth_keys()
        keys = {"tokens": tokens, "hashes": hashes, "used": self._used_key()}
        return bool(
            await self._run(lua.TOKEN_REVOKE, keys, {"name": name}, barrier=self._auth_barrier())
        )

    async def token_rotate(self, name: str, sha256: str, *, now_ms: int, grace_ms: int) -> bool:
        tokens, hashes = self._auth_keys()
        args = {
            "name": name,
            "sha256": sha256,
            "now_ms": now_ms,
            "grace_ms": grace_ms,
            "rotated_at": datetime.fromtimestamp(now_ms / 1000, UTC).isoformat(),
        }
        keys = {"tokens": tokens, "hashes": hashes}
        return bool(await self._run(lua.TOKEN_ROTATE, keys, args, barrier=self._auth_barrier()))

    async def tokens(self) -> list[dict[str, Any]]:
        """Every token record, by name, with ``last_used_ms`` (``None``: never used)."""
        async with self._call(), self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._auth_keys()[0])
            pipe.hgetall(self._used_key())
            raw, used = await pipe.execute()
        rows = []
        for name, value in sorted(raw.items()):
            record = json.loads(value)
            record["last_used_ms"] = int(used[name]) if name in used else None
            rows.append(record)
        return rows

    async def authorize(
        self, sha256: str, channel: str, *, now_ms: int, interval_ms: float, burst: int
    ) -> tuple[int, dict[str, Any] | None, int]:
        """(status, token record, ms to wait): see ``lua.AUTHORIZE``."""
        tokens, hashes = self._auth_keys()
        rate = self._rate_key(sha256)
        reply = await self._run(
            lua.AUTHORIZE,
            {"tokens": tokens, "hashes": hashes, "rate": rate, "used": self._used_key()},
            {
                "sha256": sha256,
                "channel": channel,
                "now_ms": now_ms,
                "interval_ms": interval_ms,
                "burst_ms": interval_ms * burst,
            },
        )
        record = json.loads(reply[1]) if len(reply) > 1 else None
        return int(reply[0]), record, int(reply[2]) if len(reply) > 2 else 0

    async def refund(self, sha256: str, *, interval_ms: float) -> None:
        """Undo one write's worth of ``authorize``'s rate accounting."""
        await self._run(lua.REFUND, {"rate": self._rate_key(sha256)}, {"interval_ms": interval_ms})

    async def token_by_hash(self, sha256: str, *, now_ms: int) -> tuple[int, dict[str, Any] | None]:
        """(status, the token record behind a digest): see ``lua.TOKEN_LOOKUP``. A desk
        read: a good secret counts as "last used"."""
        tokens, hashes = self._auth_keys()
        reply = await self._run(
            lua.TOKEN_LOOKUP,
            {"tokens": tokens, "hashes": hashes, "used": self._used_key()},
            {"sha256": sha256, "now_ms": now_ms},
        )
        return int(reply[0]), json.loads(reply[1]) if len(reply) > 1 else None


class Tail:
    """Blocking reads of one stream from a concrete last ID (never ``$``)."""

    def __init__(self, conn: RedisConn, key: str) -> None:
        self._conn = conn
        self._key = key

    async def read(self, after: str, *, count: int, block_ms: int) -> Sequence[Entry]:
        client = self._conn.client
        async with _wrapped:
            if self._conn.cluster:
                # Straight to the node that owns the stream's slot: redis-py would ask a
                # node for XREAD's keys (COMMAND GETKEYS) before every read. A MOVED reply
                # is still followed, and updates the slot map for the next read.
                await client.initialize()
                node = client.get_node_from_key(self._key)
                args = ("COUNT", count, "BLOCK", block_ms, "STREAMS", self._key, after)
                reply = await client.execute_command("XREAD", *args, target_nodes=node)
            else:
                reply = await client.xread({self._key: after}, count=count, block=block_ms)
        if not reply:
            return []
        # redis-py answers a list of [stream, entries] (RESP2) or a dict (RESP3).
        rows = reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))[0]
        return [Entry(i, f) for i, f in rows]
