"""Reach: how many readers each item was shown to, summed over every process. Who counts
is decided by the fan-out (``fanout/onair.py``: one connection, once per item); this
module only carries the counts to Redis.

The fan-out counts in memory, once per batch (``Reach.add``: a dict update per item, never
a Redis call); a background task adds what has piled up to Redis, one pipelined
``HINCRBY`` per item and channel in one round trip, however many batches and readers that
covers. So the count costs the hot path nothing per delivery, and Redis at most one round
trip per batch (fewer when batches come faster than Redis answers).

Deliberate choices:
- A count is "a connection of this process that was shown the item for the first time":
  see ``fanout/onair.py``. A returning reader's replay is not counted (it is the same
  reader, resuming), nor the desk's own stream (``reach=off``).
- Counts that cannot reach Redis (an outage) are kept and retried, up to ``PENDING_MAX``
  items; past that the oldest are dropped (a denial-of-service guard: reach is a
  newsroom's estimate, never worth unbounded memory). What is pending when the process
  stops is written once more on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ticker.domain.errors import StoreUnavailable
from ticker.ops import tasks
from ticker.store import Store

log = logging.getLogger("ticker.reach")

# Items with counts waiting for Redis, at most (see the module docstring).
PENDING_MAX = 10_000
# After a failed write, wait this long before the next.
RETRY_S = 1.0


class Reach:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: dict[str, dict[str, int]] = {}
        self._size = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ticker-reach")

    def add(self, channel: str, counts: dict[str, int]) -> None:
        """Count deliveries (item uri -> readers); written to Redis in the background."""
        pending = self._pending.setdefault(channel, {})
        for uri, count in counts.items():
            if count <= 0:
                continue
            if uri not in pending:
                if self._size >= PENDING_MAX:
                    continue
                self._size += 1
            pending[uri] = pending.get(uri, 0) + count
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                written = await self.flush()
            except Exception:  # a bug must not end the counting for good: log it, go on
                log.exception("writing reach failed")
                written = False
            if not written:
                await asyncio.sleep(RETRY_S)

    async def flush(self) -> bool:
        """Write what is pending; ``False`` (and kept for later) when Redis is away."""
        pending, self._pending, self._size = self._pending, {}, 0
        ok = True
        for channel, counts in pending.items():
            if not counts:
                continue
            try:
                await self._store.items.add_reach(channel, counts)
            except StoreUnavailable as exc:
                log.warning("reach of channel %s not written yet: %s", channel, exc.message)
                self.add(channel, counts)
                ok = False
        return ok

    async def close(self) -> None:
        await tasks.stop(self._task)
        self._task = None
        with contextlib.suppress(StoreUnavailable):
            await self.flush()
