"""``store.tokens``: the editors' token records, their secrets' digests, their write rate
(all under ``{auth}``: one slot, so each token script's keys stay together)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ticker.store.client import Client
from ticker.store.keys import auth_keys


class Tokens:
    def __init__(self, client: Client, prefix: str) -> None:
        self._client = client
        self._keys = auth_keys(prefix)

    async def create(self, name: str, sha256: str, record: dict[str, Any]) -> bool:
        k = self._keys
        return bool(
            await self._client.run(
                "token_create",
                {"tokens": k.tokens, "hashes": k.hashes},
                {"name": name, "sha256": sha256, "record": json.dumps(record)},
                barrier=k.ack,
            )
        )

    async def revoke(self, name: str) -> bool:
        k = self._keys
        keys = {"tokens": k.tokens, "hashes": k.hashes, "used": k.used}
        return bool(await self._client.run("token_revoke", keys, {"name": name}, barrier=k.ack))

    async def rotate(self, name: str, sha256: str, *, now_ms: int, grace_ms: int) -> bool:
        k = self._keys
        args = {
            "name": name,
            "sha256": sha256,
            "now_ms": now_ms,
            "grace_ms": grace_ms,
            "rotated_at": datetime.fromtimestamp(now_ms / 1000, UTC).isoformat(),
        }
        keys = {"tokens": k.tokens, "hashes": k.hashes}
        return bool(await self._client.run("token_rotate", keys, args, barrier=k.ack))

    async def all(self) -> list[dict[str, Any]]:
        """Every token record, by name, with ``last_used_ms`` (``None``: never used)."""
        async with self._client.call, self._client.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._keys.tokens)
            pipe.hgetall(self._keys.used)
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
        """(status, token record, ms to wait): see authorize.lua."""
        k = self._keys
        reply = await self._client.run(
            "authorize",
            {"tokens": k.tokens, "hashes": k.hashes, "rate": k.rate(sha256), "used": k.used},
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
        rate = self._keys.rate(sha256)
        await self._client.run("refund", {"rate": rate}, {"interval_ms": interval_ms})

    async def by_hash(self, sha256: str, *, now_ms: int) -> tuple[int, dict[str, Any] | None]:
        """(status, the token record behind a digest): see token_lookup.lua. A desk read: a
        good secret counts as "last used"."""
        k = self._keys
        reply = await self._client.run(
            "token_lookup",
            {"tokens": k.tokens, "hashes": k.hashes, "used": k.used},
            {"sha256": sha256, "now_ms": now_ms},
        )
        return int(reply[0]), json.loads(reply[1]) if len(reply) > 1 else None
