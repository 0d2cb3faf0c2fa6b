"""Reads of a channel's stream: its position, its entries, the items on the ticker with
the position they are current at, and blocking reads on a connection of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ticker.store.client import WRAPPED, Client
from ticker.store.keys import channel_keys
from ticker.store.redisconn import RedisConn, open_redis

# The largest stream ID Redis can hold (each part is an unsigned 64-bit number).
_LAST_ID = f"{2**64 - 1}-{2**64 - 1}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry as read from Redis."""

    id: str
    fields: dict[str, str]


class Stream:
    """``store.stream``: a channel's stream and what is on its ticker."""

    def __init__(self, client: Client, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    async def snapshot(self, channel: str) -> tuple[str, list[str]]:
        """The stream position and the JSON of every item on the ticker, read atomically."""
        k = channel_keys(self._prefix, channel)
        script = self._client.scripts["snapshot"]
        out: list[str] = await self._client.run("snapshot", k.of(script))
        return out[0], out[1:]

    async def alive(self, channel: str) -> tuple[str, list[str]]:
        """The stream position and the JSON of every item in the expiry schedule (every
        item not yet expired or killed, on the ticker or not), read atomically: the
        snapshot script over the schedule instead of the ticker."""
        k = channel_keys(self._prefix, channel)
        script = self._client.scripts["snapshot"]
        out: list[str] = await self._client.run("snapshot", k.of(script, live=k.expiry))
        return out[0], out[1:]

    async def knows(self, channel: str, entry_id: str) -> bool:
        """True when resuming after ``entry_id`` cannot skip anything the stream had."""
        events = channel_keys(self._prefix, channel).events
        return bool(await self._client.run("knows", {"events": events}, {"entry_id": entry_id}))

    async def last_id(self, channel: str) -> str:
        async with self._client.call:
            last = await self._client.redis.xrevrange(
                channel_keys(self._prefix, channel).events, count=1
            )
        return str(last[0][0]) if last else "0-0"

    async def range_after(self, channel: str, after: str, count: int) -> list[Entry]:
        """Entries strictly after ``after``, oldest first."""
        if after == _LAST_ID:
            return []  # nothing is newer (and Redis refuses the interval)
        events = channel_keys(self._prefix, channel).events
        async with self._client.call:
            rows = await self._client.redis.xrange(events, min=f"({after}", count=count)
        return [Entry(i, f) for i, f in rows]

    async def history(self, channel: str, *, before: str | None, count: int) -> list[Entry]:
        """Entries newest first, strictly before ``before``."""
        if before == "0-0":
            return []  # nothing is older (and Redis refuses the interval)
        events = channel_keys(self._prefix, channel).events
        async with self._client.call:
            rows = await self._client.redis.xrevrange(
                events, max=f"({before}" if before else "+", count=count
            )
        return [Entry(i, f) for i, f in rows]

    @asynccontextmanager
    async def tail(self, channel: str, *, block_ms: int) -> AsyncIterator[Tail]:
        """A dedicated connection for one channel's blocking reader."""
        # The socket timeout outlasts one BLOCK, so a half-open connection is still noticed.
        # On a cluster this is a client of its own (one connection per node it reads from):
        # after a failover its read fails, the hub's reader opens a new tail, and the new
        # client learns the slot map afresh.
        conn = open_redis(
            self._client.url,
            socket_timeout=block_ms / 1000 + 5,
            # CLIENT LIST tells apart the readers of deployments that share a Redis.
            name=f"ticker-reader:{self._prefix}:{channel}",
            max_connections=1,
        )
        try:
            yield Tail(conn, channel_keys(self._prefix, channel).events)
        finally:
            await conn.aclose()


class Tail:
    """Blocking reads of one stream from a concrete last ID (never ``$``)."""

    def __init__(self, conn: RedisConn, key: str) -> None:
        self._conn = conn
        self._key = key

    async def read(self, after: str, *, count: int, block_ms: int) -> Sequence[Entry]:
        client = self._conn.client
        async with WRAPPED:
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
