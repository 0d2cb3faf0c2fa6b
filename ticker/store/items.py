"""``store.items``: a channel's items, their writes (commit, purge, prune) and reads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ticker.store.change import AUDIT_MAX_ITEMS, NO_NOTE, SCHEMA_VERSION, Change, Schedule
from ticker.store.client import Client
from ticker.store.keys import Keys, channel_keys
from ticker.store.tail import Entry


class Items:
    def __init__(self, client: Client, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    def _keys(self, channel: str) -> Keys:
        return channel_keys(self._prefix, channel)

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
        k = self._keys(channel)
        idem_key, fingerprint = c.idempotency if c.idempotency else ("-", "")
        script = self._client.scripts["commit"]
        # commit.lua's ARGV are the change's fields and its headline note's, by name.
        args = script.args_from(
            c,
            c.headline or NO_NOTE,
            idempotency=c.idempotency is not None,
            fingerprint=fingerprint,
            schema_version=SCHEMA_VERSION,
            audit_max_items=AUDIT_MAX_ITEMS,
        )
        reply = await self._client.run(
            "commit",
            k.of(
                script,
                idem=k.idem_prefix + idem_key,
                versions=k.versions_prefix + c.uri,
                claim_set={"expiry": k.expiry, "embargo": k.embargo}.get(c.claim, k.expiry),
            ),
            args,
            # A claimed commit (the sweeper's) lost in a failover is redone: no wait.
            barrier=None if c.claim else k.ack,
        )
        return str(reply[0]), str(reply[1]), int(reply[2]) if len(reply) > 2 else 0

    async def purge(
        self, channel: str, uri: str, *, audit: dict[str, Any], history_max_items: int
    ) -> tuple[str, dict[str, Any] | None]:
        """Remove every text of an item from Redis (purge.lua). Returns (``ok`` | ``gone``
        (purged before) | ``unknown``, the audit record)."""
        k = self._keys(channel)
        async with self._client.call:
            idem = await self._client.redis.hget(k.idem_of, uri)
        notice = json.dumps({"uri": uri, "channel": channel, "status": "canceled", "purged": True})
        reply = await self._client.run(
            "purge",
            k.of(
                self._client.scripts["purge"],
                versions=k.versions_prefix + uri,
                idem=idem or k.idem_prefix + "-",
                scratch=k.events + ":rebuild",
            ),
            {
                "uri": uri,
                "record": json.dumps(audit),
                "notice": notice,
                "schema_version": SCHEMA_VERSION,
                "history_max_items": history_max_items,
                "audit_max_items": AUDIT_MAX_ITEMS,
            },
            barrier=k.ack,
        )
        return str(reply[0]), json.loads(reply[1]) if len(reply) > 1 else None

    async def prune(self, channel: str, *, limit: int = 100) -> int:
        """Forget items whose every stream entry has left the history: record, versions,
        index and idempotency reply. Returns how many went. (First, once per channel, the
        indexes of data written before they existed.)"""
        k = self._keys(channel)
        run, scripts = self._client.run, self._client.scripts
        await run("index", k.of(scripts["index"], marker=k.indexed))
        await run("held_index", k.of(scripts["held_index"], marker=k.held_indexed))
        found: list[str] = await run("aged_out", k.of(scripts["aged_out"]), {"limit": limit})
        forgotten = 0
        for uri, idem in zip(found[::2], found[1::2], strict=True):
            versions, idem = k.versions_prefix + uri, idem or k.idem_prefix + "-"
            keys = k.of(scripts["forget"], versions=versions, idem=idem)
            forgotten += await run("forget", keys, {"uri": uri})
        return forgotten

    async def link_story(self, channel: str, story: str, uri: str, *, ttl_ms: int) -> None:
        """Add an item to its story's editions on this channel; the set lasts as long as
        the history (each new edition extends it)."""
        k = self._keys(channel)
        key = k.story_prefix + story
        if self._client.ack.wanted:
            await self._client.durably(k.ack, ("SADD", key, uri), ("PEXPIRE", key, ttl_ms))
            return
        async with self._client.call, self._client.redis.pipeline(transaction=False) as pipe:
            pipe.sadd(key, uri)
            pipe.pexpire(key, ttl_ms)
            await pipe.execute()

    async def add_reach(self, channel: str, counts: dict[str, int]) -> None:
        """Add deliveries to items' reach: one round trip for a whole batch of items."""
        key = self._keys(channel).reach
        async with self._client.call, self._client.redis.pipeline(transaction=False) as pipe:
            for uri, count in counts.items():
                pipe.hincrby(key, uri, count)
            await pipe.execute()

    async def trim_before(self, channel: str, min_id: str) -> int:
        """Exact ``XTRIM MINID``: the history age rule. (Trimming is exact, ``MAXLEN``
        without ``~`` too: a ticker writes a few entries a minute, so exactness costs
        nothing and the replay rules need no second guess.)"""
        events = self._keys(channel).events
        async with self._client.call:
            removed: int = await self._client.redis.xtrim(events, minid=min_id, approximate=False)
        return removed

    # -- reads ---------------------------------------------------------------------------

    async def due(
        self, channel: str, schedule: Schedule, now_ms: int, limit: int = 100
    ) -> list[str]:
        """Items whose expiry (or embargo) time has come, oldest first."""
        k = self._keys(channel)
        key = k.expiry if schedule == "expiry" else k.embargo
        async with self._client.call:
            uris: list[str] = await self._client.redis.zrangebyscore(
                key, "-inf", now_ms, start=0, num=limit
            )
        return uris

    async def get(self, channel: str, uri: str) -> str | None:
        async with self._client.call:
            value: str | None = await self._client.redis.hget(self._keys(channel).items, uri)
        return value

    async def many(self, channel: str, uris: Sequence[str]) -> dict[str, str]:
        """The latest version of each of ``uris`` that has a record."""
        if not uris:
            return {}
        async with self._client.call:
            rows: list[str | None] = await self._client.redis.hmget(self._keys(channel).items, uris)
        return {u: r for u, r in zip(uris, rows, strict=True) if r is not None}

    async def versions(self, channel: str, uri: str) -> list[str]:
        key = self._keys(channel).versions_prefix + uri
        async with self._client.call:
            rows: list[str] = await self._client.redis.lrange(key, 0, -1)
        return rows

    async def reach(self, channel: str, uris: Sequence[str]) -> dict[str, int]:
        """How many readers each item was delivered to (0: none yet)."""
        if not uris:
            return {}
        async with self._client.call:
            rows: list[str | None] = await self._client.redis.hmget(self._keys(channel).reach, uris)
        return {u: int(r or 0) for u, r in zip(uris, rows, strict=True)}

    async def story(self, channel: str, story: str) -> list[str]:
        """The JSON of this channel's editions of a story (records still held)."""
        async with self._client.call:
            uris: set[str] = await self._client.redis.smembers(
                self._keys(channel).story_prefix + story
            )
        return list((await self.many(channel, sorted(uris))).values())

    async def queue(self, channel: str) -> list[str]:
        """The JSON of every item that is held or waiting for its embargo."""
        k = self._keys(channel)
        async with self._client.call, self._client.redis.pipeline(transaction=False) as pipe:
            pipe.zrange(k.held, 0, -1)
            pipe.zrange(k.embargo, 0, -1)
            held, waiting = await pipe.execute()
        uris = sorted(set(held) | set(waiting))
        return list((await self.many(channel, uris)).values())

    async def idempotent_reply(self, channel: str, scope: str) -> str | None:
        """The stored first reply to an Idempotency-Key (fingerprint, newline, item)."""
        key = self._keys(channel).idem_prefix + scope
        async with self._client.call:
            value: str | None = await self._client.redis.get(key)
        return value

    async def stats(self, channel: str) -> dict[str, Any]:
        """Sizes and ends of a channel's keys, for ``ticker stats``."""
        k = self._keys(channel)
        async with self._client.call, self._client.redis.pipeline(transaction=False) as pipe:
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
        k = self._keys(channel)
        keys = k.of(self._client.scripts["audit_index"])
        await self._client.run("audit_index", keys, {"audit_max_items": AUDIT_MAX_ITEMS})
        async with self._client.call:
            rows = await self._client.redis.xrevrange(
                k.audit, max=f"({before}" if before else "+", count=count
            )
        return [Entry(i, f) for i, f in rows]
