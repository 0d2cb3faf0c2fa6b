"""``store.aof``: the append-only file's rewrites after purges (ticker/newsroom/aof.py decides
when), under ``{aof}``: one slot, so their pipelines stay on one node."""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from ticker.domain.errors import StoreUnavailable
from ticker.store.client import Client
from ticker.store.keys import aof_keys


class Aof:
    def __init__(self, client: Client, prefix: str) -> None:
        self._client = client
        self.keys = aof_keys(prefix)

    async def info(self) -> list[dict[str, Any]] | None:
        """``INFO persistence`` of the server (of each primary, on a cluster), or ``None``
        where Redis refuses INFO (some managed services)."""
        try:
            async with self._client.call:
                reply: dict[str, Any] = await self._client.redis.info(
                    "persistence", **self._client.every_primary()
                )
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, ResponseError):
                return None
            raise
        # A cluster answers one reply per node, by node name.
        if reply and all(isinstance(v, dict) for v in reply.values()):
            return list(reply.values())
        return [reply]

    async def request(self, now_ms: int) -> int:
        """Count one more purge waiting for a rewrite; the ms when it is due (now, or when
        the current interval's lock ends)."""
        wanted, lock, _ = self.keys
        async with self._client.call, self._client.redis.pipeline(transaction=False) as pipe:
            pipe.incr(wanted)
            pipe.pttl(lock)
            _, left = await pipe.execute()
        return now_ms + max(0, int(left))

    async def state(self) -> tuple[int, int, int | None]:
        """(purges waiting, ms left on the interval's lock (0: none), ms of the last
        rewrite asked for or ``None``)."""
        wanted, lock, asked = self.keys
        async with self._client.call, self._client.redis.pipeline(transaction=False) as pipe:
            pipe.get(wanted)
            pipe.pttl(lock)
            pipe.get(asked)
            count, left, when = await pipe.execute()
        return int(count or 0), max(0, int(left)), int(when) if when else None

    async def lock(self, now_ms: int, ttl_ms: int) -> bool:
        """Take the interval's lock (one rewrite per interval, across the fleet)."""
        async with self._client.call:
            return bool(await self._client.redis.set(self.keys[1], now_ms, nx=True, px=ttl_ms))

    async def unlock(self) -> None:
        async with self._client.call:
            await self._client.redis.delete(self.keys[1])

    async def bgrewriteaof(self) -> str:
        """``started``, ``busy`` (a rewrite already runs), or why Redis refused."""
        try:
            async with self._client.call:
                await self._client.redis.bgrewriteaof(**self._client.every_primary())
        except StoreUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ResponseError):
                return "busy" if "in progress" in str(cause) else f"refused: {cause}"
            raise
        return "started"

    async def covered(self, count: int, *, asked_ms: int | None) -> None:
        """``count`` purges are covered (by a rewrite asked at ``asked_ms``, or by none
        being needed); purges counted since stay waiting."""
        wanted, _, asked = self.keys
        async with self._client.call, self._client.redis.pipeline(transaction=False) as pipe:
            pipe.decrby(wanted, count)
            if asked_ms is not None:
                pipe.set(asked, asked_ms)
            await pipe.execute()
