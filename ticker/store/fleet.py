"""``store.fleet``: each process's last report (ticker/ops/fleet.py), under ``{fleet}``."""

from __future__ import annotations

from ticker.store.client import Client
from ticker.store.keys import fleet_keys


class Fleet:
    def __init__(self, client: Client, prefix: str) -> None:
        self._client = client
        self._procs, self._proc = fleet_keys(prefix)

    async def report(self, member: str, record: str, *, now_ms: int, ttl_ms: int) -> None:
        """A process's report: its own key with a TTL, and its time in the index."""
        async with self._client.call, self._client.redis.pipeline(transaction=False) as pipe:
            pipe.set(self._proc + member, record, px=ttl_ms)
            pipe.zadd(self._procs, {member: now_ms})
            pipe.zremrangebyscore(self._procs, "-inf", now_ms - ttl_ms)
            await pipe.execute()

    async def members(self, *, now_ms: int, ttl_ms: int) -> list[str]:
        """The reports of the processes seen within ``ttl_ms``; the index is pruned of
        the rest (the index is read, never listed keys: SCAN does not span a cluster)."""
        redis = self._client.redis
        async with self._client.call:
            await redis.zremrangebyscore(self._procs, "-inf", now_ms - ttl_ms)
            members: list[str] = await redis.zrange(self._procs, 0, -1)
        if not members:
            return []
        async with self._client.call, redis.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.get(self._proc + member)
            rows: list[str | None] = await pipe.execute()
        gone = [m for m, row in zip(members, rows, strict=True) if row is None]
        if gone:
            async with self._client.call:
                await redis.zrem(self._procs, *gone)
        return [row for row in rows if row is not None]

    async def leave(self, member: str) -> None:
        async with self._client.call, self._client.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self._proc + member)
            pipe.zrem(self._procs, member)
            await pipe.execute()
